#!/usr/bin/env bash
# Download, here, the Python packages the GPU machine lacks and pack them for the trip there
# (benchmarks/gpu/README.md). The machine has Python 3.12 (x86-64) with its own torch, e3nn,
# numpy, scipy, matplotlib, pyyaml and tqdm, and no network: whatever else the suite imports
# travels with the working tree, 64 MiB in all (the tree itself is ~21 MiB). As pip's wheels
# (deflate) the packages are ~120 MB, so they travel unpacked and pruned, in two xz archives:
#
#   .whl/gpu_base.tar.xz   ase, vesin, openmm and its CUDA 13 platform (~12 MB)
#   .whl/gpu_cueq.tar.xz   cuequivariance(-torch) and its CUDA 13 kernels (~26 MB)
#
# Pruned: OpenMM's force-field files (60 MB; the suite builds its Systems from ase.Atoms), its
# C++ headers and OpenCL plugins; cuequivariance's Triton tuning caches for other GPUs than
# Hopper (sm_90) and its static test libraries. run.sh unpacks the archives there.
#
# Usage (repository root or anywhere): benchmarks/gpu/fetch_wheels.sh
# Environment: EQFF_WHEEL_CACHE (default /tmp/eqff-gpu-wheels) keeps the downloads; PYTHON (default
# python3) runs pip; XZ_OPT (default -9e -T1) sets the compression.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${EQFF_WHEEL_CACHE:-/tmp/eqff-gpu-wheels}
PYTHON=${PYTHON:-python3}
export XZ_OPT=${XZ_OPT:--9e -T1}
PLATFORMS=()
for tag in manylinux_2_39 manylinux_2_35 manylinux_2_34 manylinux_2_28 manylinux_2_27 manylinux_2_24 \
           manylinux_2_17 manylinux2014 manylinux1; do
  PLATFORMS+=(--platform "${tag}_x86_64")
done

download() {  # download GROUP REQUIREMENT...: CPython 3.12 x86-64 wheels, no dependencies (named one by one)
  local group=$1; shift
  mkdir -p "$CACHE/$group"
  "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$CACHE/$group" "$@"
}

pack() {  # pack GROUP: unzip its wheels into one site folder, prune it, write .whl/gpu_GROUP.tar.xz
  local group=$1 site="$CACHE/site_$1"
  rm -rf "$site" && mkdir -p "$site"
  for wheel in "$CACHE/$group"/*.whl; do
    unzip -q -o "$wheel" -d "$site"
  done
  case $group in
    base)
      find "$site/openmm/app/data" -mindepth 1 -maxdepth 1 \
        ! -name residues.xml ! -name pdbNames.xml ! -name hydrogens.xml -exec rm -rf {} +
      rm -rf "$site/OpenMM.libs/include"
      rm -f "$site"/OpenMM.libs/lib/plugins/*OpenCL*.so
      ;;
    cueq)
      find "$site" -path "*/triton/cache/*.json" ! -name "*.9.0.json" -delete
      rm -rf "$site/lib64" "$site/include"
      ;;
  esac
  mkdir -p "$ROOT/.whl"
  tar -C "$site" -cJf "$ROOT/.whl/gpu_$group.tar.xz" .
  echo "$(du -h "$ROOT/.whl/gpu_$group.tar.xz" | cut -f1)  .whl/gpu_$group.tar.xz: $(ls "$CACHE/$group" | tr '\n' ' ')"
}

download base ase==3.29.0 vesin==0.6.2 openmm==8.6.1 openmm-cuda-13==8.6.1
download cueq cuequivariance==0.13.0 cuequivariance-torch==0.13.0 cuequivariance-ops-cu13==0.13.0 \
  cuequivariance-ops-torch-cu13==0.13.0 platformdirs==4.14.9
pack base
pack cueq
tracked=$(cd "$ROOT" && git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
untracked=$(cd "$ROOT" && git ls-files -z --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
packs=$(du -cb "$ROOT"/.whl/gpu_*.tar.xz | tail -1 | cut -f1)
total=$(( tracked + ${untracked:-0} + packs ))
echo "what travels: $(( total / 1048576 )) MiB of 64 (tree $(( (tracked + ${untracked:-0}) / 1048576 )) MiB + archives $(( packs / 1048576 )) MiB)"
if (( total > 64 * 1048576 )); then
  echo "over the 64 MiB limit: leave .whl/gpu_cueq.tar.xz out of the run's carry list (the suite then skips cuequivariance)" >&2
fi

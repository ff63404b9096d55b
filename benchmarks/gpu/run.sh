#!/usr/bin/env bash
# The GPU suite in one command (benchmarks/gpu/README.md). On the GPU machine: unpacks the
# packages carried in .whl/ (benchmarks/gpu/fetch_wheels.sh made them) next to the machine's own
# torch and e3nn, then runs benchmarks/gpu/suite.py, which writes gpu_suite.json and gpu_suite.md
# to $OUT (the device tool's folder that comes back) or benchmarks/gpu/results.
#
#   benchmarks/gpu/run.sh                                   # the GPU run
#   PYTHON=.venv/bin/python benchmarks/gpu/run.sh --device cpu --quick   # the CPU check, here
#
# Arguments go to suite.py (--device, --quick, --budget-s, --sections). The archives are unpacked
# only for a Python 3.12 that lacks the packages (they are CPython 3.12 x86-64 builds): a machine
# that has them (this one's venv) uses its own.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-python3}
SITE=${EQFF_GPU_SITE:-/tmp/eqff_gpu_site}
OUTPUT=${OUT:-$ROOT/benchmarks/gpu/results}
mkdir -p "$OUTPUT"

is_python312=$("$PYTHON" -c 'import sys; print(int(sys.version_info[:2] == (3, 12)))')
unpack() {  # unpack ARCHIVE IMPORTS: when the archive is here and IMPORTS fail
  local archive=$1 imports=$2
  [[ -f $archive ]] || { echo "run.sh: $archive not carried"; return; }
  if "$PYTHON" -c "import $imports" 2>/dev/null; then echo "run.sh: $imports already importable"; return; fi
  if [[ $is_python312 != 1 ]]; then echo "run.sh: $archive holds CPython 3.12 builds; $PYTHON is not 3.12"; return; fi
  mkdir -p "$SITE" && "$PYTHON" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="tar")' \
    "$archive" "$SITE" && echo "run.sh: unpacked $archive into $SITE"
}
start=$SECONDS
unpack "$ROOT/.whl/gpu_base.tar.xz" "ase, vesin, openmm"
unpack "$ROOT/.whl/gpu_cueq.tar.xz" "cuequivariance_torch"
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"
# OpenMM's CUDA plugin looks for libcufft and libnvrtc beside a pip-installed nvidia/cu13; here they
# are the machine's own, in its site-packages' nvidia/*/lib folders
nvidia_libs=$("$PYTHON" - <<'PY' 2>/dev/null
import glob, importlib.util, os
spec = importlib.util.find_spec("nvidia")
folders = [d for base in (spec.submodule_search_locations if spec else []) for d in sorted(glob.glob(os.path.join(base, "*", "lib")))]
print(":".join(folders))
PY
)
export LD_LIBRARY_PATH="${nvidia_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONUNBUFFERED=1
echo "run.sh: setup took $(( SECONDS - start )) s"
"$PYTHON" "$ROOT/benchmarks/gpu/suite.py" --output "$OUTPUT" "$@" 2>&1 | tee "$OUTPUT/gpu_suite.log"
exit "${PIPESTATUS[0]}"

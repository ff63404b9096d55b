#!/bin/bash
# issue 14: the 100 ps 300 K stability protocol (g(r) against the training frames) on the restarted
# water weights (benchmarks/runs/water_192_ace_ft/model.pt = its best.pt exported), resumable across sessions
cd /work/main
out=/work/runs/fu_water_192_ace_ft
mkdir -p $out
[ ! -f "$out/stability_state.json" ] && [ -f benchmarks/runs/fu_water_192_ace_ft/stability_state.json ] && \
  cp benchmarks/runs/fu_water_192_ace_ft/stability_state.json $out/
export OMP_NUM_THREADS=1
exec .venv/bin/eqff check benchmarks/runs/water_192_ace_ft/model.pt --protocol stability --stability-ps 100 --stability-temperature 300 --timestep 1 --engine openmm --reference potentials/data/water_192/train.xyz.gz --threads 1 --output $out --resume

#!/bin/bash
# Fu et al. protocol for ethanol_ace's third-phase weights (benchmarks/runs/ethanol_ace_ft2/best.pt, compiled by `eqff export --format pt2`): 300 ps NVT at 500 K, 0.5 fs, OpenMM, bonds from the training frames
cd /work/main
export OMP_NUM_THREADS=1
exec .venv/bin/eqff check benchmarks/runs/fu_ethanol_ace/ethanol_ace.pt2 --protocol stability --stability-ps 300 --stability-temperature 500 --timestep 0.5 --engine openmm --reference potentials/data/rmd17_ethanol/train.xyz.gz --threads 1 --output /work/runs/fu_ethanol_ace --resume

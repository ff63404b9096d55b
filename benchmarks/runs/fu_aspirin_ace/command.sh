#!/bin/bash
# Fu et al. protocol for aspirin_ace (its weights, benchmarks/runs/long_aspirin/best.pt, compiled by `eqff export --format pt2`: about twice as fast a call; forces within 4e-6 eV/A of model.pt): 300 ps NVT at 500 K, 0.5 fs, OpenMM, bonds from the training frames
cd /work/main
export OMP_NUM_THREADS=1
exec .venv/bin/eqff check benchmarks/runs/fu_aspirin_ace/aspirin_ace.pt2 --protocol stability --stability-ps 300 --stability-temperature 500 --timestep 0.5 --engine openmm --reference potentials/data/rmd17_aspirin/train.xyz.gz --threads 1 --output /work/runs/fu_aspirin_ace --resume

#!/bin/bash
cd /work/main
export OMP_NUM_THREADS=1
exec .venv/bin/eqff check potentials/water_192_ace/model.pt --protocol stability --stability-ps 100 --stability-temperature 300 --timestep 1 --engine openmm --reference potentials/data/water_192/train.xyz.gz --threads 1 --output /work/runs/fu_water_192_ace --resume

#!/bin/bash
# The checks of one round K of the aspirin loop: 100 ps NVT at 600 K in OpenMM (one thread, ~11 min)
# and the rMD17 test error; reports copied into checks/ here.  Usage: check_round.sh K
K=$1
cd /work/main
export OMP_NUM_THREADS=1
model=/work/runs/al_aspirin/round_00$K/model_0/best.pt
out=/work/runs/al_checks/round${K}_600K_100ps
mkdir -p /work/runs/al_checks benchmarks/runs/al_aspirin/checks/round${K}_600K_100ps
.venv/bin/eqff check $model --protocol stability --stability-temperature 600 --stability-ps 100 --timestep 0.5 \
    --engine openmm --reference potentials/data/rmd17_aspirin/train.xyz.gz --threads 1 --output $out > $out.log 2>&1
.venv/bin/eqff evaluate $model potentials/data/rmd17_aspirin/test.xyz.gz \
    -o benchmarks/runs/al_aspirin/checks/round${K}_test.json > /work/runs/al_checks/round${K}_test.log 2>&1
cp $out.log benchmarks/runs/al_aspirin/checks/
cp $out/stability.md $out/stability.json $out/*.png benchmarks/runs/al_aspirin/checks/round${K}_600K_100ps/ 2>/dev/null
echo done

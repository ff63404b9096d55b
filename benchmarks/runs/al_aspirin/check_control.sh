#!/bin/bash
# The control's 600 K checks: the model after K warm restarts without labels (control.sh), the same
# 100 ps protocol and seeds 0..N as the loop's rounds (check_round.sh, check_seeds.sh), and its rMD17
# test error. Usage: check_control.sh K N   -> checks/control_seeds.tsv, checks/control_warm_K_test.json
K=$1; N=$2
cd /work/main
export OMP_NUM_THREADS=1
model=/work/runs/al_control/warm_$K/best.pt
mkdir -p /work/runs/al_checks
.venv/bin/eqff evaluate $model potentials/data/rmd17_aspirin/test.xyz.gz \
    -o benchmarks/runs/al_aspirin/checks/control_warm_${K}_test.json > /work/runs/al_checks/control_warm_${K}_test.log 2>&1
for seed in $(seq 0 $N); do
    out=/work/runs/al_checks/control_warm_${K}_600K_seed${seed}
    .venv/bin/eqff check $model --protocol stability --stability-temperature 600 \
        --stability-ps 100 --timestep 0.5 --engine openmm --reference potentials/data/rmd17_aspirin/train.xyz.gz \
        --threads 1 --seed $seed --output $out > $out.log 2>&1
    echo -e "$K\t$seed\t$(grep -E '^(UNSTABLE|STABLE)' $out.log)" >> benchmarks/runs/al_aspirin/checks/control_seeds.tsv
done

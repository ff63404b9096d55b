#!/bin/bash
# Stable time at 600 K of round K's model for seeds 1..N (the 100 ps protocol stops at the first
# broken bond; one seed is a noisy measure). Usage: check_seeds.sh K N   -> checks/seeds.tsv
K=$1; N=$2
cd /work/main
export OMP_NUM_THREADS=1
for seed in $(seq 1 $N); do
    out=/work/runs/al_checks/round${K}_600K_seed${seed}
    .venv/bin/eqff check /work/runs/al_aspirin/round_00$K/model_0/best.pt --protocol stability --stability-temperature 600 \
        --stability-ps 100 --timestep 0.5 --engine openmm --reference potentials/data/rmd17_aspirin/train.xyz.gz \
        --threads 1 --seed $seed --output $out > $out.log 2>&1
    echo -e "$K\t$seed\t$(grep -E '^(UNSTABLE|STABLE)' $out.log)" >> benchmarks/runs/al_aspirin/checks/seeds.tsv
done

#!/bin/bash
# Issue 14: retrain a shipped rMD17 potential with eqff's default model and recipe (`eqff train`
# defaults: ace, cosine schedule over the budget, EMA), one thread, resumable:
#     bash potentials/train_molecule.sh rmd17_ethanol RUN_FOLDER [MINUTES]   # starts or resumes
# 950 training + 50 validation frames of potentials/data/<dataset>/train.xyz.gz (seed 0), the
# published split sizes; test on test.xyz.gz. E0s by least squares over the training energies,
# as in the accuracy benchmark (benchmarks/accuracy_budget.py) whose recipe this is. The run
# folder holds last.pt; rerun the same command after any stop.
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=$1
out=$2
minutes=${3:-240}
data=potentials/data/$dataset
e0s=least_squares
resume=""; [ -f "$out/last.pt" ] && resume=--resume
mkdir -p "$out"
echo "$(date -u) start $resume commit $(git rev-parse --short HEAD)" >> "$out/sessions.log"
echo "bash potentials/train_molecule.sh $*   # the same command resumes the run" > "$out/command.txt"  # for the card (potentials/package.py)
OMP_NUM_THREADS=1 python -m eqff train --output "$out" --train-file "$data/train.xyz.gz" \
    --test-file "$data/test.xyz.gz" --n-train 950 --n-valid 50 --e0s "$e0s" \
    --max-time-min "$minutes" --max-epochs 100000 --threads 1 --no-progress --seed 0 $resume

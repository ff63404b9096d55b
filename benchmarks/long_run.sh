#!/bin/bash
# Issue 12 item 6: the default `eqff train` on the rMD17 aspirin frames of the accuracy benchmark
# (950 + 50 frames, 500 test frames; seed 0), 600 minutes of one thread, resumable:
#     bash benchmarks/long_run.sh RUN_FOLDER      # starts, or resumes from RUN_FOLDER/last.pt
# A fresh machine: copy benchmarks/runs/long_aspirin/ (its last.pt) to RUN_FOLDER first.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/work/runs/long_aspirin}
data=$out/data
if [ ! -f "$data/aspirin/train.xyz" ]; then  # the benchmark's frames (seeded, identical each time)
    # from the bundled rMD17 aspirin files (frame for frame ../shared/data/rmd17_aspirin's)
    python -c "import sys; sys.path.insert(0, 'benchmarks'); import accuracy_budget as a; \
a.prepare_data('$data', 'aspirin', 'potentials/data/rmd17_aspirin/train.xyz.gz', \
'potentials/data/rmd17_aspirin/test.xyz.gz', 0, 950, 50, 500, ('energy', 'forces'))"
fi
resume=""; [ -f "$out/last.pt" ] && resume=--resume
echo "$(date -u) start $resume commit $(git rev-parse --short HEAD)" >> "$out/sessions.log"
echo "bash benchmarks/long_run.sh $*   # the same command resumes the run" > "$out/command.txt"  # for the card (potentials/package.py)
OMP_NUM_THREADS=1 python -m eqff train --output "$out" --train-file "$data/aspirin/train.xyz" \
    --valid-file "$data/aspirin/valid.xyz" --test-file "$data/aspirin/test.xyz" --e0s least_squares \
    --max-time-min 600 --max-epochs 100000 --threads 1 --no-progress --seed 0 $resume

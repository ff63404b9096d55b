#!/bin/bash
# second warm restart of ethanol_ace: from the first restart's best.pt, forces weight 1000, a third cosine cycle from lr 0.001
cd /work/main
out=/work/runs/ethanol_ace_ft2
resume=""; [ -f "$out/last.pt" ] && resume=--resume
mkdir -p $out; echo "$(date -u) start $resume" >> $out/sessions.log
export OMP_NUM_THREADS=1
exec .venv/bin/python -m eqff train --output $out --train-file potentials/data/rmd17_ethanol/train.xyz.gz \
  --test-file potentials/data/rmd17_ethanol/test.xyz.gz --n-train 950 --n-valid 50 --e0s least_squares \
  --init-from benchmarks/runs/ethanol_ace_ft/best.pt --forces-weight 1000 --lr 0.001 --batch-size 5 \
  --max-time-min 130 --max-epochs 100000 --threads 1 --no-progress --seed 0 $resume

#!/bin/bash
# warm restart of the shipped water_192_ace (issue 14): its exported weights (--init-from model.pt),
# forces weight 1000, a second cosine cycle from lr 0.005 over 110 min
cd /work/main
out=/work/runs/water_192_ace_ft
snap=benchmarks/runs/water_192_ace_ft/run   # sessions end and machines are not kept: snapshot here before a stop
[ ! -d "$out" ] && [ -d "$snap" ] && mkdir -p /work/runs && cp -r "$snap" "$out"
resume=""; [ -f "$out/last.pt" ] && resume=--resume
mkdir -p $out; echo "$(date -u) start $resume" >> $out/sessions.log
export OMP_NUM_THREADS=1
exec .venv/bin/python -m eqff train --output $out --model ace \
  --hyperparameters '{hidden_lmax: 0, sh_lmax: 2, correlation: 2, features: 32}' --prior zbl \
  --train-file potentials/data/water_192/train.xyz.gz --valid-file potentials/data/water_192/valid.xyz.gz \
  --test-file potentials/data/water_192/test.xyz.gz --e0s least_squares --batch-size 2 \
  --init-from potentials/water_192_ace/model.pt --forces-weight 1000 --lr 0.005 \
  --max-time-min 110 --max-epochs 100000 --threads 1 --no-progress --seed 0 --dtype float32 $resume

#!/bin/bash
# issue 17: the shipped mo_ace's 60-minute recipe with water_192_ace's small ace (scalar hidden features,
# correlation 2, 32 features): ~8x cheaper a training step on Mo than the default ace (157 vs 1209 ms, batch 5,
# one thread, two other jobs on the machine), so ~8x the epochs in the same hour
cd /work/main
out=/work/runs/mo_ace_small
resume=""; [ -f "$out/last.pt" ] && resume=--resume
mkdir -p $out; echo "$(date -u) start $resume" >> $out/sessions.log
export OMP_NUM_THREADS=1
exec .venv/bin/python -m eqff train --output $out --model ace \
  --hyperparameters '{hidden_lmax: 0, sh_lmax: 2, correlation: 2, features: 32}' \
  --train-file potentials/data/mlearn_mo/train.xyz.gz --valid-file potentials/data/mlearn_mo/valid.xyz.gz \
  --test-file potentials/data/mlearn_mo/test.xyz.gz --e0s least_squares \
  --max-time-min 60 --max-epochs 100000 --threads 1 --no-progress --seed 0 \
  --stage-two-at 0.5 --stage-two-energy-weight 1000 $resume

#!/bin/bash
# The control for issue 15's proof: round 0's EGNN warm-restarted as the loop does (30 min a round,
# lr 0.002, from the last round's best.pt) but on round 0's 1140 training frames only, no labels
# added. Its 600 K stable times say how much of a round's gain is more training time, not new data.
# Usage: control.sh K   (runs warm rounds 1..K; each resumes where it stopped). Machines are not
# kept between sessions: the loop's run and this one are restored from their snapshots here.
K=$1
cd /work/main
export OMP_NUM_THREADS=1
run=/work/runs/al_aspirin
out=/work/runs/al_control
[ ! -d "$run" ] && mkdir -p /work/runs && cp -r benchmarks/runs/al_aspirin/run "$run"
[ ! -d "$out" ] && [ -d benchmarks/runs/al_aspirin/control ] && cp -r benchmarks/runs/al_aspirin/control "$out"
mkdir -p $out
prev=$run/round_000/model_0/best.pt
for k in $(seq 1 $K); do
    dir=$out/warm_$k
    if [ ! -f $dir/done ]; then
        .venv/bin/eqff train $run/round_001/model_0/config.yaml --train-file $run/round_000/train.extxyz \
            --output $dir --init-from $prev --resume >> $out/warm_$k.log 2>&1 && touch $dir/done
        [ -f $dir/done ] || { echo "warm $k failed: $out/warm_$k.log"; exit 1; }
    fi
    prev=$dir/best.pt
done
echo done

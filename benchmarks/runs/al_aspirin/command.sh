#!/bin/bash
# issue 15 item 4, the proof on aspirin: eqff learn from the rMD17 300 K frames, PySCF labels, 600 K MD.
# Sessions end and machines are not kept: the run folder is snapshot into run/ here before each stop and
# copied back on the next start, where eqff learn --resume picks it up stage by stage.
cd /work/main
out=/work/runs/al_aspirin
snap=benchmarks/runs/al_aspirin/run
[ ! -d "$out" ] && [ -d "$snap" ] && mkdir -p /work/runs && cp -r "$snap" "$out"
resume=""; [ -d "$out" ] && resume=--resume
mkdir -p $out; echo "$(date -u) start $resume" >> /work/runs/al_aspirin.sessions.log
export OMP_NUM_THREADS=1
exec .venv/bin/python -m eqff learn benchmarks/active_learning/aspirin_600K.yaml --output $out $resume

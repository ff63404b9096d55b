"""What an `eqff learn` run cost and found, round by round: the table issue 15's proof reports.

    python benchmarks/al_report.py RUN [--checks DIR]

Per round: training frames, CPU minutes of training (all sessions, from the members' last.pt),
exploration and labelling (the session that finished the stage: round.json), trajectories lost,
DFT labels added, and how the predicted σ of the labelled frames ranks their true largest
per-atom force error (Spearman). Closing rows pool the labels of all rounds. With --checks, the
600 K stable times of `check_round.sh` / `check_seeds.sh` (benchmarks/runs/al_aspirin) are added.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
from typing import Dict, List

import numpy as np
from scipy.stats import spearmanr

from eqff.learn.training import training_time


def held(match: "re.Match") -> str:
    return f"{float(match.group(2)):.1f}" + ("+" if match.group(1) == "STABLE" else "")


def stable_times(checks: str) -> Dict[int, List[str]]:
    """Round -> stable times at 600 K, seed 0 first (a '+' marks a run that held to the end)."""
    out: Dict[int, Dict[int, str]] = {}
    pattern = re.compile(r"(UNSTABLE|STABLE): ([\d.]+) of")
    for log in glob.glob(os.path.join(checks, "round*_600K*.log")):
        name = os.path.basename(log)
        k = int(re.match(r"round(\d+)_", name).group(1))
        found = [pattern.search(line) for line in open(log)]
        found = [m for m in found if m]
        if not found or "seed" in name:
            continue
        if "_100ps" in name:
            out.setdefault(k, {})[0] = held(found[-1])
        else:  # rounds 0-3 were first checked over 10 ps; a 100 ps check of the same seed supersedes it
            out.setdefault(k, {}).setdefault(0, held(found[-1]) + " (of 10)")
    seeds = os.path.join(checks, "seeds.tsv")
    if os.path.exists(seeds):
        for line in open(seeds):
            k, seed, text = line.rstrip("\n").split("\t", 2)
            m = pattern.search(text)
            if m:
                out.setdefault(int(k), {})[int(seed)] = held(m)
    return {k: [v[s] for s in sorted(v)] for k, v in out.items()}


def spearman(pairs: List[dict]) -> str:
    if len(pairs) < 3:
        return "–"
    rho = spearmanr([p["sigma"] for p in pairs], [p["force_error_max"] for p in pairs])[0]
    return f"{rho:+.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the eqff learn output folder")
    parser.add_argument("--checks", help="folder of check_round.sh / check_seeds.sh logs")
    args = parser.parse_args()

    checks = stable_times(args.checks) if args.checks else {}
    print("| round | training frames | train CPU min | explore CPU min | trajectories lost | labels | label CPU min "
          "| σ vs true error (Spearman) | largest force error of a label (eV/Å) | 600 K stable times (ps) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    pooled: List[dict] = []
    totals = {"train": 0.0, "explore": 0.0, "label": 0.0, "labels": 0}
    for folder in sorted(glob.glob(os.path.join(args.run, "round_*"))):
        path = os.path.join(folder, "round.json")
        if not os.path.exists(path):
            continue
        record = json.load(open(path))
        k = record["round"]
        train = sum(training_time(os.path.dirname(m["checkpoint"]))["cpu_s"] for m in record.get("members", [])) / 60
        times = record.get("times", {})
        explore = times.get("explore", {}).get("cpu_s", 0.0) / 60
        label = times.get("label", {}).get("cpu_s", 0.0) / 60
        explored = record.get("explore", {})
        lost = explored.get("trajectories_lost",
                            sum(t["stop_reason"] != "completed" for t in explored.get("trajectories", [])))
        pairs = record.get("label", {}).get("errors_vs_sigma", [])
        pooled += pairs
        worst = f"{max(p['force_error_max'] for p in pairs):.1f}" if pairs else "–"
        n_traj = len(explored.get("trajectories", []))
        totals["train"] += train
        totals["explore"] += explore
        totals["label"] += label
        totals["labels"] += len(pairs)
        print(f"| {k} | {record.get('training_frames', '–')} | {train:.1f} | {explore:.1f} | "
              f"{lost} of {n_traj} | {len(pairs)} | {label:.1f} | {spearman(pairs)} | {worst} | "
              f"{', '.join(checks.get(k, [])) or '–'} |")
    print(f"| all | | {totals['train']:.1f} | {totals['explore']:.1f} | | {totals['labels']} | {totals['label']:.1f} "
          f"| {spearman(pooled)} | | |")
    if pooled:
        sigma = np.array([p["sigma"] for p in pooled])
        error = np.array([p["force_error_max"] for p in pooled])
        print(f"\n{len(pooled)} labelled frames: median true/predicted ratio {np.median(error / sigma):.1f} "
              f"(largest force error of the frame / σ at selection)")


if __name__ == "__main__":
    main()

"""Train schnet, egnn and segnn on rMD17 ethanol, rMD17 aspirin and water_192 under a wall-time
budget each, evaluate the best (EMA) model on the held-out test frames, and write a table.

    python benchmarks/train_accuracy.py --lanes 2 --output benchmarks/runs

Splits: ethanol and aspirin use 950 training + 50 validation frames drawn (seeded) from the
shared train files and the shared test files for testing; water_192 uses a seeded 300/50/rest
split of its 400 frames (the test frames are written to the run folder). Runs go ``lanes`` at a
time, one thread each (2 cores here).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import ase.io
import numpy as np

SHARED = os.environ.get("EQFF_SHARED_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))

DATASETS = {
    "ethanol": dict(train_file=f"{SHARED}/rmd17_ethanol/train.xyz", test_file=f"{SHARED}/rmd17_ethanol/test_MD.xyz",
                    e0s=f"{SHARED}/rmd17_ethanol/isolated_atoms.xyz", n_train=950, n_valid=50, batch_size=5),
    "aspirin": dict(train_file=f"{SHARED}/rmd17_aspirin/rmd17_aspirin_train.xyz",
                    test_file=f"{SHARED}/rmd17_aspirin/rmd17_aspirin_test.xyz", e0s="least_squares",
                    n_train=950, n_valid=50, batch_size=5),
    "water": dict(e0s="least_squares", batch_size=2),  # files written by water_split()
}


def water_split(folder: str, seed: int = 0) -> dict:
    """Seeded 300 / 50 / rest split of water_192, written as extxyz files."""
    frames = ase.io.read(f"{SHARED}/water_192/water.extxyz", ":")
    order = np.random.default_rng(seed).permutation(len(frames))
    os.makedirs(folder, exist_ok=True)
    parts = {"train": order[:300], "valid": order[300:350], "test": order[350:]}
    paths = {}
    for name, indices in parts.items():
        paths[name] = os.path.join(folder, f"water_{name}.xyz")
        if not os.path.exists(paths[name]):
            ase.io.write(paths[name], [frames[i] for i in indices], format="extxyz")
    return {"train_file": paths["train"], "valid_file": paths["valid"], "test_file": paths["test"]}


def command(dataset: str, model: str, minutes: float, output: str, extra: list) -> list:
    settings = dict(DATASETS[dataset])
    if dataset == "water":
        settings.update(water_split(os.path.join(os.path.dirname(output), "water_split")))
    args = [sys.executable, "-m", "eqff", "train", "--model", model, "--output", output, "--max-time-min", str(minutes),
            "--max-epochs", "100000", "--no-progress"]
    for key, value in settings.items():
        args += ["--" + key.replace("_", "-"), str(value)]
    return args + extra


def run_one(job):
    dataset, model, minutes, output, extra = job
    os.makedirs(output, exist_ok=True)
    log = os.path.join(output, "stdout.log")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.time()
    args = command(dataset, model, minutes, output, extra)
    if os.path.exists(os.path.join(output, "last.pt")):
        args.append("--resume")
    with open(log, "a") as handle:
        handle.write(" ".join(args) + "\n")
        code = subprocess.call(args, stdout=handle, stderr=subprocess.STDOUT, env=env)
    return dataset, model, code, time.time() - start


def table(root: str, datasets, models) -> str:
    rows = ["| dataset | model | epochs | wall time (min) | test E MAE (meV) | test E MAE (meV/atom) | test F MAE (meV/Å) | test F RMSE (meV/Å) |",
            "|---|---|---|---|---|---|---|---|"]
    for dataset in datasets:
        for model in models:
            folder = os.path.join(root, f"{dataset}_{model}")
            metrics_path = os.path.join(folder, "test_metrics.json")
            if not os.path.exists(metrics_path):
                rows.append(f"| {dataset} | {model} | – | – | not run | | | |")
                continue
            metrics = json.load(open(metrics_path))
            lines = open(os.path.join(folder, "metrics.csv")).read().strip().splitlines()
            header = lines[0].split(",")
            last = lines[-1].split(",")
            epochs, wall = last[header.index("epoch")], float(last[header.index("wall_time_s")]) / 60
            rows.append(f"| {dataset} | {model} | {epochs} | {wall:.0f} | {metrics['energy_mae_meV']:.1f} | "
                        f"{metrics['energy_mae_meV_per_atom']:.2f} | {metrics['forces_mae_meV_per_A']:.1f} | "
                        f"{metrics['forces_rmse_meV_per_A']:.1f} |")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["ethanol", "aspirin", "water"])
    parser.add_argument("--models", nargs="+", default=["schnet", "egnn", "segnn"])
    parser.add_argument("--minutes", type=float, nargs="+", default=[45, 60, 60], help="budget per dataset, in order")
    parser.add_argument("--lanes", type=int, default=2)
    parser.add_argument("--output", default="benchmarks/runs")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="further eqff train flags after --")
    args = parser.parse_args()
    extra = [a for a in args.extra if a != "--"]
    if not args.table_only:
        minutes = dict(zip(args.datasets, args.minutes if len(args.minutes) == len(args.datasets) else args.minutes * len(args.datasets)))
        jobs = [(d, m, minutes[d], os.path.join(args.output, f"{d}_{m}"), extra) for d in args.datasets for m in args.models]
        with ThreadPoolExecutor(args.lanes) as pool:
            for dataset, model, code, seconds in pool.map(run_one, jobs):
                print(f"{dataset} {model}: exit {code}, {seconds / 60:.1f} min", flush=True)
    text = table(args.output, args.datasets, args.models)
    print(text)
    with open(os.path.join(args.output, "table.md"), "w") as handle:
        handle.write(text + "\n")


if __name__ == "__main__":
    main()

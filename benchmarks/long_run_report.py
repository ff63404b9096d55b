#!/usr/bin/env python
"""Issue 12 item 6: the learning curve of the long aspirin run, its test errors beside the
published table, and an extrapolation of what convergence needs.

    python benchmarks/long_run_report.py /work/runs/long_aspirin [--test] [--output benchmarks/runs/long_aspirin]

Reads RUN/metrics.csv (validation errors per epoch, cumulative training time across resumes);
fits the validation force MAE against training minutes with a power law F(t) = a t^-b over
the last half of the curve and says when that law would reach the published force errors.
A cosine schedule bends the curve down near its end (the learning rate goes to zero), so a fit
made mid-run is an upper bound on the minutes needed under this schedule's shape, and says
nothing about a different schedule length. ``--test`` evaluates RUN/best.pt on the run's test
frames (RUN/data/aspirin/test.xyz) with ``eqff evaluate``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys

import numpy as np

PUBLISHED = {"MACE": (2.2, 6.6), "NequIP": (2.3, 8.2), "PaiNN": (6.9, 16.1)}  # aspirin, meV / meV/Å (MACE paper)


def read_curve(run: str):
    with open(os.path.join(run, "metrics.csv")) as handle:
        rows = list(csv.DictReader(handle))
    minutes = np.array([float(r["wall_time_s"]) / 60.0 for r in rows])
    forces = np.array([float(r["valid_forces_mae_meV_per_A"]) for r in rows])
    energy = np.array([float(r["valid_energy_mae_meV"]) for r in rows])
    return minutes, forces, energy


def power_law(minutes: np.ndarray, forces: np.ndarray):
    """(a, b) of F = a t^-b fitted in log-log over the last half of the run (by time)."""
    late = minutes >= minutes[-1] / 2
    slope, intercept = np.polyfit(np.log(minutes[late]), np.log(forces[late]), 1)
    return float(np.exp(intercept)), float(-slope)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--test", action="store_true", help="evaluate best.pt on the run's test frames")
    parser.add_argument("--output", default=None, help="folder for long_run_report.json and .png (default: RUN)")
    args = parser.parse_args()
    output = args.output or args.run
    os.makedirs(output, exist_ok=True)
    minutes, forces, energy = read_curve(args.run)
    best = int(np.argmin(forces))
    a, b = power_law(minutes, forces)
    report = {"epochs": len(minutes), "training_minutes": float(minutes[-1]),
              "best_valid_forces_mae_meV_per_A": float(forces[best]), "best_epoch": best + 1,
              "power_law": {"a": a, "b": b, "fitted_from_minute": float(minutes[-1] / 2)},
              "minutes_to_reach": {name: float((a / f) ** (1 / b)) for name, (_, f) in PUBLISHED.items()}}
    if args.test:
        metrics = os.path.join(output, "test_metrics.json")
        test = os.path.join(args.run, "data", "aspirin", "test.xyz")
        subprocess.run([sys.executable, "-m", "eqff", "evaluate", os.path.join(args.run, "best.pt"), test,
                        "--output", metrics], check=True)
        with open(metrics) as handle:
            report["test"] = json.load(handle)
    with open(os.path.join(output, "long_run_report.json"), "w") as handle:
        json.dump(report, handle, indent=1)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.loglog(minutes, forces, label="validation force MAE")
    grid = np.geomspace(minutes[-1] / 2, max(minutes[-1], 600) * 4, 50)
    ax.loglog(grid, a * grid ** -b, ls="--", label=f"fit {a:.0f} t^-{b:.2f} (last half)")
    for name, (_, f) in PUBLISHED.items():
        ax.axhline(f, color="grey", lw=0.8, ls=":")
        ax.text(minutes[0], f, f" {name} {f}", fontsize=7, va="bottom")
    ax.set_xlabel("training minutes (one thread)")
    ax.set_ylabel("force MAE (meV/Å)")
    ax.set_title(f"aspirin, eqff default: {forces[best]:.1f} meV/Å at epoch {best + 1}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(output, "long_run_curve.png"), dpi=110)
    print(json.dumps({k: v for k, v in report.items() if k != "test"}, indent=1))
    if "test" in report:
        t = report["test"]
        print(f"test: energy MAE {t['energy_mae_meV']:.1f} meV, forces MAE {t['forces_mae_meV_per_A']:.1f} meV/Å "
              f"(published MACE 2.2 / 6.6, NequIP 2.3 / 8.2, PaiNN 6.9 / 16.1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

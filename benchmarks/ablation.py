"""Equivariance ablation: test force error against training-set size, every model under the
same wall-time budget, on revised MD17 aspirin.

For each model and each training-set size this trains with the ``eqff.train`` API (the same
config for every model except the model name, its hyperparameters and rotation augmentation),
stopping at ``--budget-min`` minutes of wall time, then evaluates the best (EMA) checkpoint
with ``eqff.train.evaluation.evaluate_file`` on one fixed, seeded subset of the test set. The
training sets are nested (the first n frames of one seeded shuffle) and the 50 validation
frames are the same for every run. Models that are not exactly rotation invariant
(``--augment``, default pointconv and lifted) train with ``augment_rotations: true``.

Writes into ``--output``: ``runs/<model>_n<size>/`` (each run's folder, with
``result.json``), ``test_subset.xyz``, ``results.json``, ``ablation.md`` (the Markdown tables
for benchmarks/RESULTS.md) and ``learning_curve.png`` (test force MAE vs training-set size).
Finished runs are skipped and interrupted ones resumed, so re-running the same command
continues an ablation.

    # the real ablation (5 models x 3 sizes x 60 min = 15 h on CPU; use --device cuda on a GPU)
    python benchmarks/ablation.py --budget-min 60 --output benchmarks/ablation
    # a smoke test in about a minute
    python benchmarks/ablation.py --models pointconv lifted --train-sizes 10 20 --budget-min 0.05 \
        --test-frames 20 --output /tmp/ablation_smoke
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any, Dict, List

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "rmd17_aspirin"))
MODELS = ["pointconv", "schnet", "egnn", "segnn", "lifted"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS, help=f"models to compare (default: {' '.join(MODELS)})")
    parser.add_argument("--train-sizes", nargs="+", type=int, default=[50, 200, 950], help="training frames per run")
    parser.add_argument("--budget-min", type=float, default=60.0, help="wall-time budget of every run, minutes")
    parser.add_argument("--output", default=os.path.join(HERE, "ablation"), help="output folder")
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder with rmd17_aspirin_train.xyz and _test.xyz")
    parser.add_argument("--test-frames", type=int, default=500, help="size of the fixed, seeded test subset")
    parser.add_argument("--n-valid", type=int, default=50, help="validation frames (the same for every run)")
    parser.add_argument("--augment", nargs="*", default=["pointconv", "lifted"],
                        help="models trained with random-rotation augmentation")
    parser.add_argument("--hyperparameters", default="{}",
                        help='JSON {model: {name: value}} overriding model defaults, e.g. \'{"lifted": {"num_orientations": 26}}\'')
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=50, help="early stopping patience in epochs")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def test_subset(args: argparse.Namespace) -> str:
    """The same test frames for every run: a seeded choice, written once."""
    import ase.io

    path = os.path.join(args.output, "test_subset.xyz")
    if os.path.exists(path):
        return path
    frames = ase.io.read(os.path.join(args.data, "rmd17_aspirin_test.xyz"), ":")
    count = min(args.test_frames, len(frames))
    chosen = sorted(np.random.default_rng(12345).choice(len(frames), size=count, replace=False).tolist())
    ase.io.write(path + ".tmp", [frames[i] for i in chosen], format="extxyz")
    os.replace(path + ".tmp", path)
    return path


def run_one(args: argparse.Namespace, model: str, size: int, hyperparameters: Dict[str, Any],
            test_path: str) -> Dict[str, Any]:
    from eqff.models.io import load_checkpoint, potential_from_state
    from eqff.train import make_config, train
    from eqff.train.evaluation import evaluate_file

    folder = os.path.join(args.output, "runs", f"{model}_n{size}")
    result_path = os.path.join(folder, "result.json")
    if os.path.exists(result_path):
        with open(result_path) as handle:
            return json.load(handle)
    config = make_config(None, {
        "train_file": os.path.join(args.data, "rmd17_aspirin_train.xyz"),
        "n_train": size, "n_valid": args.n_valid,
        "model": model, "cutoff": args.cutoff, "hyperparameters": hyperparameters.get(model, {}),
        "dtype": args.dtype, "device": args.device, "seed": args.seed,
        "batch_size": args.batch_size, "lr": args.lr,
        "max_epochs": 1_000_000, "max_time_min": args.budget_min,
        "early_stopping_patience": args.patience,
        "augment_rotations": model in args.augment,
        "output": folder, "progress": False,
        "resume": os.path.exists(os.path.join(folder, "last.pt")),
    })
    start = time.time()
    summary = train(config)
    best_path = os.path.join(folder, "best.pt")
    potential = potential_from_state(load_checkpoint(best_path), source=best_path)
    metrics, _, _ = evaluate_file(potential, test_path, config)
    result = {
        "model": model, "n_train": size, "augment_rotations": config.augment_rotations,
        "hyperparameters": potential.config()["hyperparameters"],
        "parameters": sum(p.numel() for p in potential.parameters()),
        "epochs": summary["epochs"], "best_epoch": summary["best_epoch"], "stop_reason": summary["stop_reason"],
        "session_wall_time_s": round(time.time() - start, 1),
        "test_frames": metrics["n_structures"],
        "test_forces_mae_meV_per_A": metrics["forces_mae_meV_per_A"],
        "test_energy_mae_meV": metrics["energy_mae_meV"],
    }
    with open(result_path, "w") as handle:
        json.dump(result, handle, indent=1)
    return result


def markdown(results: List[Dict[str, Any]], args: argparse.Namespace) -> str:
    sizes = sorted({r["n_train"] for r in results})
    models = [m for m in args.models if any(r["model"] == m for r in results)]
    cell = {(r["model"], r["n_train"]): r for r in results}

    def table(key: str, title: str, fmt: str) -> List[str]:
        lines = [f"| {title} | " + " | ".join(f"n = {n}" for n in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
        for m in models:
            values = [format(cell[(m, n)][key], fmt) if (m, n) in cell else "—" for n in sizes]
            lines.append(f"| {m}{' (rot. aug.)' if m in args.augment else ''} | " + " | ".join(values) + " |")
        return lines

    test_frames = results[0]["test_frames"] if results else 0
    lines = [
        f"rMD17 aspirin, {test_frames} fixed test frames, {args.n_valid} validation frames, "
        f"{args.budget_min:g} min wall time per run ({args.device}, {args.dtype}), cutoff {args.cutoff:g} Å, "
        f"batch {args.batch_size}, lr {args.lr:g}; `python benchmarks/ablation.py` "
        f"--budget-min {args.budget_min:g} --train-sizes {' '.join(map(str, args.train_sizes))}",
        "",
        *table("test_forces_mae_meV_per_A", "test force MAE (meV/Å)", ".1f"),
        "",
        *table("test_energy_mae_meV", "test energy MAE (meV/molecule)", ".1f"),
        "",
        *table("epochs", "epochs in the budget", "d"),
        "",
        "![test force MAE against training-set size](learning_curve.png)",
    ]
    return "\n".join(lines) + "\n"


def plot(results: List[Dict[str, Any]], args: argparse.Namespace, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 4.0))
    for model in args.models:
        points = sorted((r["n_train"], r["test_forces_mae_meV_per_A"]) for r in results if r["model"] == model)
        if points:
            x, y = zip(*points)
            axis.plot(x, y, "o-", label=model + (" (rot. aug.)" if model in args.augment else ""))
    axis.set_xscale("log")
    axis.set_yscale("log")
    sizes = sorted({r["n_train"] for r in results})
    axis.set_xticks(sizes)
    axis.set_xticklabels([str(n) for n in sizes])
    axis.minorticks_off()
    axis.set_xlabel("training frames")
    axis.set_ylabel("test force MAE (meV/Å)")
    axis.set_title(f"rMD17 aspirin, {args.budget_min:g} min per run")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)


def main(argv=None) -> int:
    args = parse_args(argv)
    from eqff.models.registry import MODELS as REGISTERED

    unknown = [m for m in args.models if m not in REGISTERED]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; eqff has {sorted(REGISTERED)}")
    hyperparameters = json.loads(args.hyperparameters)
    os.makedirs(os.path.join(args.output, "runs"), exist_ok=True)
    test_path = test_subset(args)
    runs = [(m, n) for n in args.train_sizes for m in args.models]
    print(f"{len(runs)} runs x {args.budget_min:g} min = at most {len(runs) * args.budget_min:.1f} min of training",
          flush=True)
    results = []
    for model, size in runs:
        result = run_one(args, model, size, hyperparameters, test_path)
        print(f"{model:10s} n={size:5d}: test force MAE {result['test_forces_mae_meV_per_A']:.1f} meV/Å, "
              f"energy MAE {result['test_energy_mae_meV']:.1f} meV ({result['epochs']} epochs)", flush=True)
        results.append(result)
        with open(os.path.join(args.output, "results.json"), "w") as handle:
            json.dump(results, handle, indent=1)
        with open(os.path.join(args.output, "ablation.md"), "w") as handle:
            handle.write(markdown(results, args))
        plot(results, args, os.path.join(args.output, "learning_curve.png"))
    print(f"wrote {os.path.join(args.output, 'ablation.md')} and learning_curve.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``eqff evaluate MODEL DATA --output metrics.json``: error table and JSON metrics."""
from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="checkpoint (best.pt, last.pt) or exported model file")
    parser.add_argument("data", help="structures with reference energies/forces (any ASE-readable file)")
    parser.add_argument("--output", "-o", help="write the metrics as JSON here")
    parser.add_argument("--energy-key", default="energy")
    parser.add_argument("--forces-key", default="forces")
    parser.add_argument("--stress-key", default="stress")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "float64"], default=None,
                        help="default: the model's own dtype")


def run(args: argparse.Namespace) -> int:
    from eqff.runtime import load_model
    from eqff.train.evaluation import evaluate_file
    from eqff.train.metrics import format_table

    loaded = load_model(args.model, dtype=args.dtype, device=args.device)
    print(f"{args.model}: {loaded.format}, {loaded.note}")
    potential = loaded.module
    metrics, _, _ = evaluate_file(potential, args.data, batch_size=args.batch_size, energy_key=args.energy_key,
                                  forces_key=args.forces_key, stress_key=args.stress_key)
    print(format_table(metrics, f"{args.model} on {args.data}"))
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(metrics, handle, indent=1)
        print(f"wrote {args.output}")
    return 0

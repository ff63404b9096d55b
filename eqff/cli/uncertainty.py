"""``eqff uncertainty best.pt -o best_llpr.pt`` (or ``--train-file T --valid-file V``): the checkpoint
plus its last-layer uncertainty (eqff/runtime/llpr.py), calibrated on the validation frames.
Every loader (ASE calculator, ``eqff evaluate``, ``eqff.openmm``) then gives ``energy_std``
and ``forces_std`` beside the energy and forces."""
from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a training checkpoint (best.pt)")
    parser.add_argument("--train-file", help="the frames the model was trained on (default: the run's own "
                        "training frames, from the checkpoint's config and split)")
    parser.add_argument("--valid-file", help="validation frames with forces: they calibrate σ (default: the run's)")
    parser.add_argument("--output", "-o", required=True, help="the checkpoint with its uncertainty, written here")
    parser.add_argument("--test-file", help="also report how σ ranks the errors on these frames")
    parser.add_argument("--energy-key", default="energy")
    parser.add_argument("--forces-key", default="forces")


def run(args: argparse.Namespace) -> int:
    from eqff.runtime.committee import uncertainty_metrics
    from eqff.runtime.llpr import fit_llpr, save_with_uncertainty
    from eqff.train.evaluation import evaluate_file

    labels = dict(energy_key=args.energy_key, forces_key=args.forces_key)
    model, state = fit_llpr(args.checkpoint, args.train_file, args.valid_file, **labels)
    save_with_uncertainty(state, args.output)
    print(json.dumps(state["uncertainty"]["info"], indent=1))
    print(f"σ scales: energy {model.uncertainty.energy_scale:.4g}, forces {model.uncertainty.uncertainty_scale:.4g}; "
          f"wrote {args.output}")
    if args.test_file:
        _, predictions, references = evaluate_file(model, args.test_file, **labels)
        for key, value in uncertainty_metrics(predictions, references).items():
            print(f"{key:>45}: {value:.3f}")
    return 0

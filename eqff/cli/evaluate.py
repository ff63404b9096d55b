"""``eqff evaluate MODEL DATA --output metrics.json``: error table and JSON metrics."""
from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="checkpoint (best.pt, last.pt) or exported model file")
    parser.add_argument("data", help="structures with reference energies/forces (any ASE-readable file)")
    parser.add_argument("--output", "-o", help="write the metrics as JSON here")
    parser.add_argument("--predictions", metavar="FILE",
                        help="write every frame with its reference labels and the model's (eqff_energy, eqff_forces, "
                             "eqff_stress; eqff_energy_std, eqff_forces_std with an uncertainty) as extxyz")
    parser.add_argument("--energy-key", default="energy")
    parser.add_argument("--forces-key", default="forces")
    parser.add_argument("--stress-key", default="stress")
    parser.add_argument("--group-by", default="config_type", metavar="KEY",
                        help="also report the errors of each group of frames by this atoms.info key (default "
                             "config_type, as MACE's config types; mlearn's files: group) when the frames have it")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "float64"], default=None,
                        help="default: the model's own dtype")
    parser.add_argument("--committee", nargs="+", default=None, metavar="MODEL",
                        help="more models: MODEL and these form a committee whose spread is the uncertainty; "
                             "reports how σ ranks the errors (Spearman) and its calibration")
    parser.add_argument("--calibrate-on", metavar="FRAMES",
                        help="with --committee: scale σ so that it matches the force errors on these (validation) frames")


def run(args: argparse.Namespace) -> int:
    from eqff.runtime import load_model
    from eqff.runtime.committee import calibrate, uncertainty_metrics
    from eqff.data.frames_io import write_atomic
    from eqff.train.evaluation import evaluate_file, evaluate_frames, labelled_frames
    from eqff.train.metrics import format_group_table, format_table
    from eqff.train.per_frame import largest_errors, prediction_images

    model = [args.model, *args.committee] if args.committee else args.model
    loaded = load_model(model, dtype=args.dtype, device=args.device)
    print(f"{loaded.source}: {loaded.format}, {loaded.note}")
    potential = loaded.module
    labels = dict(batch_size=args.batch_size, energy_key=args.energy_key, forces_key=args.forces_key,
                  stress_key=args.stress_key)
    if args.calibrate_on:
        if loaded.format != "committee":
            raise SystemExit("eqff evaluate: --calibrate-on needs a committee (--committee MODEL ...); a checkpoint "
                             "from `eqff uncertainty` is calibrated already")
        _, predictions, references = evaluate_file(potential, args.calibrate_on, **labels)
        print(f"σ scale {calibrate(potential, predictions, references):.3f}, calibrated on {args.calibrate_on}")
    frames = labelled_frames(potential, args.data, args.energy_key, args.forces_key, args.stress_key,
                             args.group_by or "config_type")
    metrics, predictions, references = evaluate_frames(potential, frames, args.batch_size, args.group_by)
    if loaded.has_uncertainty:
        metrics.update(uncertainty_metrics(predictions, references))
        head = getattr(potential, "uncertainty", potential)  # a committee, or an export's last-layer head
        metrics["uncertainty_scale"] = head.uncertainty_scale
    print(format_table(metrics, f"{args.model} on {args.data}"))
    if "by_group" in metrics:
        print(format_group_table(metrics["by_group"], metrics["group_key"]))
    print(largest_errors(frames, predictions, references))
    for key in ("energy_std_mean_meV", "spearman_energy_sigma_vs_error", "calibration_energy_rms_error_over_rms_sigma",
                "forces_std_mean_meV_per_A", "spearman_frame_sigma_vs_force_mae", "spearman_atom_sigma_vs_force_error",
                "calibration_rms_error_over_rms_sigma"):
        if key in metrics:
            print(f"{key:>40}: {metrics[key]:.3f}")
    if args.predictions:
        write_atomic(prediction_images(frames, predictions, references), args.predictions)
        print(f"wrote {args.predictions} (the model's numbers under eqff_*)")
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(metrics, handle, indent=1)
        print(f"wrote {args.output}")
    return 0

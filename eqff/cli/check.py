"""``eqff check MODEL [--structure FILE]``: validate a potential; non-zero exit on failure."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="checkpoint or exported model file")
    parser.add_argument("--structure", help="structure to test on (first frame of any ASE file); "
                                            "default: the example structure stored in the model")
    parser.add_argument("--output", "-o", default="check", help="folder for report.md and the plots")
    parser.add_argument("--nve-ps", type=float, default=2.0, help="length of the NVE run (ps)")
    parser.add_argument("--nvt-ps", type=float, default=1.0, help="length of each NVT run (ps)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 600.0])
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from eqff.check.report import THRESHOLDS, run_check

    print("thresholds: " + ", ".join(f"{k} {v:g}" for k, v in THRESHOLDS.items()))
    report = run_check(args.model, args.structure, args.output, args.nve_ps, args.nvt_ps, tuple(args.temperatures), args.seed)
    print(report.text())
    print(f"{'PASS' if report.passed else 'FAIL'}: report in {args.output}/report.md")
    return 0 if report.passed else 1

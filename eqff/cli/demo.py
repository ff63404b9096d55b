"""``eqff demo [--train]``: MD with the shipped ethanol potential in ASE and OpenMM."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from eqff.demo import DEFAULT_STEPS

    parser.add_argument("--output", "-o", default="demo", help="folder for trajectories, plots and summary.json")
    parser.add_argument("--model", help="use this checkpoint or exported file instead of the shipped potential")
    parser.add_argument("--train", action="store_true", help="first fit a small potential to the bundled DFT frames")
    parser.add_argument("--train-minutes", type=float, default=3.0)
    parser.add_argument("--ase-steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--openmm-steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--no-openmm", action="store_true", help="skip the OpenMM part")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for one small molecule)")


def run(args: argparse.Namespace) -> int:
    import torch

    from eqff.demo import run_demo

    torch.set_num_threads(args.threads)
    run_demo(args.output, args.model, args.train, args.train_minutes, args.ase_steps, args.openmm_steps, args.no_openmm)
    return 0

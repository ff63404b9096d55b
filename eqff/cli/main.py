"""The ``eqff`` command: a thin layer over the library.

Each subcommand lives in its own module ``eqff.cli.<name>`` with two functions,
``add_arguments(parser)`` and ``run(args) -> int``; add it to ``COMMANDS`` to expose it.
Modules are imported only when their command runs, so ``eqff --version`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from eqff._version import __version__

# name -> (module, one-line help)
COMMANDS = {
    "export": ("eqff.cli.export", "write a self-contained TorchScript file for ASE, OpenMM and libtorch"),
    "train": ("eqff.cli.train", "fit a potential to DFT energies, forces and stresses"),
    "evaluate": ("eqff.cli.evaluate", "error metrics of a model on a data file"),
    "demo": ("eqff.cli.demo", "MD with the shipped ethanol potential in ASE and OpenMM (--train: fit one first)"),
    "uncertainty": ("eqff.cli.uncertainty", "give a checkpoint its single-model uncertainty (last-layer, calibrated)"),
    "check": ("eqff.cli.check", "validate a potential (symmetry, smoothness, MD stability) with a report"),
    "learn": ("eqff.cli.learn", "active learning: grow a training set where a committee is unsure, with a labeller"),
}


def build_parser(argv: List[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eqff", description="Equivariant message-passing force fields")
    parser.add_argument("--version", action="version", version=f"eqff {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        # only the chosen command's module is imported (its arguments are needed for parsing)
        if name in argv:
            importlib.import_module(module).add_arguments(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from eqff.errors import EqffError

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(importlib.import_module(COMMANDS[args.command][0]).run(args) or 0)
    except EqffError as error:
        print(f"eqff {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

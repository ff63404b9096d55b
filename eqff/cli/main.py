"""The ``eqff`` command: a thin layer over the library."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from eqff._version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eqff", description="Equivariant message-passing force fields")
    parser.add_argument("--version", action="version", version=f"eqff {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

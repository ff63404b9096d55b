"""``eqff learn CONFIG.yaml [--resume]``: active learning (eqff/learn). As with ``eqff train``, a
run folder that already holds a run is continued only with ``--resume``."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML learn config (keys: eqff/learn/config.py)")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=None,
                        help="continue the run in the output folder where it stopped (starts one if there is none)")
    parser.add_argument("--output", default=None, help="run folder (overrides the config's output)")
    parser.add_argument("--max-rounds", dest="max_rounds", type=int, default=None,
                        help="rounds in all (overrides the config; raise it with --resume to go on after the last)")


def run(args: argparse.Namespace) -> int:
    from eqff.learn import make_learn_config, run_active_learning

    overrides = {k: getattr(args, k) for k in ("resume", "output", "max_rounds") if getattr(args, k) is not None}
    state = run_active_learning(make_learn_config(args.config, overrides))
    return 0 if state["status"] in ("converged", "max_rounds") else 1

"""``eqff train [config.yaml] [--key value ...]``: every config key is also a flag."""
from __future__ import annotations

import argparse
import typing

from eqff.train.config import FIELDS, TrainConfig, make_config, parse_structured


def _number_or_word(text: str):
    """A flag value for a key that takes a number or a word (stage_two_at: 0.5, auto, off)."""
    try:
        return float(text)
    except ValueError:
        return text


def _flag_type(annotation):
    text = str(annotation)
    if "Dict" in text:
        return parse_structured
    if "float" in text and "str" in text:
        return _number_or_word
    if "bool" in text:
        return None
    if "int" in text and "float" not in text:
        return int
    if "float" in text:
        return float
    return str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="YAML config file (optional: flags alone are enough)")
    hints = typing.get_type_hints(TrainConfig)
    for name in FIELDS:
        flag = "--" + name.replace("_", "-")
        kind = _flag_type(hints[name])
        if kind is None:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None)
        else:
            parser.add_argument(flag, dest=name, type=kind, default=None, metavar=name.upper())


def run(args: argparse.Namespace) -> int:
    from eqff.train.trainer import train

    overrides = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    config = make_config(args.config, overrides)
    summary = train(config)
    return 0 if summary.get("epochs", 0) > 0 else 1

"""Saving and loading potentials: checkpoints are a state_dict plus a readable config, never a
pickled module, and load with ``torch.load(weights_only=True)``."""
from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, Union

import torch

from eqff._version import __version__
from eqff.errors import ModelFileError
from eqff.models.potential import Potential
from eqff.models.registry import build_from_config

CHECKPOINT_FORMAT = "eqff-checkpoint-v1"


def _is_derived(name: str) -> bool:
    """Buffers rebuilt exactly from the config (e3nn's Wigner-3j constants): not saved, so
    a float32 checkpoint loaded in float64 gets float64-exact constants."""
    return "._w3j_" in name


def tensor_checksum(tensors: Dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes: a changed or corrupted weight changes it."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def potential_state(potential: Potential) -> Dict[str, Any]:
    """The part of a checkpoint that rebuilds the model (a snapshot: later changes to the
    model's weights do not reach it)."""
    weights = {k: v.detach().cpu().clone() for k, v in potential.state_dict().items() if not _is_derived(k)}
    return {
        "format": CHECKPOINT_FORMAT,
        "eqff_version": __version__,
        "model_config": potential.config(),
        "model_state": weights,
        "model_state_sha256": tensor_checksum(weights),
    }


def _check_format(state: Any, source: str) -> None:
    if not isinstance(state, dict) or not str(state.get("format", "")).startswith("eqff-checkpoint-"):
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ModelFileError(f"{source}: not an eqff checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r})")
    if state["format"] != CHECKPOINT_FORMAT:
        raise ModelFileError(
            f"{source}: written by eqff {state.get('eqff_version', '?')} in format {state['format']!r}; this eqff "
            f"{__version__} reads {CHECKPOINT_FORMAT!r}: use eqff {state.get('eqff_version', '?')} to load or re-export it"
        )
    for key in ("model_config", "model_state"):
        if key not in state:
            raise ModelFileError(f"{source}: an eqff checkpoint without '{key}'; the file is incomplete")
    expected = state.get("model_state_sha256")
    if expected is not None and tensor_checksum(state["model_state"]) != expected:
        raise ModelFileError(f"{source}: the weights do not match their checksum: the file was modified or corrupted "
                             "after it was written; use an intact copy")


def saved_dtype(state: Dict[str, Any]) -> torch.dtype:
    """The dtype of a checkpoint's saved weights."""
    return next(v for v in state["model_state"].values() if v.is_floating_point()).dtype


def potential_from_state(state: Dict[str, Any], source: str = "checkpoint",
                         dtype: Union[str, torch.dtype, None] = None) -> Potential:
    """Rebuild a potential; ``dtype`` defaults to the dtype of the saved weights."""
    _check_format(state, source)
    weights = state["model_state"]
    if dtype is None:
        dtype = saved_dtype(state)
    try:
        potential = build_from_config(state["model_config"], dtype=dtype)
    except Exception as error:
        raise ModelFileError(f"{source}: its model config cannot be built by eqff {__version__} ({error})") from error
    load_weights(potential, weights, f"{source} (written by eqff {state.get('eqff_version')})")
    return potential


def load_weights(potential: Potential, weights: Dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load a checkpoint's ``model_state`` into ``potential`` (any device); every weight but the
    derived constants must fit, or ``ModelFileError``."""
    missing, unexpected = potential.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not _is_derived(k)]
    if missing or unexpected:
        raise ModelFileError(
            f"{source}: weights do not fit the model config (missing {missing[:5]}, unexpected {unexpected[:5]}); "
            "was it written by another eqff version or for another model?"
        )


def copy_potential(potential: Potential, dtype: Union[str, torch.dtype, None] = None) -> Potential:
    """An independent copy, optionally in another dtype, with exact constants
    (``copy.deepcopy`` fails on e3nn's compiled tensor products)."""
    return potential_from_state(potential_state(potential), dtype=dtype)


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> Dict[str, Any]:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise ModelFileError(
            f"{path}: cannot read it as an eqff checkpoint ({type(error).__name__}: {str(error)[:200]}); "
            "the file may be truncated or not an eqff file"
        ) from error


def load_potential(path: str | os.PathLike, map_location: str = "cpu") -> torch.nn.Module:
    """A potential from a checkpoint (``best.pt``/``last.pt``) or an exported TorchScript file."""
    from eqff.export import is_exported, load_exported

    path = os.fspath(path)
    if is_exported(path):
        return load_exported(path, map_location=map_location)
    return potential_from_state(load_checkpoint(path, map_location), source=path)

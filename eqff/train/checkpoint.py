"""Checkpoints written atomically: a temp file in the same folder, fsync, then rename.

A crash (SIGKILL included) or a failed write (disk full, permission) leaves the previous
checkpoint intact. Files hold tensors and plain containers only and load with
``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Dict

import torch

from eqff.errors import EqffError


class CheckpointWriteError(EqffError, OSError):
    """A checkpoint could not be written; the previous one is kept."""


def save_atomic(state: Dict[str, Any], path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    handle, tmp = None, None
    try:
        handle, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path), dir=folder)
        with os.fdopen(handle, "wb") as stream:
            handle = None
            torch.save(state, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
        tmp = None
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except (OSError, RuntimeError) as error:
        raise CheckpointWriteError(f"could not write {path} ({error}); the previous checkpoint is kept") from error
    finally:
        if handle is not None:
            os.close(handle)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)

"""The run's state and logs as JSON files written atomically (temp file, fsync, ``os.replace``,
the pattern of eqff/train/checkpoint.py): a kill at any moment leaves the previous version."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict

from eqff.errors import ConfigError


def write_json_atomic(data: Dict[str, Any], path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path), dir=folder)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream, indent=1)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_json(path: str) -> Dict[str, Any]:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: cannot read it ({error}); it is written atomically, so this file was changed "
                          "by hand: restore it or start a new output folder") from error

"""The eqff metadata JSON inside a model archive (TorchScript .pt and AOTInductor .pt2 are zips)."""
from __future__ import annotations

import json
import os
import zipfile
from typing import Any

from eqff.errors import ModelFileError


def read_archive_json(path: str, suffix: str, what: str) -> Any:
    """The JSON of the first member of zip ``path`` whose name ends with ``suffix``; ``what``
    names the archive kind in the error when it has none."""
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(suffix)]
            if not names:
                raise ModelFileError(f"{path}: {what}, but not an eqff export (no {suffix.rsplit('/', 1)[-1]})")
            return json.loads(archive.read(names[0]))
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ModelFileError(f"{path}: not a readable eqff model file ({error})") from error

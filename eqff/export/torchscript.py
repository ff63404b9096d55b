"""Write and read exported potentials (TorchScript + metadata in ``_extra_files``)."""
from __future__ import annotations

import json
import os
import zipfile
from typing import Any, Dict, Optional

import torch
from e3nn.util.jit import compile_mode, script
from torch import Tensor, nn

from eqff._version import __version__
from eqff.data import keys
from eqff.errors import ModelFileError
from eqff.models.potential import Potential
from eqff.nn.neighborlist import batched_neighbor_list_torch

EXPORT_FORMAT = "eqff-torchscript-v1"
METADATA_FILE = "eqff_metadata.json"


@compile_mode("script")
class ExportedPotential(nn.Module):
    """The potential plus a pure-torch neighbour list.

    ``forward(data, ...)`` takes a batch with a neighbour list, exactly like ``Potential``;
    ``compute(atomic_numbers, positions, cell, pbc)`` builds the neighbour list itself
    (one structure, Å and eV).
    """

    def __init__(self, potential: Potential):
        super().__init__()
        self.potential = potential
        self.cutoff: float = potential.cutoff
        self.kind: str = potential.kind
        self.config_json: str = potential.config_json

    def forward(self, data: Dict[str, Tensor], compute_forces: bool = True, compute_stress: bool = False,
                create_graph: bool = False) -> Dict[str, Tensor]:
        return self.potential(data, compute_forces, compute_stress, create_graph)

    @torch.jit.export
    def compute(self, atomic_numbers: Tensor, positions: Tensor, cell: Tensor, pbc: Tensor,
                compute_stress: bool = False) -> Dict[str, Tensor]:
        batch = torch.zeros_like(atomic_numbers)
        cell = cell.to(positions.dtype).reshape(1, 3, 3)
        pbc = pbc.to(torch.bool).reshape(1, 3)
        edge_index, shifts = batched_neighbor_list_torch(positions, cell, pbc, batch, 1, self.cutoff)
        data: Dict[str, Tensor] = {
            keys.POSITIONS: positions, keys.ATOMIC_NUMBERS: atomic_numbers, keys.BATCH: batch,
            keys.CELL: cell, keys.PBC: pbc, keys.EDGE_INDEX: edge_index, keys.CELL_SHIFTS: shifts,
        }
        return self.potential(data, True, compute_stress, False)


def export_potential(potential: Potential, path: str | os.PathLike, dtype: Optional[torch.dtype] = None,
                     metadata: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Script ``potential`` (a copy, on CPU, in ``dtype``) and save it with its metadata."""
    from eqff.models.io import copy_potential

    model = copy_potential(potential, dtype=dtype).eval()
    dtype = next(model.parameters()).dtype
    config = model.config()
    info = {
        "format": EXPORT_FORMAT,
        "eqff_version": __version__,
        "kind": config["kind"],
        "elements": config["elements"],
        "cutoff": config["cutoff"],
        "dtype": str(dtype).replace("torch.", ""),
        "units": {"length": "angstrom", "energy": "eV", "forces": "eV/angstrom", "stress": "eV/angstrom^3"},
        "model_config": config,
        **(metadata or {}),
    }
    scripted = script(ExportedPotential(model))
    path = os.fspath(path)
    tmp = path + ".tmp"
    torch.jit.save(scripted, tmp, _extra_files={METADATA_FILE: json.dumps(info, indent=1, sort_keys=True)})
    os.replace(tmp, path)
    return info


def is_exported(path: str | os.PathLike) -> bool:
    """True for a TorchScript archive (a checkpoint is a zip too, but has no ``code/``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def read_metadata(path: str | os.PathLike) -> Dict[str, Any]:
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("extra/" + METADATA_FILE)]
            if not names:
                raise ModelFileError(f"{path}: a TorchScript file, but not an eqff export (no {METADATA_FILE})")
            info = json.loads(archive.read(names[0]))
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ModelFileError(f"{path}: not a readable eqff model file ({error})") from error
    if info.get("format") != EXPORT_FORMAT:
        raise ModelFileError(
            f"{path}: export format {info.get('format')!r} (eqff {info.get('eqff_version')}); this eqff "
            f"{__version__} reads {EXPORT_FORMAT!r}: use the eqff version that wrote it or re-export"
        )
    return info


def load_exported(path: str | os.PathLike, map_location: str = "cpu") -> torch.jit.ScriptModule:
    info = read_metadata(path)
    try:
        module = torch.jit.load(os.fspath(path), map_location=map_location)
    except Exception as error:
        raise ModelFileError(f"{os.fspath(path)}: TorchScript cannot load it ({str(error)[:300]}); the file may be corrupt") from error
    module.eqff_metadata = info
    return module

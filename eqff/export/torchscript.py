"""Write and read exported potentials (TorchScript + metadata in ``_extra_files``).

An exported file holds the potential, its pure-torch neighbour list and its unit handling, and
loads with ``torch.jit.load`` alone (no eqff, e3nn or vesin)::

    import torch
    extra = {"eqff_metadata.json": ""}
    model = torch.jit.load("ethanol.pt", _extra_files=extra)   # extra now holds the metadata JSON
    out = model.compute(atomic_numbers, positions, cell, pbc)   # Å, eV: energy [1], forces [N,3]
    energy, forces = model.compute_openmm(atomic_numbers, positions_nm, box_nm)  # kJ/mol, kJ/mol/nm

``compute`` and ``compute_openmm`` accept positions anywhere (outside the cell too) and cells
of any size: the in-model neighbour list wraps atoms and takes as many periodic images as the
cutoff needs. Non-finite positions or cells and elements the model lacks raise an error.
"""
from __future__ import annotations

import json
import os
import zipfile
from typing import Any, Dict, Optional, Tuple, Union

import torch
from e3nn.util.jit import compile_mode, script
from torch import Tensor, nn

from eqff import units
from eqff._version import __version__
from eqff.data import keys
from eqff.errors import ModelFileError
from eqff.export.archive import read_archive_json
from eqff.export.aoti import Pt2Potential, export_pt2, is_pt2, load_pt2, read_pt2_metadata
from eqff.models.io import tensor_checksum
from eqff.models.last_layer import LastLayerUncertainty, head_from_state
from eqff.models.potential import Potential
from eqff.nn.neighborlist import batched_neighbor_list_torch
from eqff.runtime.inputs import checked_cell, checked_positions, from_openmm, single_structure, to_openmm

EXPORT_FORMAT = "eqff-torchscript-v1"
METADATA_FILE = "eqff_metadata.json"
UNITS = {
    "length": "angstrom", "energy": "eV", "forces": "eV/angstrom", "stress": "eV/angstrom^3",
    "compute_openmm": {"positions": "nm", "box": "nm", "energy": "kJ/mol", "forces": "kJ/mol/nm"},
}


@compile_mode("script")
class ExportedPotential(nn.Module):
    """The potential plus a pure-torch neighbour list and OpenMM units.

    ``forward(data, ...)`` takes a batch with a neighbour list, exactly like ``Potential``;
    ``compute(atomic_numbers, positions, cell, pbc)`` builds the neighbour list itself
    (one structure, Å and eV); ``compute_openmm(atomic_numbers, positions_nm, box_nm)`` is the
    same in OpenMM units (nm, kJ/mol, kJ/mol/nm; ``box_nm`` None means not periodic).
    With an enabled ``uncertainty`` head (a checkpoint from ``eqff uncertainty``), ``forward``
    and ``compute`` also give ``energy_std`` [B] (eV) and ``forces_std`` [N] (eV/Å per atom);
    ``compute_openmm`` skips it (OpenMM takes energy and forces only).
    """

    def __init__(self, potential: Potential, uncertainty: Optional[LastLayerUncertainty] = None):
        super().__init__()
        self.potential = potential
        if uncertainty is None:
            uncertainty = LastLayerUncertainty().to(potential.energy_scale.dtype)
        self.uncertainty = uncertainty
        self.has_uncertainty: bool = uncertainty.enabled
        self.cutoff: float = potential.cutoff
        self.kind: str = potential.kind
        self.config_json: str = potential.config_json
        self.register_buffer("atomic_numbers", potential.atomic_numbers.clone())
        self.nm_to_angstrom: float = units.NM_TO_ANGSTROM
        self.ev_to_kj_per_mol: float = units.EV_TO_KJ_PER_MOL
        self.ev_per_angstrom_to_kj_per_mol_nm: float = units.EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM

    def forward(self, data: Dict[str, Tensor], compute_forces: bool = True, compute_stress: bool = False,
                create_graph: bool = False, compute_features: bool = False) -> Dict[str, Tensor]:
        return self._evaluate(data, compute_forces, compute_stress, create_graph, compute_features, self.has_uncertainty)

    def _evaluate(self, data: Dict[str, Tensor], compute_forces: bool, compute_stress: bool, create_graph: bool,
                  compute_features: bool, with_uncertainty: bool) -> Dict[str, Tensor]:
        out = self.potential(data, compute_forces, compute_stress, create_graph, compute_features or with_uncertainty)
        if with_uncertainty:
            out = self.uncertainty(out, data[keys.BATCH], data[keys.CELL].shape[0], compute_forces)
            if not compute_features:
                del out[keys.NODE_FEATURES]
        return out

    @torch.jit.export
    def compute(self, atomic_numbers: Tensor, positions: Tensor, cell: Tensor, pbc: Tensor,
                compute_stress: bool = False) -> Dict[str, Tensor]:
        return self._compute(atomic_numbers, positions, cell, pbc, compute_stress, self.has_uncertainty)

    def _compute(self, atomic_numbers: Tensor, positions: Tensor, cell: Tensor, pbc: Tensor, compute_stress: bool,
                 with_uncertainty: bool) -> Dict[str, Tensor]:
        if positions.dim() != 2 or positions.shape[1] != 3 or atomic_numbers.shape[0] != positions.shape[0]:
            raise ValueError("eqff: positions must be [N,3] with one atomic number per atom")
        positions = checked_positions(positions)
        cell = checked_cell(cell.to(positions.dtype).reshape(1, 3, 3))
        pbc = pbc.to(torch.bool).reshape(1, 3)
        edge_index, shifts = batched_neighbor_list_torch(positions, cell, pbc, torch.zeros_like(atomic_numbers), 1,
                                                         self.cutoff)
        data = single_structure(atomic_numbers, positions, cell, pbc, edge_index, shifts)
        return self._evaluate(data, True, compute_stress, False, False, with_uncertainty)

    @torch.jit.export
    def compute_openmm(self, atomic_numbers: Tensor, positions: Tensor,
                       box: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Energy (kJ/mol, 0-d float64) and forces (kJ/mol/nm, [N,3] float64) from positions and
        box vectors (rows) in nm, in the model's dtype; ``box`` None: not periodic."""
        x, cell, pbc = from_openmm(positions, box, self.potential.energy_scale.dtype, self.nm_to_angstrom)
        out = self._compute(atomic_numbers, x, cell, pbc, False, False)
        return to_openmm(out[keys.ENERGY], out[keys.FORCES], self.ev_to_kj_per_mol,
                         self.ev_per_angstrom_to_kj_per_mol_nm)


def _find_training_hash(state: Dict[str, Any]) -> Optional[str]:
    """The training-data hash a trainer checkpoint carries (top level or one dict down)."""
    names = ("training_data_hash", "data_hash")
    for name in names:
        if isinstance(state.get(name), str):
            return state[name]
    for value in state.values():
        if isinstance(value, dict):
            for name in names:
                if isinstance(value.get(name), str):
                    return value[name]
    return None


def _training_summary(state: Dict[str, Any]) -> Dict[str, Any]:
    """What a trainer checkpoint says about its training (JSON-able scalars only)."""
    summary: Dict[str, Any] = {}
    train_config = state.get("train_config")
    if isinstance(train_config, dict):
        for key in ("train_file", "valid_file", "energy_key", "forces_key", "stress_key", "seed"):
            if isinstance(train_config.get(key), (str, int, float)):
                value = train_config[key]
                summary[key] = os.path.basename(value) if key.endswith("_file") else value
    for key in ("epoch", "best_epoch", "best_loss"):
        if isinstance(state.get(key), (int, float)):
            summary[key] = state[key]
    return summary


def export_potential(potential: Potential, path: str | os.PathLike, dtype: Optional[torch.dtype] = None,
                     metadata: Optional[Dict[str, Any]] = None,
                     uncertainty: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Script ``potential`` (a copy, on CPU, in ``dtype``) and save it with its metadata, and its
    last-layer uncertainty when given (a checkpoint's ``uncertainty`` entry)."""
    from ase.data import chemical_symbols

    from eqff.models.io import copy_potential

    model = copy_potential(potential, dtype=dtype).eval()
    dtype = next(model.parameters()).dtype
    config = model.config()
    info = {
        "format": EXPORT_FORMAT,
        "eqff_version": __version__,
        "torch_version": torch.__version__,
        "kind": config["kind"],
        "elements": config["elements"],
        "element_symbols": [chemical_symbols[z] for z in config["elements"]],
        "cutoff": config["cutoff"],
        "dtype": str(dtype).replace("torch.", ""),
        "units": UNITS,
        "training_data_hash": None,
        "model_config": config,
        **(metadata or {}),
    }
    head = head_from_state(uncertainty, dtype)
    info["uncertainty"] = head.enabled  # compute() gives energy_std and forces_std
    scripted = script(ExportedPotential(model, head))
    info["weights_sha256"] = tensor_checksum(dict(scripted.state_dict()))
    path = os.fspath(path)
    tmp = path + ".tmp"
    torch.jit.save(scripted, tmp, _extra_files={METADATA_FILE: json.dumps(info, indent=1, sort_keys=True)})
    os.replace(tmp, path)
    return info


def export_checkpoint(checkpoint: str | os.PathLike, path: str | os.PathLike,
                      dtype: Optional[torch.dtype] = None, metadata: Optional[Dict[str, Any]] = None,
                      format: str = "torchscript") -> Dict[str, Any]:
    """Export a checkpoint file (``best.pt``, ``last.pt`` or ``potential_state``): the model in
    ``dtype`` (default: the checkpoint's), with the checkpoint's training-data hash.
    ``format``: "torchscript" (``export_potential``) or "pt2" (AOTInductor, ``eqff.export.aoti``)."""
    from eqff.models.io import load_checkpoint, potential_from_state

    checkpoint = os.fspath(checkpoint)
    if format not in ("torchscript", "pt2"):
        raise ModelFileError(f"export format must be 'torchscript' or 'pt2', got {format!r}")
    if is_exported(checkpoint):
        raise ModelFileError(f"{checkpoint}: is already an exported model file; export from the checkpoint "
                             "(best.pt / last.pt) instead")
    state = load_checkpoint(checkpoint)
    potential = potential_from_state(state, source=checkpoint, dtype=dtype)
    info = {"training_data_hash": _find_training_hash(state), "source_checkpoint": os.path.basename(checkpoint),
            "training": _training_summary(state)}
    for key in ("example_structure", "e0s"):  # small JSON-able extras a trainer checkpoint keeps
        if isinstance(state.get(key), dict):
            try:
                info[key] = json.loads(json.dumps(state[key]))
            except (TypeError, ValueError):
                pass
    if format == "pt2":  # energy, forces, stress: a .pt2 carries no uncertainty
        return export_pt2(potential, path, dtype=dtype, metadata={**info, **(metadata or {})})
    return export_potential(potential, path, dtype=dtype, metadata={**info, **(metadata or {})},
                            uncertainty=state.get("uncertainty"))


def state_from_exported(path: str | os.PathLike) -> Dict[str, Any]:
    """A checkpoint-like state (``potential_state``'s keys plus ``e0s``) rebuilt from an exported
    TorchScript file: its ``model_config`` metadata and the potential's weights. What makes a
    shipped ``model.pt`` usable as ``init_from`` (fine-tuning) without its training checkpoint."""
    from eqff.models.io import CHECKPOINT_FORMAT, _is_derived, tensor_checksum
    from eqff.models.registry import build_from_config

    path = os.fspath(path)
    if is_pt2(path):
        raise ModelFileError(f"{path}: a .pt2 package holds compiled code, not weights to train on; "
                             "start from the TorchScript model.pt or the training checkpoint (best.pt)")
    info = read_metadata(path)
    scripted = torch.jit.load(path, map_location="cpu")
    # TorchScript's state_dict also lists non-persistent constants (Clebsch-Gordan tables): keep
    # the names a checkpoint of this model config holds, so load_weights still checks every weight
    names = set(build_from_config(info["model_config"]).state_dict())
    prefix = "potential."
    weights = {k[len(prefix):]: v.detach().clone() for k, v in scripted.state_dict().items()
               if k.startswith(prefix) and k[len(prefix):] in names and not _is_derived(k)}
    state = {"format": CHECKPOINT_FORMAT, "eqff_version": info.get("eqff_version"),
             "model_config": info["model_config"], "model_state": weights,
             "model_state_sha256": tensor_checksum(weights)}
    if isinstance(info.get("e0s"), dict):
        state["e0s"] = info["e0s"]
    return state


def is_exported(path: str | os.PathLike) -> bool:
    """True for a TorchScript archive (a checkpoint is a zip too, but has no ``code/``) or an
    AOTInductor ``.pt2`` package."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name or "/data/aotinductor/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def read_metadata(path: str | os.PathLike) -> Dict[str, Any]:
    path = os.fspath(path)
    if is_pt2(path):
        return read_pt2_metadata(path)
    info = read_archive_json(path, "extra/" + METADATA_FILE, "a TorchScript file")
    if not isinstance(info, dict) or info.get("format") != EXPORT_FORMAT:
        found = info.get("format") if isinstance(info, dict) else None
        version = info.get("eqff_version") if isinstance(info, dict) else None
        raise ModelFileError(
            f"{path}: export format {found!r} (eqff {version}); this eqff "
            f"{__version__} reads {EXPORT_FORMAT!r}: use the eqff version that wrote it or re-export"
        )
    return info


def load_exported(path: str | os.PathLike, map_location: str = "cpu") -> Union[torch.jit.ScriptModule, Pt2Potential]:
    """A TorchScript export (a ScriptModule) or a ``.pt2`` package (a ``Pt2Potential``, same interface)."""
    if is_pt2(path):
        return load_pt2(path, map_location=map_location)
    info = read_metadata(path)
    try:
        module = torch.jit.load(os.fspath(path), map_location=map_location)
    except Exception as error:
        raise ModelFileError(f"{os.fspath(path)}: TorchScript cannot load it ({str(error)[:300]}); the file may be corrupt") from error
    for method in ("compute", "compute_openmm"):
        if not hasattr(module, method):
            raise ModelFileError(f"{os.fspath(path)}: an eqff export without the {method}() method; re-export it "
                                 f"with eqff {__version__}")
    expected = info.get("weights_sha256")
    if expected is not None and tensor_checksum(dict(module.state_dict())) != expected:
        raise ModelFileError(f"{os.fspath(path)}: the weights do not match the checksum in its metadata: the file was "
                             "modified or corrupted after export; use an intact copy or re-export")
    module.eqff_metadata = info
    return module

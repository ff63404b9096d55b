"""One loader for every deployed path, with one dtype/device policy.

A user holds a checkpoint (``best.pt``), a TorchScript export, a ``.pt2`` package or a model in
memory; ``load_model`` turns any of them into a module with the interface of an exported
potential (``forward(batch)``, ``compute``, ``compute_openmm``, ``cutoff``, ``atomic_numbers``).

The policy:
* ``dtype=None`` keeps the model's own dtype (a checkpoint's saved weights, an export's dtype).
* Another dtype is applied to a private copy: a checkpoint or an in-memory ``Potential`` is
  rebuilt in it (exact constants); a TorchScript export is cast, which keeps its float32
  constants when going to float64 (a warning says so); a ``.pt2`` package computes only in the
  dtype it was compiled for (``ConfigError``).
* The caller's object is never changed (no in-place ``.to``): in-memory models are copied,
  loaded TorchScript modules are copied before a cast or a move.
* ``LoadedModel.note`` says in words what was done about the dtype, for logs and reports.
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Union

import torch
from torch import nn

from eqff.dtypes import DTYPES, dtype_name, resolve_dtype  # noqa: F401  (DTYPES: re-exported)
from eqff.errors import ConfigError
from eqff.models.chunking import check_max_edges, set_max_edges_per_chunk
from eqff.models.chunking import max_edges_per_chunk as chunk_size_of
from eqff.predict import model_dtype

ModelLike = Union[str, os.PathLike, nn.Module]


@dataclass
class LoadedModel:
    """A deployable module and what the loader did to get it."""

    module: nn.Module  # ExportedPotential (eager or scripted), a loaded TorchScript export or a Pt2Potential
    format: str  # "checkpoint", "torchscript", "pt2", "memory" or "committee"
    source: str  # the path, or a description of the in-memory model
    dtype: torch.dtype  # what the module computes in
    device: torch.device
    note: str  # the dtype decision in words
    example_structure: Optional[Dict[str, Any]] = None  # a validation frame the checkpoint or export stores

    @property
    def cutoff(self) -> float:
        return float(self.module.cutoff)

    @property
    def known_numbers(self) -> set:
        return set(int(z) for z in self.module.atomic_numbers.tolist())

    @property
    def has_uncertainty(self) -> bool:
        """The module's outputs include ``energy_std`` and ``forces_std`` (a committee or a
        checkpoint with its last-layer uncertainty)."""
        return self.format == "committee" or bool(getattr(self.module, "has_uncertainty", False))

    @property
    def metadata(self) -> Optional[Dict[str, Any]]:
        """An export's metadata (None for checkpoints and in-memory models)."""
        return getattr(self.module, "eqff_metadata", None)


PT2_NOT_TORCHSCRIPT = ("an eqff .pt2 export (AOTInductor) is not TorchScript, which openmmtorch.TorchForce needs: "
                       "use eqff.openmm.python_force (implementation='pythonforce') for it, or export the "
                       "checkpoint with `eqff export --format torchscript` for a TorchForce")


def is_pt2_model(model: Any) -> bool:
    """A ``.pt2`` export: a path to one or a loaded ``Pt2Potential``."""
    from eqff.export import Pt2Potential, is_pt2

    if isinstance(model, (str, os.PathLike)):
        return is_pt2(os.fspath(model))
    return isinstance(model, Pt2Potential)


def load_model(model: ModelLike, dtype: Union[str, torch.dtype, None] = None,
               device: Union[str, torch.device] = "cpu", script: bool = False, uncertainty: bool = True,
               max_edges_per_chunk: Optional[int] = None) -> LoadedModel:
    """``model`` (checkpoint or export path, ``Potential``, ``ExportedPotential``, loaded export;
    a list of them: a ``Committee``, eqff.runtime.committee) as a ``LoadedModel`` on ``device``
    in ``dtype`` (None: the model's own). ``script=True``
    gives a TorchScript module (what ``openmmtorch.TorchForce`` runs; a ``.pt2`` cannot be one).
    A checkpoint or export that carries a last-layer uncertainty (eqff.runtime.llpr) gives a
    module whose outputs include ``energy_std`` and ``forces_std`` (a checkpoint's unless
    ``uncertainty=False``).

    ``max_edges_per_chunk``: evaluate each layer over at most that many edges at a time,
    recomputed in the backward pass, so that peak memory stays bounded on large systems
    (eqff/models/chunking.py; the same numbers to round-off; the messages are computed once more
    in the backward pass: 0.8-1.3x the time of a one-piece call on this project's CPU,
    benchmarks/RESULTS.md). Eager models
    only (checkpoints, models in memory): a TorchScript or .pt2 export, or ``script=True``, is
    refused. None keeps the setting of a model in memory (0 for files); 0 evaluates all edges at
    once."""
    given = model.module if isinstance(model, LoadedModel) else model
    if max_edges_per_chunk is None:  # keep the setting of a model in memory (copies start from 0)
        chunk = chunk_size_of(given) if isinstance(given, nn.Module) else 0
    else:
        chunk = check_max_edges(max_edges_per_chunk)
    if script and chunk:
        raise ConfigError(CHUNKS_NEED_EAGER + " (script=True was asked for)")
    loaded = _load(model, dtype, device, script, uncertainty)
    if chunk_size_of(loaded.module) == chunk or (loaded.format in ("torchscript", "pt2") and chunk == 0):
        return loaded
    if loaded.format in ("torchscript", "pt2"):
        raise ConfigError(f"{loaded.source}: {CHUNKS_NEED_EAGER}")
    if loaded is model:  # the caller's LoadedModel: work on a private copy, as for dtypes
        loaded = replace(loaded, module=_private_copy(loaded.module, loaded.source).to(loaded.device))
    set_max_edges_per_chunk(loaded.module, chunk)
    return loaded


CHUNKS_NEED_EAGER = ("max_edges_per_chunk (chunked evaluation) runs eager models only: TorchScript and .pt2 exports "
                     "evaluate all edges at once; load the checkpoint (best.pt) or pass the model in memory")


def _load(model: ModelLike, dtype: Union[str, torch.dtype, None], device: Union[str, torch.device], script: bool,
          uncertainty: bool) -> LoadedModel:
    from eqff.export import ExportedPotential, Pt2Potential, is_exported, load_exported, load_pt2
    from eqff.models.io import copy_potential, load_checkpoint, potential_from_state, saved_dtype
    from eqff.models.last_layer import head_from_state
    from eqff.models.potential import Potential

    target = resolve_dtype(dtype)
    device = torch.device(device)
    if isinstance(model, LoadedModel):  # already loaded: as it is, or its module in another dtype/device
        if target in (None, model.dtype) and device == model.device and not script:
            return model
        model = model.module
    if isinstance(model, (list, tuple)):
        return _committee(model, target, device, script)
    if is_pt2_model(model):
        if script:
            raise ConfigError(PT2_NOT_TORCHSCRIPT)
        loaded = model if isinstance(model, Pt2Potential) else load_pt2(model, map_location=str(device))
        if target is not None and target != loaded.dtype:
            raise ConfigError(f"{loaded.path}: a .pt2 export computes in the dtype it was compiled for "
                              f"({dtype_name(loaded.dtype)}), not {dtype_name(target)}; pass dtype=None or export "
                              "the checkpoint again with that --dtype")
        if device.type != "cpu":
            loaded = loaded.to(device)  # raises: a .pt2 is compiled for the CPU
        return LoadedModel(loaded, "pt2", loaded.path, loaded.dtype, device, f"{dtype_name(loaded.dtype)}, as compiled",
                           loaded.eqff_metadata.get("example_structure"))
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if is_exported(path):
            module = load_exported(path, map_location=str(device))
            return _torchscript(module, target, device, path, private=True)
        state = load_checkpoint(path)
        potential = potential_from_state(state, source=path, dtype=target)
        head = head_from_state(state.get("uncertainty") if uncertainty else None, model_dtype(potential), path)
        note = _rebuilt_note(saved_dtype(state), potential)
        if head.enabled:
            note += ", with its last-layer uncertainty (energy_std, forces_std)"
        loaded = _eager(potential, "checkpoint", path, device, script, note, head)
        loaded.example_structure = state.get("example_structure")
        return loaded
    if isinstance(model, torch.jit.ScriptModule) and hasattr(model, "compute_openmm"):
        return _torchscript(model, target, device, "the given TorchScript model", private=False)
    if isinstance(model, ExportedPotential):
        model = model.potential
    if isinstance(model, Potential):
        own = model_dtype(model)
        copy = copy_potential(model, dtype=target)
        return _eager(copy, "memory", f"the given {model.kind} model", device, script,
                      _rebuilt_note(own, copy, copied=True))
    raise ConfigError(f"cannot use a {type(model).__name__} as an eqff model: give a checkpoint or export path, "
                      "an eqff Potential or a loaded eqff export")


def _committee(models, target, device, script) -> LoadedModel:
    """A ``Committee`` of the loaded ``models`` (one dtype: theirs, or ``target``)."""
    from eqff.runtime.committee import Committee

    if script:
        raise ConfigError("a committee runs in Python (ASE, PythonForce, eqff evaluate), not as a TorchForce")
    members = [load_model(m, dtype=target, device=device) for m in models]
    dtypes = sorted(set(dtype_name(m.dtype) for m in members))
    if len(dtypes) > 1:
        raise ConfigError(f"the committee's models compute in {' and '.join(dtypes)}: pass dtype='float32' or "
                          "'float64' to run them all in one")
    committee = Committee([m.module for m in members])
    return LoadedModel(committee, "committee", ", ".join(m.source for m in members), members[0].dtype, device,
                       f"{dtypes[0]}, a committee of {len(members)} models")


def _private_copy(module: nn.Module, source: str) -> nn.Module:
    """A copy of an eager deployable module (an ``ExportedPotential`` with its uncertainty head,
    or a ``Committee`` of them), so that a setting changed on it does not reach the caller's."""
    from eqff.export import ExportedPotential
    from eqff.models.io import copy_potential
    from eqff.models.last_layer import head_from_state
    from eqff.runtime.committee import Committee

    if isinstance(module, Committee):
        return Committee([_private_copy(m, source) for m in module.members], module.uncertainty_scale)
    if not isinstance(module, ExportedPotential):
        raise ConfigError(f"{source}: {CHUNKS_NEED_EAGER}")
    head = module.uncertainty
    dtype = model_dtype(module.potential)
    return ExportedPotential(copy_potential(module.potential).eval(),
                             head_from_state(head.state() if head.enabled else None, dtype))


def _eager(potential, format: str, source: str, device: torch.device, script: bool, note: str,
           head=None) -> LoadedModel:
    from e3nn.util.jit import script as e3nn_script

    from eqff.export import ExportedPotential

    module = ExportedPotential(potential.eval(), head)
    if script:
        module = e3nn_script(module)
    module = module.to(device)
    return LoadedModel(module, format, source, model_dtype(potential), device, note)


def _torchscript(module: torch.jit.ScriptModule, target: Optional[torch.dtype], device: torch.device, source: str,
                 private: bool) -> LoadedModel:
    """A TorchScript export in ``target`` on ``device``; copied first unless it is already
    ``private`` (freshly loaded here), because ``.to`` casts a ScriptModule in place."""
    current = module.potential.energy_scale.dtype
    module_device = module.potential.energy_scale.device
    cast = target is not None and target != current
    if (cast or module_device != device) and not private:
        buffer = io.BytesIO()
        torch.jit.save(module, buffer)
        buffer.seek(0)
        metadata = getattr(module, "eqff_metadata", None)
        module = torch.jit.load(buffer, map_location=str(device))
        if metadata is not None:
            module.eqff_metadata = metadata
    note = f"{dtype_name(current)}, as exported"
    if cast:
        if target == torch.float64:
            warnings.warn(f"{source}: a float32 export cast to float64 keeps its float32 constants (equivariance to "
                          "~1e-7); export the checkpoint in float64 for float64-exact numbers", stacklevel=4)
            note = "float64, cast from a float32 export (its constants stay float32)"
        else:
            note = f"float32, cast from a {dtype_name(current)} export"
        module = module.to(target)
    module = module.to(device)
    return LoadedModel(module, "torchscript", source, target or current, device, note,
                       (getattr(module, "eqff_metadata", None) or {}).get("example_structure"))


def _rebuilt_note(original: torch.dtype, potential: nn.Module, copied: bool = False) -> str:
    now = model_dtype(potential)
    what = "a copy of the given model" if copied else "the checkpoint"
    if now == original:
        return f"{dtype_name(now)}, {what} in its own dtype"
    return f"{dtype_name(now)}, {what} rebuilt from {dtype_name(original)} weights (exact constants)"

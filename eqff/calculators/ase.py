"""ASE calculator for eqff potentials: an adapter over ``eqff.runtime``.

``model``: a checkpoint, an exported file (TorchScript or ``.pt2``), a model in memory or an
``eqff.runtime.LoadedModel``, loaded by ``eqff.runtime.load_model``: ``dtype=None`` (the
default) computes in the model's own dtype, another dtype works on a private copy
(``self.dtype_note`` says what was done); the caller's model is never changed.

A list of models is a committee (``eqff.runtime.committee``): the results are its means, and
``calc.results["energy_std"]`` (eV) and ``calc.results["forces_std"]`` ([N] eV/Å, per atom)
its calibrated spread, the uncertainty of the prediction. A checkpoint written by
``eqff uncertainty`` (one model, last-layer uncertainty: ``eqff.runtime.llpr``) gives the same
two results, calibrated the same way.

The neighbour list is built with vesin at ``cutoff + skin`` and reused until an atom has moved
more than ``skin / 2`` (or the cell, pbc or atoms change); each step keeps only the pairs
inside the cutoff (``eqff.runtime.skin``), so the model sees exactly the same graph as without
a skin.

Memory: ``max_edges_per_chunk=C`` evaluates every layer over at most C edges at a time,
recomputed in the backward pass (eqff/models/chunking.py), so that large systems fit in memory
(SEGNN on 12,288 waters: benchmarks/RESULTS.md, "Memory-bounded evaluation"); the same numbers
to round-off. Eager models only (a checkpoint or a model in memory).

Threads: ``threads=None`` lets eqff choose torch's intra-op threads once per process (the cores
not busy with other work, or ``OMP_NUM_THREADS``; eqff/threads.py); ``threads=N`` sets them.
"""
from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np
import torch
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from eqff.data import keys
from eqff.data.frames import Frame, validate_frame
from eqff.data.neighbors import check_separation, neighbor_list
from eqff.runtime import LoadedModel, load_model
from eqff.runtime.allocator import keep_freed_memory
from eqff.runtime.inputs import check_elements, single_structure
from eqff.runtime.skin import pairs_within, skin_is_stale
from eqff.threads import deploy_threads


class EqffCalculator(Calculator):
    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, model: Union[torch.nn.Module, str, os.PathLike, list, LoadedModel], device: str = "cpu",
                 dtype: Optional[str] = None, skin: float = 1.0, threads: Optional[int] = None,
                 max_edges_per_chunk: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.threads, self.threads_reason = deploy_threads(threads)
        # large systems: no page faults every call (allocator.py), unless memory is to be bounded
        self.keeps_freed_memory = keep_freed_memory(bounded=bool(max_edges_per_chunk))
        loaded = load_model(model, dtype=dtype, device=device, max_edges_per_chunk=max_edges_per_chunk)
        self.potential = loaded.module.eval()
        self.device, self.dtype, self.dtype_note = loaded.device, loaded.dtype, loaded.note
        self.cutoff = loaded.cutoff
        self.skin = float(skin)
        self.known_numbers = loaded.known_numbers
        self.has_uncertainty = loaded.has_uncertainty  # results get energy_std and forces_std
        self._cache: Optional[dict] = None
        self.neighbor_list_builds = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        want_stress = "stress" in properties
        if want_stress and not atoms.pbc.all():
            raise PropertyNotImplementedError("stress needs a cell periodic in all three directions")
        validate_frame(Frame.from_atoms(atoms, source="atoms"), require_energy=False, require_forces=False)
        check_elements(atoms.numbers, self.known_numbers)
        edge_index, shifts = self._neighbors(atoms)
        tensor = lambda a, dtype=self.dtype: torch.as_tensor(a, dtype=dtype, device=self.device)
        data = single_structure(tensor(atoms.numbers, torch.long), tensor(atoms.positions), tensor(atoms.cell.array),
                                tensor(atoms.pbc, torch.bool), tensor(edge_index, torch.long), tensor(shifts))
        out = self.potential(data, compute_forces=True, compute_stress=want_stress)
        energy = out[keys.ENERGY][0].item()
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": out[keys.FORCES].detach().cpu().double().numpy(),
            "energies": out[keys.ATOMIC_ENERGIES].detach().cpu().double().numpy(),
        }
        if want_stress:
            stress = out[keys.STRESS][0].detach().cpu().double().numpy()
            self.results["stress"] = full_3x3_to_voigt_6_stress(stress)
        if keys.ENERGY_STD in out:  # a committee's calibrated spread, or a last-layer uncertainty
            self.results["energy_std"] = out[keys.ENERGY_STD][0].item()
            self.results["forces_std"] = out[keys.FORCES_STD].detach().cpu().double().numpy()

    def _neighbors(self, atoms) -> tuple[np.ndarray, np.ndarray]:
        """The pairs within the cutoff (edge_index, cell shifts), from the skin list."""
        positions = torch.from_numpy(np.ascontiguousarray(atoms.positions, dtype=np.float64))
        cell = torch.from_numpy(np.ascontiguousarray(atoms.cell.array, dtype=np.float64))
        cache = self._cache
        if (cache is None or not np.array_equal(atoms.numbers, cache["numbers"])
                or not np.array_equal(atoms.pbc, cache["pbc"])
                or skin_is_stale(positions, cell, cache["positions"], cache["cell"], self.skin)):
            edge_index, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, self.cutoff + self.skin)
            cache = self._cache = {
                "positions": positions.clone(), "cell": cell.clone(), "numbers": atoms.numbers.copy(),
                "pbc": atoms.pbc.copy(), "edge_index": torch.from_numpy(edge_index),
                "shifts": torch.from_numpy(np.asarray(shifts, dtype=np.float64)),
            }
            self.neighbor_list_builds += 1
        edge_index, shifts, distance_sq = pairs_within(positions, cell, cache["edge_index"], cache["shifts"],
                                                       self.cutoff)
        edge_index, shifts = edge_index.numpy(), shifts.numpy()
        check_separation(distance_sq.numpy(), edge_index, "atoms")
        return edge_index, shifts

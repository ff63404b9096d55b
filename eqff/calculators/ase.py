"""ASE calculator for eqff potentials (in memory, checkpoint or exported file).

The neighbour list is built with vesin at ``cutoff + skin`` and reused until an atom has moved
more than ``skin / 2`` (or the cell, pbc or atoms change); each step keeps only the pairs
inside the cutoff, so the model sees exactly the same graph as without a skin.

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
from eqff.errors import UnknownElementError, element_names
from eqff.models.io import copy_potential
from eqff.models.potential import Potential
from eqff.threads import deploy_threads

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class EqffCalculator(Calculator):
    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, model: Union[torch.nn.Module, str, os.PathLike], device: str = "cpu",
                 dtype: str = "float32", skin: float = 1.0, threads: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.threads, self.threads_reason = deploy_threads(threads)
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if isinstance(model, (str, os.PathLike)):
            from eqff.export import is_exported, load_exported
            from eqff.models.io import load_checkpoint, potential_from_state

            path = os.fspath(model)
            if is_exported(path):  # TorchScript, used in the requested dtype; a .pt2 in its own
                potential = load_exported(path, map_location=device)
            else:  # a checkpoint is rebuilt in the requested dtype (exact constants)
                potential = potential_from_state(load_checkpoint(path, device), source=path, dtype=_DTYPES[dtype])
        elif isinstance(model, Potential):
            potential = copy_potential(model, dtype=_DTYPES[dtype])  # its own copy, in its own dtype
        else:
            potential = model
        self.potential = potential.to(device=device, dtype=_DTYPES[dtype]).eval()
        self.device = torch.device(device)
        # a .pt2 package is compiled for one dtype: positions go in (and results come out) in it
        self.dtype = getattr(self.potential, "compiled_dtype", _DTYPES[dtype])
        self.cutoff = float(self.potential.cutoff)
        self.skin = float(skin)
        self.known_numbers = set(int(z) for z in self.potential.atomic_numbers.tolist())
        self._cache: Optional[dict] = None
        self.neighbor_list_builds = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        want_stress = "stress" in properties
        if want_stress and not atoms.pbc.all():
            raise PropertyNotImplementedError("stress needs a cell periodic in all three directions")
        validate_frame(Frame.from_atoms(atoms, source="atoms"), require_energy=False, require_forces=False)
        unknown = sorted(set(int(z) for z in atoms.numbers) - self.known_numbers)
        if unknown:
            raise UnknownElementError(
                f"atoms {np.flatnonzero(np.isin(atoms.numbers, unknown))[:10].tolist()} are {element_names(unknown)}, "
                f"which this model does not know (it knows {element_names(self.known_numbers)}); "
                "use a model trained on these elements"
            )
        edge_index, shifts = self._neighbors(atoms)
        n = len(atoms)
        tensor = lambda a, dtype=self.dtype: torch.as_tensor(a, dtype=dtype, device=self.device)
        data = {
            keys.POSITIONS: tensor(atoms.positions),
            keys.ATOMIC_NUMBERS: tensor(atoms.numbers, torch.long),
            keys.BATCH: torch.zeros(n, dtype=torch.long, device=self.device),
            keys.CELL: tensor(atoms.cell.array).reshape(1, 3, 3),
            keys.PBC: tensor(atoms.pbc, torch.bool).reshape(1, 3),
            keys.EDGE_INDEX: tensor(edge_index, torch.long),
            keys.CELL_SHIFTS: tensor(shifts),
        }
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

    def _neighbors(self, atoms) -> tuple[np.ndarray, np.ndarray]:
        positions = atoms.positions
        cell = atoms.cell.array
        cache = self._cache
        stale = (
            cache is None
            or len(positions) != len(cache["positions"])
            or not np.array_equal(atoms.numbers, cache["numbers"])
            or not np.array_equal(atoms.pbc, cache["pbc"])
            or not np.array_equal(cell, cache["cell"])
            or np.max(np.sum((positions - cache["positions"]) ** 2, axis=1), initial=0.0) > (0.5 * self.skin) ** 2
        )
        if stale:
            edge_index, shifts = neighbor_list(positions, cell, atoms.pbc, self.cutoff + self.skin)
            cache = self._cache = {
                "positions": positions.copy(), "numbers": atoms.numbers.copy(), "pbc": atoms.pbc.copy(),
                "cell": cell.copy(), "edge_index": edge_index, "offsets": shifts @ cell, "shifts": shifts,
            }
            self.neighbor_list_builds += 1
        edge_index = cache["edge_index"]
        vectors = positions[edge_index[1]] - positions[edge_index[0]] + cache["offsets"]
        distance_sq = np.einsum("ij,ij->i", vectors, vectors)
        inside = distance_sq < self.cutoff ** 2
        check_separation(distance_sq[inside], edge_index[:, inside], "atoms")
        return edge_index[:, inside], cache["shifts"][inside]

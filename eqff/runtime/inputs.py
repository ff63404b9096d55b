"""Input validation, units and periodic setup for one structure, shared by every deployed path.

The tensor functions are plain torch (TorchScript compiles them into exported files and into
the OpenMM module); ``check_elements`` is the Python-side check of elements a model knows.
Inside eqff everything is Å and eV; OpenMM speaks nm and kJ/mol (factors in ``eqff.units``).
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from eqff.data import keys
from eqff.errors import UnknownElementError, element_names


def checked_positions(positions: Tensor) -> Tensor:
    """``positions`` [N,3], or a ValueError naming the atoms that are not finite."""
    if not bool(torch.isfinite(positions).all()):
        bad: List[int] = torch.nonzero(~torch.isfinite(positions).all(dim=1)).flatten()[:10].tolist()
        raise ValueError("eqff: positions of atoms " + str(bad) + " are not finite (NaN or inf); "
                         "the structure or the simulation is broken")
    return positions


def checked_cell(cell: Tensor) -> Tensor:
    if not bool(torch.isfinite(cell).all()):
        raise ValueError("eqff: the cell is not finite (NaN or inf)")
    return cell


def from_openmm(positions_nm: Tensor, box_nm: Optional[Tensor], dtype: torch.dtype,
                nm_to_angstrom: float) -> Tuple[Tensor, Tensor, Tensor]:
    """(positions Å [N,3], cell Å [3,3], pbc [3]) from OpenMM's positions and box vectors (rows)
    in nm; ``box_nm`` None: not periodic (zero cell)."""
    x = checked_positions(positions_nm.to(dtype) * nm_to_angstrom)
    if box_nm is None:
        return x, torch.zeros((3, 3), dtype=dtype, device=x.device), torch.zeros(3, dtype=torch.bool, device=x.device)
    cell = checked_cell(box_nm.to(dtype).reshape(3, 3) * nm_to_angstrom)
    return x, cell, torch.ones(3, dtype=torch.bool, device=x.device)


def to_openmm(energy: Tensor, forces: Tensor, ev_to_kj_per_mol: float,
              ev_per_angstrom_to_kj_per_mol_nm: float) -> Tuple[Tensor, Tensor]:
    """Energy (eV, summed to a 0-d tensor) and forces (eV/Å) in kJ/mol and kJ/mol/nm, float64."""
    return (energy.sum().to(torch.float64) * ev_to_kj_per_mol,
            forces.to(torch.float64) * ev_per_angstrom_to_kj_per_mol_nm)


def single_structure(atomic_numbers: Tensor, positions: Tensor, cell: Tensor, pbc: Tensor, edge_index: Tensor,
                     shifts: Tensor) -> Dict[str, Tensor]:
    """The model's input dict for one structure (Å) with its neighbour list."""
    return {
        keys.POSITIONS: positions, keys.ATOMIC_NUMBERS: atomic_numbers, keys.BATCH: torch.zeros_like(atomic_numbers),
        keys.CELL: cell.to(positions.dtype).reshape(1, 3, 3), keys.PBC: pbc.to(torch.bool).reshape(1, 3),
        keys.EDGE_INDEX: edge_index, keys.CELL_SHIFTS: shifts,
    }


def check_elements(numbers: Sequence[int], known: Iterable[int], noun: str = "atoms",
                   index: Optional[Sequence[int]] = None) -> None:
    """``UnknownElementError`` naming the atoms (by ``index``, default their position in
    ``numbers``) whose elements the model does not know, in chemical symbols."""
    known = set(int(z) for z in known)
    numbers = np.asarray(numbers, dtype=np.int64)
    unknown = sorted(set(numbers.tolist()) - known)
    if unknown:
        where = np.asarray(index if index is not None else np.arange(len(numbers)))[np.isin(numbers, unknown)]
        raise UnknownElementError(f"{noun} {where[:10].tolist()} are {element_names(unknown)}, which this model does "
                                  f"not know (it knows {element_names(known)}); use a model trained on these elements")

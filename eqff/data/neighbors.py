"""Neighbour lists on the host, with vesin (O(N), exact for any periodic cell).

Returns receiver/sender indices and integer cell shifts such that
``r_ij = x_j - x_i + shift @ cell``; the model recomputes ``r_ij`` inside autograd.
Works for open, periodic, mixed-periodic and triclinic cells, cells smaller than twice
the cutoff (several images of one neighbour) and positions outside the cell.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import vesin

from eqff.errors import DataError, NeighborListError

#: Atoms closer than this (Å) are coincident: no model defines an energy there.
MIN_SEPARATION = 1e-3


def neighbor_list(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray]:
    """Full neighbour list within ``cutoff``: (edge_index [2,E] int64, shifts [E,3] int64)."""
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    pbc = np.asarray(pbc, dtype=bool).reshape(3)
    if len(positions) == 0:
        return np.zeros((2, 0), np.int64), np.zeros((0, 3), np.int64)
    if pbc.any():
        _check_periodic_cell(cell, pbc)
    else:
        cell = np.zeros((3, 3))
    nl = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, shifts = nl.compute(positions, cell, pbc.tolist(), quantities="ijS")
    return np.stack([i, j]).astype(np.int64), shifts.astype(np.int64)


def periodic_cell_problem(cell: np.ndarray, pbc: np.ndarray) -> Optional[str]:
    """What is wrong with ``cell`` as a cell periodic along ``pbc`` (zero or coplanar lattice
    vectors), or None: one check for the neighbour lists and for the data readers."""
    lengths = np.linalg.norm(cell, axis=1)
    zero = np.flatnonzero(pbc & (lengths < 1e-8)).tolist()
    if zero:
        return (f"the cell is periodic along {pbc.tolist()} but lattice vector(s) {zero} are zero; give the cell or "
                "set pbc=False along those directions")
    if pbc.all() and abs(np.linalg.det(cell)) < 1e-8:
        return "the periodic cell has zero volume (singular lattice vectors); check the lattice vectors"
    return None


def _check_periodic_cell(cell: np.ndarray, pbc: np.ndarray) -> None:
    problem = periodic_cell_problem(cell, pbc)
    if problem is not None:
        raise NeighborListError(problem)


def check_separation(distance_sq: np.ndarray, edge_index: np.ndarray, source: str = "structure") -> None:
    """``DataError`` naming the two atoms if any pair (squared distances ``distance_sq`` of the
    edges ``edge_index``) is closer than ``MIN_SEPARATION``."""
    if len(distance_sq) == 0:
        return
    closest = int(np.argmin(distance_sq))
    if distance_sq[closest] < MIN_SEPARATION ** 2:
        i, j = int(edge_index[0, closest]), int(edge_index[1, closest])
        raise DataError(f"{source}: atoms {i} and {j} are {np.sqrt(distance_sq[closest]):.2g} Å apart (coincident, "
                        "or an atom and its own periodic image); remove duplicated atoms or check the coordinates")

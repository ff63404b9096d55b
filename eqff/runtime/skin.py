"""The neighbour-list skin cache, shared by the ASE calculator and the OpenMM module.

A list built at ``cutoff + skin`` stays complete until an atom has moved more than ``skin / 2``
from where it was at the build (two atoms closing in by skin/2 each), or the cell or the number
of atoms changed. Every call keeps only the pairs inside the cutoff, so the model sees exactly
the pairs a fresh list finds (tests/test_speed_paths.py); only their order may differ.

Plain torch, so that TorchScript compiles it into the OpenMM module; the ASE calculator builds
its lists with vesin (faster in Python) and uses the same two functions.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor


def skin_is_stale(positions: Tensor, cell: Tensor, reference: Tensor, reference_cell: Tensor, skin: float) -> bool:
    """True when a list built at ``reference`` (positions) and ``reference_cell`` no longer
    holds every pair within the cutoff."""
    if reference.shape[0] != positions.shape[0] or reference.dtype != positions.dtype:
        return True
    if not bool(torch.equal(cell, reference_cell)):
        return True
    moved = positions - reference
    return bool(((moved * moved).sum(dim=1) > 0.25 * skin * skin).any())


def pairs_within(positions: Tensor, cell: Tensor, edge_index: Tensor, shifts: Tensor,
                 cutoff: float) -> Tuple[Tensor, Tensor, Tensor]:
    """The pairs of a (skin) list that are within ``cutoff`` now: (edge_index, shifts, squared distances)."""
    vectors = positions.index_select(0, edge_index[1]) - positions.index_select(0, edge_index[0]) + shifts @ cell
    distance_sq = (vectors * vectors).sum(dim=1)
    inside = torch.nonzero(distance_sq < cutoff * cutoff).flatten()
    return edge_index.index_select(1, inside), shifts.index_select(0, inside), distance_sq.index_select(0, inside)

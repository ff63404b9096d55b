"""Frames -> graphs (neighbour list computed once) -> batched tensor dicts."""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch

from eqff.data import keys
from eqff.data.frames import Frame
from eqff.data.neighbors import check_separation, neighbor_list


def frame_to_graph(frame: Frame, cutoff: float) -> Dict[str, np.ndarray]:
    """A frame with its neighbour list, as numpy arrays (labels included where present)."""
    edge_index, shifts = neighbor_list(frame.positions, frame.cell, frame.pbc, cutoff)
    vectors = frame.positions[edge_index[1]] - frame.positions[edge_index[0]] + shifts @ frame.cell
    check_separation(np.einsum("ij,ij->i", vectors, vectors), edge_index, frame.source or "structure")
    n = len(frame)
    graph = {
        keys.POSITIONS: frame.positions,
        keys.ATOMIC_NUMBERS: frame.numbers,
        keys.CELL: frame.cell,
        keys.PBC: frame.pbc,
        keys.EDGE_INDEX: edge_index,
        keys.CELL_SHIFTS: shifts,
        keys.ENERGY: np.asarray(0.0 if frame.energy is None else frame.energy),
        keys.FORCES: np.zeros((n, 3)) if frame.forces is None else frame.forces,
        keys.STRESS: np.zeros((3, 3)) if frame.stress is None else frame.stress,
        keys.HAS_ENERGY: np.asarray(frame.energy is not None),
        keys.HAS_FORCES: np.asarray(frame.forces is not None),
        keys.HAS_STRESS: np.asarray(frame.stress is not None),
    }
    return graph


def collate(graphs: Sequence[Dict[str, np.ndarray]], dtype: torch.dtype = torch.float64,
            device: torch.device | str = "cpu") -> Dict[str, torch.Tensor]:
    """Concatenate graphs into one batch; edge indices are offset to global atom numbers."""
    counts = [len(g[keys.ATOMIC_NUMBERS]) for g in graphs]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    batch: Dict[str, np.ndarray] = {
        keys.POSITIONS: np.concatenate([g[keys.POSITIONS] for g in graphs]),
        keys.ATOMIC_NUMBERS: np.concatenate([g[keys.ATOMIC_NUMBERS] for g in graphs]),
        keys.BATCH: np.repeat(np.arange(len(graphs)), counts),
        keys.CELL: np.stack([g[keys.CELL] for g in graphs]),
        keys.PBC: np.stack([g[keys.PBC] for g in graphs]),
        keys.EDGE_INDEX: np.concatenate([g[keys.EDGE_INDEX] + o for g, o in zip(graphs, offsets)], axis=1),
        keys.CELL_SHIFTS: np.concatenate([g[keys.CELL_SHIFTS] for g in graphs]),
    }
    for key in (keys.ENERGY, keys.STRESS, keys.HAS_ENERGY, keys.HAS_FORCES, keys.HAS_STRESS, keys.WEIGHT):
        if key in graphs[0]:
            batch[key] = np.stack([g[key] for g in graphs])
    if keys.FORCES in graphs[0]:
        batch[keys.FORCES] = np.concatenate([g[keys.FORCES] for g in graphs])
    return {key: _tensor(key, value, dtype, device) for key, value in batch.items()}


_INTEGER_KEYS = {keys.ATOMIC_NUMBERS, keys.BATCH, keys.EDGE_INDEX}
_BOOL_KEYS = {keys.PBC, keys.HAS_ENERGY, keys.HAS_FORCES, keys.HAS_STRESS}


def _tensor(key: str, value: np.ndarray, dtype: torch.dtype, device) -> torch.Tensor:
    if key in _INTEGER_KEYS:
        return torch.as_tensor(value, dtype=torch.long, device=device)
    if key in _BOOL_KEYS:
        return torch.as_tensor(value, dtype=torch.bool, device=device)
    return torch.as_tensor(value, dtype=dtype, device=device)


def frames_to_batch(frames: List[Frame], cutoff: float, dtype: torch.dtype = torch.float64,
                    device: torch.device | str = "cpu") -> Dict[str, torch.Tensor]:
    return collate([frame_to_graph(f, cutoff) for f in frames], dtype=dtype, device=device)

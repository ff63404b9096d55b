"""Close contacts: how near two atoms may come in exploration before the MD is called lost.

A model's σ is learnt from its training data, and where no training frame ever put two atoms
(two hydrogens 0.29 Å apart) it can be small while the forces are wrong by 200 eV/Å (measured
on aspirin at 600 K: LLPR σ 0.48 eV/Å). So the explorer also stops a trajectory when a pair
comes closer than ``factor`` times the shortest distance of that element pair in the user's
training frames; pairs those frames never bring within ``SEEN_WITHIN`` Å get ``factor`` times
the sum of their covalent radii. Such frames are not labelled: a collapsed molecule is not
where the user will simulate, and its huge forces swamp the next round's loss.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from ase import Atoms
from ase.data import covalent_radii

from eqff.data.neighbors import neighbor_list

SEEN_WITHIN = 4.0  # Å: the training frames' pairs looked at
Pair = Tuple[int, int]


def _pair_distances(atoms: Atoms, cutoff: float):
    """(i, j, distance) of every pair within ``cutoff``, each pair once, periodic images included."""
    edges, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
    i, j = edges
    vectors = atoms.positions[j] - atoms.positions[i] + shifts @ atoms.cell.array
    keep = i < j
    return i[keep], j[keep], np.linalg.norm(vectors[keep], axis=1)


class ContactFloor:
    """The closest approach allowed for each element pair (Å)."""

    def __init__(self, factor: float, shortest_seen: Dict[Pair, float]):
        self.factor = float(factor)
        self.shortest_seen = dict(shortest_seen)
        self._tables: Dict[Tuple[int, ...], np.ndarray] = {}  # floor[Z_i, Z_j] per element set: MD keeps its set

    def _table(self, elements: Tuple[int, ...]) -> np.ndarray:
        if elements not in self._tables:
            table = np.zeros((max(elements) + 1, max(elements) + 1))
            for a in elements:
                for b in elements:
                    table[a, b] = self.floor(a, b)
            self._tables[elements] = table
        return self._tables[elements]

    @classmethod
    def from_frames(cls, frames: Sequence[Atoms], factor: float) -> "ContactFloor":
        shortest = np.full((len(covalent_radii), len(covalent_radii)), np.inf)
        for atoms in frames:
            if len(atoms) < 2:
                continue
            i, j, distance = _pair_distances(atoms, SEEN_WITHIN)
            a, b = np.minimum(atoms.numbers[i], atoms.numbers[j]), np.maximum(atoms.numbers[i], atoms.numbers[j])
            np.minimum.at(shortest, (a, b), distance)
        seen = np.argwhere(np.isfinite(shortest))
        return cls(factor, {(int(a), int(b)): float(shortest[a, b]) for a, b in seen})

    def floor(self, a: int, b: int) -> float:
        key = (min(a, b), max(a, b))
        reference = self.shortest_seen.get(key, covalent_radii[a] + covalent_radii[b])
        return self.factor * reference

    def violation(self, atoms: Atoms) -> Optional[str]:
        """None, or which pair is too close, how close, and against what."""
        if self.factor <= 0 or len(atoms) < 2:
            return None
        table = self._table(tuple(sorted(set(atoms.numbers.tolist()))))
        i, j, distance = _pair_distances(atoms, float(table.max()))
        if len(distance) == 0:
            return None
        floors = table[atoms.numbers[i], atoms.numbers[j]]
        ratio = distance / floors
        k = int(np.argmin(ratio))
        if ratio[k] >= 1.0:
            return None
        symbols = atoms.get_chemical_symbols()
        return (f"atoms {i[k]} ({symbols[i[k]]}) and {j[k]} ({symbols[j[k]]}) {distance[k]:.3f} Å apart, below "
                f"{floors[k]:.3f} Å ({self.factor:g} x the closest {symbols[i[k]]}-{symbols[j[k]]} pair of the "
                "training frames)")

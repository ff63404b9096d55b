"""Names of the tensors in a batch: a plain ``Dict[str, Tensor]`` that TorchScript understands.

Per atom (N rows): POSITIONS [N,3], ATOMIC_NUMBERS [N], BATCH [N] (structure index).
Per edge (E rows): EDGE_INDEX [2,E] (receiver i, sender j), CELL_SHIFTS [E,3] with
``r_ij = x_j - x_i + CELL_SHIFTS @ cell``.
Per structure (B rows): CELL [B,3,3], PBC [B,3].
Labels: ENERGY [B], FORCES [N,3], STRESS [B,3,3] (ASE sign: (1/V) dE/dstrain).
"""
from typing import Final

POSITIONS: Final[str] = "positions"
ATOMIC_NUMBERS: Final[str] = "atomic_numbers"
BATCH: Final[str] = "batch"
CELL: Final[str] = "cell"
PBC: Final[str] = "pbc"
EDGE_INDEX: Final[str] = "edge_index"
CELL_SHIFTS: Final[str] = "cell_shifts"

ENERGY: Final[str] = "energy"
FORCES: Final[str] = "forces"
STRESS: Final[str] = "stress"
VIRIAL: Final[str] = "virial"
ATOMIC_ENERGIES: Final[str] = "atomic_energies"

# Per-structure masks in a training batch: which labels this structure has.
HAS_ENERGY: Final[str] = "has_energy"
HAS_FORCES: Final[str] = "has_forces"
HAS_STRESS: Final[str] = "has_stress"

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
# Uncertainty of a committee (eqff.runtime.committee): spread of its members, calibrated.
ENERGY_STD: Final[str] = "energy_std"  # [B] eV
FORCES_STD: Final[str] = "forces_std"  # [N] eV/Å, per atom: RMS over members of |F_m - mean F|

# Per-structure masks in a training batch: which labels this structure has.
HAS_ENERGY: Final[str] = "has_energy"
HAS_FORCES: Final[str] = "has_forces"
HAS_STRESS: Final[str] = "has_stress"
# [B] weight of each structure's loss terms (TrainConfig.config_type_weights); 1 when absent.
WEIGHT: Final[str] = "weight"

# Inside a model: the ``graph`` dict that EdgeGeometry fills and every layer reads (and a few
# layers update). Per edge (E rows) and per atom (N rows); model-specific ones name their model.
RECEIVERS: Final[str] = "receivers"  # [E] atom i of edge j -> i
SENDERS: Final[str] = "senders"  # [E] atom j
EDGE_VECTOR: Final[str] = "edge_vector"  # [E,3] r_ij (Å), with periodic shifts
EDGE_LENGTH: Final[str] = "edge_length"  # [E]
EDGE_BASIS: Final[str] = "edge_basis"  # [E,B] radial (Bessel) basis
EDGE_ENVELOPE: Final[str] = "edge_envelope"  # [E] smooth cutoff envelope u(r)
EDGE_HARMONICS: Final[str] = "edge_harmonics"  # [E,(l+1)^2] spherical harmonics Y(r_ij) (ace, segnn)
SPECIES: Final[str] = "species"  # [N] the model's element index of each atom
NODE_FEATURES: Final[str] = "node_features"  # [N,d] inputs of the readouts' last linear maps (llpr)
NODE_ENERGY: Final[str] = "node_energy"  # [N] per-atom energy summed over layers' readouts (ace)
NODE_ATTRIBUTES: Final[str] = "node_attributes"  # [N,1+(l+1)^2] steerable neighbourhood (segnn)
NEIGHBOUR_TABLE: Final[str] = "neighbour_table"  # [N,W] each atom's incoming edges, padded (ace)
NEIGHBOUR_FILLED: Final[str] = "neighbour_filled"  # [N,W] which slots hold an edge (ace)
NEIGHBOUR_WIDTH: Final[str] = "neighbour_width"  # [] W, the most neighbours of any atom (ace)
CURRENT_VECTOR: Final[str] = "current_vector"  # [E,3] r_ij after coordinate updates (egnn)
DISPLACEMENT: Final[str] = "displacement"  # [N,3] accumulated coordinate update (egnn)
ORIENTATION_LEGENDRE: Final[str] = "orientation_legendre"  # [E,K,l+1] P_n(o_k . r_ij/|r_ij|) (lifted)
FIBER_LEGENDRE: Final[str] = "fiber_legendre"  # [K,K,l+1] P_n(o_k . o_l) w_l (lifted)

# The per-edge fields of ``graph`` (E rows): what chunked evaluation (eqff/models/chunking.py)
# splits by edges. A model that adds a per-edge field must list it here (chunked evaluation of
# it fails with a shape mismatch otherwise; tests/test_chunked.py runs every model).
EDGE_FIELDS = (RECEIVERS, SENDERS, EDGE_VECTOR, EDGE_LENGTH, EDGE_BASIS, EDGE_ENVELOPE, EDGE_HARMONICS,
               CURRENT_VECTOR, ORIENTATION_LEGENDRE)

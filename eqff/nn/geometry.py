"""Edge vectors computed inside autograd, so forces and stress reach positions and cell."""
import torch
from torch import Tensor


def edge_vectors(positions: Tensor, cell: Tensor, batch: Tensor, edge_index: Tensor, cell_shifts: Tensor) -> Tensor:
    """r_ij = x_j - x_i + shift_ij @ cell_b  for every edge (i receives from j)."""
    receivers = edge_index[0]
    senders = edge_index[1]
    edge_cell = cell[batch[receivers]]  # [E, 3, 3]
    offsets = torch.bmm(cell_shifts.unsqueeze(1), edge_cell).squeeze(1)
    return positions[senders] - positions[receivers] + offsets

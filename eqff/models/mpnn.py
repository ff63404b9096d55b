"""The generic message-passing frame (Gilmer et al.), which every eqff model instantiates.

    m_ij = phi_m(h_i, h_j, a_ij)                     message along edge j -> i
    M_i  = (1 / avg_num_neighbors) * sum_j m_ij      sum aggregation (normalised, see below)
    h_i' = phi_f(h_i, M_i)                           update

A layer subclasses ``MessagePassing`` and defines ``message`` and ``update``. The edge
geometry a_ij (vectors, lengths, radial basis, cutoff envelope) is computed once per
structure by ``EdgeGeometry`` and passed to every layer in a ``graph`` dict.

The sum is divided by a constant (the typical neighbour count of the training data) so that
features keep their scale between a 9-atom molecule and a dense liquid. Dividing by a constant,
not by each atom's own count, keeps the energy smooth as atoms enter and leave the cutoff.
"""
from typing import Dict

import torch
from torch import Tensor, nn

from eqff.nn.radial import BesselBasis, PolynomialEnvelope
from eqff.nn.scatter import scatter_sum


class EdgeGeometry(nn.Module):
    """a_ij for every edge: vector, length, radial basis and the smooth cutoff envelope."""

    def __init__(self, cutoff: float, num_basis: int, envelope_p: int):
        super().__init__()
        self.basis = BesselBasis(cutoff, num_basis)
        self.envelope = PolynomialEnvelope(cutoff, envelope_p)

    def forward(self, edge_index: Tensor, edge_vector: Tensor) -> Dict[str, Tensor]:
        length = torch.linalg.norm(edge_vector, dim=-1)
        return {
            "receivers": edge_index[0],
            "senders": edge_index[1],
            "edge_vector": edge_vector,
            "edge_length": length,
            "edge_basis": self.basis(length),
            "edge_envelope": self.envelope(length),
        }


class MessagePassing(nn.Module):
    """One layer of the frame: ``update(h, sum_j message(h, graph) / avg_num_neighbors, graph)``."""

    def __init__(self, avg_num_neighbors: float):
        super().__init__()
        self.inv_avg_num_neighbors = 1.0 / float(avg_num_neighbors)

    def aggregate(self, messages: Tensor, graph: Dict[str, Tensor], num_nodes: int) -> Tensor:
        return scatter_sum(messages, graph["receivers"], num_nodes) * self.inv_avg_num_neighbors

    def forward(self, h: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        messages = self.message(h, graph)
        return self.update(h, self.aggregate(messages, graph, h.shape[0]), graph)

    def message(self, h: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def update(self, h: Tensor, aggregated: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

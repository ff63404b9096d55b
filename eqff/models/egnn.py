"""EGNN (Satorras et al. 2021) as an energy model on the cutoff graph.

    m_ij = phi_e(h_i, h_j, |r_ij|^2, rbf(|r_ij^0|)) * u(|r_ij^0|)
    x_i <- x_i + C sum_j (x_i - x_j) phi_x(m_ij)          (coordinate update)
    h_i <- h_i + phi_h(h_i, C sum_j m_ij)

Differences from the reference code, each needed for a potential: the graph is the cutoff
graph, not fully connected; every edge term carries the smooth envelope u of the *input*
distance, so the energy is smooth at the cutoff; nothing is detached, so forces are the exact
gradient; and coordinates are updated through per-atom displacements applied to edge vectors
(which include the periodic cell shifts), never to wrapped positions, so it is periodic-safe.
"""
from typing import Dict, List

import torch
from torch import Tensor, nn

from eqff.data import keys
from eqff.models.mpnn import MessagePassing, MessagePassingModel
from eqff.nn.mlp import mlp
from eqff.nn.scatter import scatter_sum


class EGNNLayer(MessagePassing):
    def __init__(self, features: int, num_basis: int, cutoff: float, avg_num_neighbors: float,
                 update_coordinates: bool = True):
        super().__init__(avg_num_neighbors)
        self.inv_cutoff_sq = 1.0 / (cutoff * cutoff)
        self.edge_mlp = mlp([2 * features + num_basis + 1, features, features])
        # the last layer's coordinate update would feed nothing (and DDP refuses unused weights)
        self.update_coordinates = update_coordinates
        self.coordinate_mlp = mlp([features, features, 1]) if update_coordinates else nn.Identity()
        self.node_mlp = mlp([2 * features, features, features])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if not self.update_coordinates:  # checkpoints before 2026-11-30 carry the unused weights
            for key in [k for k in state_dict if k.startswith(prefix + "coordinate_mlp.")]:
                del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def message(self, h: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        vector = graph[keys.CURRENT_VECTOR]
        distance_sq = (vector * vector).sum(dim=-1, keepdim=True) * self.inv_cutoff_sq
        inputs = torch.cat([h[graph[keys.RECEIVERS]], h[graph[keys.SENDERS]], graph[keys.EDGE_BASIS], distance_sq], dim=-1)
        return nn.functional.silu(self.edge_mlp(inputs)) * graph[keys.EDGE_ENVELOPE].unsqueeze(-1)

    def edge_sums(self, h: Tensor, graph: Dict[str, Tensor]) -> List[Tensor]:
        """The aggregated messages and, when this layer moves coordinates, the summed shifts."""
        messages = self.message(h, graph)
        aggregated = self.aggregate(messages, graph, h.shape[0])
        if not self.update_coordinates:
            return [aggregated]
        # x_i - x_j = -r_ij; the envelope makes edges at the cutoff move nothing.
        weights = torch.tanh(self.coordinate_mlp(messages)) * graph[keys.EDGE_ENVELOPE].unsqueeze(-1)
        return [aggregated, self.aggregate(-graph[keys.CURRENT_VECTOR] * weights, graph, h.shape[0])]

    def forward(self, h: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        sums = self.sums_over_edges(h, graph)
        if self.update_coordinates:
            displacement = graph[keys.DISPLACEMENT] + sums[1]
            graph[keys.DISPLACEMENT] = displacement
            graph[keys.CURRENT_VECTOR] = (
                graph[keys.EDGE_VECTOR] + displacement[graph[keys.SENDERS]] - displacement[graph[keys.RECEIVERS]]
            )
        return self.update(h, sums[0], graph)

    def update(self, h: Tensor, aggregated: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        return h + self.node_mlp(torch.cat([h, aggregated], dim=-1))


class EGNN(MessagePassingModel):
    def __init__(self, num_elements: int, cutoff: float, features: int = 64, num_layers: int = 3,
                 num_basis: int = 8, envelope_p: int = 6, avg_num_neighbors: float = 10.0):
        super().__init__(num_elements, features, cutoff, num_basis, envelope_p)
        self.layers = nn.ModuleList(
            [EGNNLayer(features, num_basis, cutoff, avg_num_neighbors, update_coordinates=t < num_layers - 1)
             for t in range(num_layers)]
        )
        self.readout = mlp([features, features // 2, 1])

    def attributes(self, graph: Dict[str, Tensor]) -> Dict[str, Tensor]:
        vectors = graph[keys.EDGE_VECTOR]
        graph[keys.CURRENT_VECTOR] = vectors
        graph[keys.DISPLACEMENT] = torch.zeros((graph[keys.SPECIES].shape[0], 3), dtype=vectors.dtype,
                                               device=vectors.device)
        return graph

"""SchNet (Schütt et al. 2017): continuous-filter convolution h_i += sum_j W(|r_ij|) * h_j."""
from typing import Dict

from torch import Tensor, nn

from eqff.data import keys
from eqff.models.mpnn import MessagePassing, MessagePassingModel
from eqff.nn.mlp import mlp


class SchNetInteraction(MessagePassing):
    """m_ij = W(|r_ij|) * (A h_j), the filter W an MLP of the radial basis times the envelope."""

    def __init__(self, features: int, num_basis: int, avg_num_neighbors: float):
        super().__init__(avg_num_neighbors)
        self.filter_network = mlp([num_basis, features, features], act="ssp")
        self.to_filter_space = nn.Linear(features, features, bias=False)
        self.output = mlp([features, features, features], act="ssp")

    def message(self, h: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        filters = self.filter_network(graph[keys.EDGE_BASIS]) * graph[keys.EDGE_ENVELOPE].unsqueeze(-1)
        return self.to_filter_space(h)[graph[keys.SENDERS]] * filters

    def update(self, h: Tensor, aggregated: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        return h + self.output(aggregated)


class SchNet(MessagePassingModel):
    def __init__(self, num_elements: int, cutoff: float, features: int = 64, num_layers: int = 3,
                 num_basis: int = 16, envelope_p: int = 6, avg_num_neighbors: float = 10.0):
        super().__init__(num_elements, features, cutoff, num_basis, envelope_p)
        self.layers = nn.ModuleList(
            [SchNetInteraction(features, num_basis, avg_num_neighbors) for _ in range(num_layers)]
        )
        self.readout = mlp([features, features // 2, 1], act="ssp")

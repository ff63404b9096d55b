"""PointConv (Wu et al. 2019) as an energy model: a baseline that is NOT rotation invariant.

    m_ij  = u(|r_ij|) k(r_ij / r_c) * (W h_j)         k an MLP of the raw relative vector
    h_i' = h_i + MLP((1/avg) sum_j m_ij)
    e_i  = MLP_out(h_i)

The continuous kernel k sees the vector r_ij = x_j - x_i itself, not its length, so the model
is translation invariant (and permutation invariant, periodic-safe, smooth at the cutoff,
with exact forces) but neither rotation nor reflection invariant: a rotated molecule gets
another energy, and forces are not equivariant. It is the lecture's "point convolution"
baseline for the equivariance ablation (benchmarks/ablation.py), trained with random-rotation
augmentation (``augment_rotations: true``) so it can learn an approximately invariant
function from data. Do not use it for production simulations.
"""
from typing import Dict

from torch import Tensor, nn

from eqff.data import keys
from eqff.models.mpnn import MessagePassing, MessagePassingModel
from eqff.nn.mlp import mlp


class PointConvInteraction(MessagePassing):
    def __init__(self, features: int, kernel_features: int, cutoff: float, avg_num_neighbors: float):
        super().__init__(avg_num_neighbors)
        self.inv_cutoff = 1.0 / cutoff
        self.kernel = mlp([3, kernel_features, kernel_features, features])
        self.to_sender = nn.Linear(features, features, bias=False)
        self.output = mlp([features, features, features])

    def message(self, h: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        kernel = self.kernel(graph[keys.EDGE_VECTOR] * self.inv_cutoff) * graph[keys.EDGE_ENVELOPE].unsqueeze(-1)
        return kernel * self.to_sender(h)[graph[keys.SENDERS]]

    def update(self, h: Tensor, aggregated: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        return h + self.output(aggregated)


class PointConv(MessagePassingModel):
    def __init__(self, num_elements: int, cutoff: float, features: int = 64, kernel_features: int = 64,
                 num_layers: int = 3, envelope_p: int = 6, avg_num_neighbors: float = 10.0):
        # only the envelope is used; the kernel sees the raw vector, not a radial basis
        super().__init__(num_elements, features, cutoff, 1, envelope_p)
        self.layers = nn.ModuleList(
            [PointConvInteraction(features, kernel_features, cutoff, avg_num_neighbors) for _ in range(num_layers)]
        )
        self.readout = mlp([features, features // 2, 1])

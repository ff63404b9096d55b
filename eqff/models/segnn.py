"""SEGNN (Brandstetter et al. 2022): steerable E(3)-equivariant message passing, as an energy model.

Node features are e3nn irreps (scalars, vectors, rank-2 tensors...). Edges carry spherical
harmonics Y(r_ij); nodes carry steerable attributes a_i = [1, (1/avg) sum_j u(r_ij) Y(r_ij)].

    message  m_ij = TP_uvu(A h_j, Y(r_ij); w = u(r_ij) R(|r_ij|, c_i, c_j)),   c = C (scalars of h)
    update   h_i' = S h_i + W_2 Gate(TP_fc(W_1 M_i, a_i))

TP_uvu is a Clebsch-Gordan tensor product whose per-edge path weights come from a radial MLP R
of the distance and of invariants of both end features (so the message depends non-linearly
on f_i, f_j and |r_ij|, as SEGNN's message MLP does). "uvu" (depthwise) keeps each channel
separate, which costs 10-30x less than a fully connected product with per-edge weights
(measured with e3nn 0.6.0 on this project's CPU; benchmarks/PROFILE.md, SEGNN); channels are mixed by the equivariant linear layers A, W around it. The
gated non-linearity and the tensor product with the node attributes (the steerable MLP of the
update) act on nodes, after aggregation: on edges they cost ~45x more (a water molecule has ~45
neighbours in 5 Å) for the same expressive power. The node attribute sum is weighted by the envelope u and divided by a constant
(not by each atom's count), so it stays smooth at the cutoff. No batch normalisation: one
structure's energy never depends on the others in the batch. The energy is read out from the
0e scalars, so it is invariant under rotations and reflections.
"""
from typing import Dict, List, Tuple

import torch
from e3nn import o3
from e3nn.nn import Gate
from torch import Tensor, nn

from eqff.data import keys
from eqff.models.mpnn import MessagePassing, MessagePassingModel
from eqff.nn.mlp import mlp
from eqff.nn.scatter import scatter_sum


def hidden_irreps(features: int, lmax: int) -> o3.Irreps:
    """features x 0e + features/2 x 1o + features/4 x 2e + ... (one parity per l, as in physics)."""
    return o3.Irreps([(max(features >> l, 1), (l, (-1) ** l)) for l in range(lmax + 1)])


def gate_for(irreps_out: o3.Irreps) -> Gate:
    """Gated non-linearity: SiLU on scalars, sigmoid gates (extra scalars) on l > 0 irreps."""
    scalars = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l == 0])
    gated = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l > 0])
    gates = o3.Irreps(f"{gated.num_irreps}x0e") if gated.num_irreps > 0 else o3.Irreps("")
    return Gate(
        scalars, [nn.functional.silu] * len(scalars),
        gates, [torch.sigmoid] * len(gates),
        gated,
    )


def depthwise_tensor_product(irreps_in: o3.Irreps, irreps_sh: o3.Irreps, allowed: o3.Irreps) -> Tuple[o3.TensorProduct, o3.Irreps]:
    """'uvu' product of node features with edge harmonics, keeping outputs whose irrep is in ``allowed``."""
    allowed_irreps = {ir for _, ir in allowed}
    outputs: List[Tuple[int, o3.Irrep]] = []
    instructions = []
    for i, (mul, ir_in) in enumerate(irreps_in):
        for j, (_, ir_sh) in enumerate(irreps_sh):
            for ir_out in ir_in * ir_sh:
                if ir_out in allowed_irreps:
                    instructions.append((i, j, len(outputs), "uvu", True))
                    outputs.append((mul, ir_out))
    irreps_mid, permutation, _ = o3.Irreps(outputs).sort()
    instructions = [(i, j, permutation[k], mode, train) for i, j, k, mode, train in instructions]
    product = o3.TensorProduct(
        irreps_in, irreps_sh, irreps_mid, instructions, shared_weights=False, internal_weights=False
    )
    return product, irreps_mid


class _InputBlock(nn.Module):
    """The paths of a fused depthwise product that read one irrep block of the node features."""

    def __init__(self, start: int, mul: int, dim: int, coupling: Tensor, out_dims: List[int]):
        super().__init__()
        self.start = start
        self.stop = start + mul * dim
        self.mul = mul
        self.dim = dim
        self.columns = coupling.shape[-1]
        self.out_dims = out_dims
        self.num_paths = len(out_dims)
        # [harmonics dim, dim * columns]: Clebsch-Gordan coefficients times path weights, all paths
        self.register_buffer("coupling", coupling.reshape(coupling.shape[0], -1), persistent=False)

    def forward(self, x1: Tensor, x2: Tensor, weight: Tensor) -> List[Tensor]:
        """One [E, mul * (2 l_out + 1)] block per path: w_eu sum_ij C_ijk x_eui Y_ej."""
        edges = x1.shape[0]  # explicit sizes: reshape(-1, ...) is ambiguous without edges
        x = x1[:, self.start:self.stop].reshape(edges, self.mul, self.dim)
        y = (x2 @ self.coupling).reshape(edges, self.dim, self.columns)  # sum_j C_ijk Y_j, all paths
        products = torch.bmm(x, y).split(self.out_dims, dim=2)  # [E, mul, 2 l_out + 1] per path
        weights = weight.reshape(edges, self.num_paths, self.mul).unbind(1)
        out: List[Tensor] = []
        for p, product in enumerate(products):
            out.append((product * weights[p].unsqueeze(-1)).reshape(edges, self.mul * self.out_dims[p]))
        return out


class FusedDepthwiseProduct(nn.Module):
    """The numbers of an e3nn ``uvu`` TensorProduct with per-edge weights (equal up to float
    round-off), in fewer passes over the [E, irreps_out] edge tensors: per input irrep block,
    one matrix product of the harmonics with the Clebsch-Gordan coefficients of all its paths,
    one batched product with the features, one weight multiplication per path, and one
    concatenation in e3nn's output order. The weights are split (one concatenation in the
    backward pass) instead of sliced per path (e3nn: a zero-filled [E, weight_numel] tensor
    per path in the backward pass, 13-17 % of a dense SEGNN step; benchmarks/PROFILE.md).
    It has no parameters or saved buffers: the e3nn module keeps the state (checkpoints
    unchanged)."""

    def __init__(self, product: o3.TensorProduct):
        super().__init__()
        irreps_in1, irreps_in2, irreps_out = product.irreps_in1, product.irreps_in2, product.irreps_out
        instructions = product.instructions
        order = [ins.i_in1 for ins in instructions]
        if (any(ins.connection_mode != "uvu" or not ins.has_weight for ins in instructions)
                or sorted(ins.i_out for ins in instructions) != list(range(len(irreps_out)))
                or order != sorted(order) or product.shared_weights):
            raise ValueError("FusedDepthwiseProduct needs 'uvu' paths with per-edge weights, grouped by input "
                             "block, one per output block")
        in2_slices = irreps_in2.slices()
        blocks = []
        weight_sizes: List[int] = []
        path_output: List[int] = []  # the output block of each path, in path order
        for i1, ((mul, ir1), slice1) in enumerate(zip(irreps_in1, irreps_in1.slices())):
            paths = [ins for ins in instructions if ins.i_in1 == i1]
            if not paths:
                continue
            out_dims = [irreps_out[ins.i_out].ir.dim for ins in paths]
            coupling = torch.zeros(irreps_in2.dim, ir1.dim, sum(out_dims), dtype=torch.float64)
            column = 0
            for ins in paths:
                ir2, ir3 = irreps_in2[ins.i_in2].ir, irreps_out[ins.i_out].ir
                w3j = o3.wigner_3j(ir1.l, ir2.l, ir3.l, dtype=torch.float64)  # [i, j, k]
                rows = in2_slices[ins.i_in2]
                coupling[rows.start:rows.stop, :, column:column + ir3.dim] = ins.path_weight * w3j.permute(1, 0, 2)
                column += ir3.dim
                path_output.append(ins.i_out)
            blocks.append(_InputBlock(slice1.start, mul, ir1.dim, coupling.to(torch.get_default_dtype()), out_dims))
            weight_sizes.append(mul * len(paths))
        self.blocks = nn.ModuleList(blocks)
        self.weight_sizes = weight_sizes
        # e3nn's output order: output block k comes from path path_of_output[k]
        self.path_of_output: List[int] = [path_output.index(k) for k in range(len(irreps_out))]

    def forward(self, x1: Tensor, x2: Tensor, weight: Tensor) -> Tensor:
        weights = weight.split(self.weight_sizes, dim=1)
        paths: List[Tensor] = []
        for b, block in enumerate(self.blocks):
            paths += block(x1, x2, weights[b])
        return torch.cat([paths[p] for p in self.path_of_output], dim=1)


class SEGNNLayer(MessagePassing):
    def __init__(self, irreps_in: o3.Irreps, irreps_hidden: o3.Irreps, irreps_sh: o3.Irreps,
                 irreps_attr: o3.Irreps, num_basis: int, radial_features: int, context_features: int,
                 avg_num_neighbors: float):
        super().__init__(avg_num_neighbors)
        num_scalars = irreps_in.count("0e")
        self.num_scalars = num_scalars
        self.linear_sender = o3.Linear(irreps_in, irreps_in)
        # invariants of f_i and f_j that condition the message weights
        self.context = nn.Linear(num_scalars, context_features)
        self.tensor_product, irreps_mid = depthwise_tensor_product(irreps_in, irreps_sh, irreps_hidden)
        # the same product in fewer operations; False runs e3nn's (tests/test_speed_paths.py compares)
        self.fused_product = FusedDepthwiseProduct(self.tensor_product)
        self.use_fused_product: bool = True
        self.radial = mlp([num_basis + 2 * context_features, radial_features, radial_features,
                           self.tensor_product.weight_numel])
        self.update_gate = gate_for(irreps_hidden)
        self.update_linear_in = o3.Linear(irreps_mid, irreps_hidden)
        self.update_product = o3.FullyConnectedTensorProduct(irreps_hidden, irreps_attr, self.update_gate.irreps_in)
        self.update_linear_out = o3.Linear(irreps_hidden, irreps_hidden)
        self.self_connection = o3.Linear(irreps_in, irreps_hidden)

    def message(self, h: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        senders = graph[keys.SENDERS]
        receivers = graph[keys.RECEIVERS]
        context = self.context(h[:, : self.num_scalars])
        radial_inputs = torch.cat([graph[keys.EDGE_BASIS], context[receivers], context[senders]], dim=-1)
        weights = self.radial(radial_inputs) * graph[keys.EDGE_ENVELOPE].unsqueeze(-1)
        if self.use_fused_product:
            return self.fused_product(self.linear_sender(h)[senders], graph[keys.EDGE_HARMONICS], weights)
        return self.tensor_product(self.linear_sender(h)[senders], graph[keys.EDGE_HARMONICS], weights)

    def update(self, h: Tensor, aggregated: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        x = self.update_linear_in(aggregated)
        x = self.update_gate(self.update_product(x, graph[keys.NODE_ATTRIBUTES]))
        return self.self_connection(h) + self.update_linear_out(x)


class SEGNN(MessagePassingModel):
    def __init__(self, num_elements: int, cutoff: float, features: int = 64, lmax: int = 2,
                 sh_lmax: int = 2, num_layers: int = 3, num_basis: int = 8, radial_features: int = 64,
                 context_features: int = 16, envelope_p: int = 6, avg_num_neighbors: float = 10.0):
        super().__init__(num_elements, features, cutoff, num_basis, envelope_p)
        self.num_scalars = features
        self.inv_avg_num_neighbors = 1.0 / float(avg_num_neighbors)
        irreps_hidden = hidden_irreps(features, lmax)
        irreps_sh = o3.Irreps.spherical_harmonics(sh_lmax)
        irreps_attr = o3.Irreps("1x0e") + irreps_sh
        self.harmonics = o3.SphericalHarmonics(irreps_sh, normalize=True, normalization="component")
        layers = []
        irreps_in = o3.Irreps(f"{features}x0e")
        for _ in range(num_layers):
            layers.append(SEGNNLayer(irreps_in, irreps_hidden, irreps_sh, irreps_attr, num_basis,
                                     radial_features, context_features, avg_num_neighbors))
            irreps_in = irreps_hidden
        self.layers = nn.ModuleList(layers)
        self.readout = mlp([features, features // 2, 1])

    def attributes(self, graph: Dict[str, Tensor]) -> Dict[str, Tensor]:
        harmonics = self.harmonics(graph[keys.EDGE_VECTOR])
        graph[keys.EDGE_HARMONICS] = harmonics
        num_nodes = graph[keys.SPECIES].shape[0]
        neighbourhood = scatter_sum(harmonics * graph[keys.EDGE_ENVELOPE].unsqueeze(-1), graph[keys.RECEIVERS], num_nodes)
        graph[keys.NODE_ATTRIBUTES] = torch.cat(
            [torch.ones_like(neighbourhood[:, :1]), neighbourhood * self.inv_avg_num_neighbors], dim=-1
        )
        return graph

    def readout_energies(self, h: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        return self.read_out(h[:, : self.num_scalars], graph)

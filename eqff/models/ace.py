"""Message-passing atomic cluster expansion (the MACE construction, Batatia et al. 2022): steerable
two-body messages, many-body node features by Clebsch-Gordan products. eqff's default model.

For atom i with neighbours j (r_ij = x_j - x_i + shifts), in layer t:

    A_i,p   = (1/avg) sum_j R_t,p(|r_ij|) u(|r_ij|) (Y(r_ij) (x) W h_j)_p     two-body, one path p per
                                                            (l of h, l of Y -> L <= lmax) coupling
    A~_i,L  = sum_{p -> L} A_i,p V_p                        channel mixing (equivariant linear)
    B_i^(1) = A~_i
    B_i^(2) = (A~_i (x) A~_i)_L                             channel by channel, Clebsch-Gordan (3-body)
    B_i^(3) = (B_i^(2) (x) A~_i)_L                                                            (4-body)
    m_i     = sum_nu sum_paths w[z_i, path, k] B_i^(nu)_path,k       element-dependent weights
    h_i'    = U m_i + S h_i                                 (no self-connection S in the first layer)
    E_i     = sum_t readout_t(0e scalars of h_i^t)          linear per layer, a small MLP after the last

Y are the spherical harmonics to ``sh_lmax`` (3), R_t an MLP of the radial (Bessel) basis
alone (no node features: one radial evaluation per edge and layer), u the smooth cutoff
envelope. The message is linear in the neighbour's features; the non-linearity is the body
order: a product of nu sums over neighbours couples atom i with nu neighbours at once, which
two-body messages need many layers to approximate. That is where MACE's accuracy per epoch
comes from (benchmarks/RESULTS.md, issue 12). The products act on atoms, not edges, so the
many-body part costs little next to the edge work, and the edge tensor is [edges, (lmax+1)^2,
channels] rather than SEGNN's [edges, 1184].

Only natural-parity irreps (0e, 1o, 2e, 3o, ...) are kept: products of spherical harmonics
of a scalar reach nothing else, and the energy needs nothing else. Hidden features h are
``features`` x 0e (+ ``features`` x 1o ... up to ``hidden_lmax``). The default ``hidden_lmax=1``
passes vectors between layers as MACE's 64x0e+64x1o does: on rMD17 aspirin it learns more per
epoch than ``hidden_lmax=0`` (invariant features between layers, MACE-L0) at about twice the
step time, and wins from ~20 minutes of one CPU thread on (benchmarks/RESULTS.md, issue 12);
``hidden_lmax=0`` is the cheaper choice for MD speed and very short budgets.

Layout: steerable features are [atoms or edges, components, channels], components l-major
(l = 0, 1, 1, 1, 2, ...) in e3nn's basis, so that per-edge work is on contiguous channel rows.
The Clebsch-Gordan coefficients are e3nn's (``o3.wigner_3j``, the basis of
``o3.SphericalHarmonics``), built in float64 and not saved in checkpoints (rebuilt exactly).
"""
import functools
from typing import Dict, List, Tuple

import torch
from e3nn import o3
from torch import Tensor, nn

from eqff.data import keys
from eqff.models.chunking import rows_in_chunks
from eqff.models.mpnn import MessagePassingModel
from eqff.nn.normalized import ElementLinear, NormalizedLinear, normalized_mlp


def natural_coupling(l1: int, l2: int, lmax: int) -> List[int]:
    """Degrees L <= lmax that l1 (x) l2 reaches with natural parity (l1 + l2 + L even)."""
    return [big_l for big_l in range(abs(l1 - l2), min(l1 + l2, lmax) + 1) if (l1 + l2 + big_l) % 2 == 0]


def clebsch_gordan(l1: int, l2: int, big_l: int) -> Tensor:
    """e3nn's Wigner 3j symbol [2l1+1, 2l2+1, 2L+1] times sqrt(2L+1) (unit norm for unit inputs), float64."""
    return o3.wigner_3j(l1, l2, big_l, dtype=torch.float64) * (2 * big_l + 1) ** 0.5


class NeighbourSlots(nn.Module):
    """Each atom's incoming edges laid out in a padded [atoms, max neighbours] table, so that a
    sum over neighbours is a batched matrix product instead of a per-edge [edges, (lmax+1)^2,
    channels] tensor followed by a scatter (benchmarks/PROFILE.md). Returns the edge of each
    slot (empty slots repeat edge 0), a 0/1 mask of the filled slots and the table's width.
    Integer bookkeeping only: no gradient flows through it."""

    def forward(self, receivers: Tensor, num_nodes: int) -> Tuple[Tensor, Tensor, int]:
        edges = receivers.shape[0]
        if edges == 0:
            empty = torch.zeros(0, dtype=torch.long, device=receivers.device)
            return empty, empty.to(torch.bool), 0
        order = torch.argsort(receivers, stable=True)
        counts = torch.bincount(receivers, minlength=num_nodes)
        width = int(counts.max())
        first = torch.cumsum(counts, 0) - counts  # first sorted position of each atom's edges
        sorted_receivers = receivers[order]
        slot = torch.arange(edges, device=receivers.device) - first[sorted_receivers]
        position = sorted_receivers * width + slot
        table = torch.zeros((num_nodes * width,), dtype=torch.long, device=receivers.device)
        table[position] = order
        filled = torch.zeros((num_nodes * width,), dtype=torch.bool, device=receivers.device)
        filled[position] = True
        return table, filled, width


class EdgeMessages(nn.Module):
    """A_i,p = sum_j R_p(r_ij) (Y(r_ij) (x) x_j)_p for every coupling path p = (l_in, l_sh -> L),
    returned per output degree L as [atoms, 2L+1, paths to L * channels] (not yet normalised).

    Per path, with Q_e [d_in, 2L+1] the Clebsch-Gordan contraction of Y(r_e) (Y_L itself for a
    scalar input) and T_e = x_j R_p(r_e) [d_in, K]: A_i,p = sum over slots (e, m) of
    Q_e[m]^T T_e[m], one batched matrix product over the neighbour table."""

    coupled: List[Tuple[int, int, int, int, int]]  # typed for TorchScript: empty for scalar inputs

    def __init__(self, in_ls: List[int], sh_lmax: int, out_lmax: int, channels: int):
        super().__init__()
        self.channels = channels
        self.in_ls = in_ls
        self.sh_lmax = sh_lmax
        self.out_ls: List[int] = list(range(out_lmax + 1))
        paths: List[Tuple[int, int, int]] = []  # (input block, sh degree, L)
        for block, l_in in enumerate(in_ls):
            for l_sh in range(sh_lmax + 1):
                for big_l in natural_coupling(l_in, l_sh, out_lmax):
                    paths.append((block, l_sh, big_l))
        self.paths = paths
        self.num_paths = len(paths)
        self.paths_per_l: List[int] = [sum(1 for p in paths if p[2] == big_l) for big_l in self.out_ls]
        # coupling matrices for l_in > 0 paths: Y_lsh [slots, d_sh] @ C -> [slots, d_in * d_L]
        matrices: List[Tensor] = []
        self.coupled = []  # (path index, l_in, l_sh, L, cg offset)
        offset = 0
        for p, (block, l_sh, big_l) in enumerate(paths):
            l_in = in_ls[block]
            if l_in == 0:
                continue
            cg = clebsch_gordan(l_in, l_sh, big_l).permute(1, 0, 2).reshape(2 * l_sh + 1, -1)  # [d_sh, d_in * d_L]
            matrices.append(cg.reshape(-1))
            self.coupled.append((p, l_in, l_sh, big_l, offset))
            offset += cg.numel()
        cg_all = torch.cat(matrices) if matrices else torch.zeros(0, dtype=torch.float64)
        self.register_buffer("cg", cg_all.to(torch.get_default_dtype()), persistent=False)
        # scalar-input paths: 0 (x) L -> L, Q = Y_L
        self.scalar_paths: List[int] = [p for p, (block, _, _) in enumerate(paths) if in_ls[block] == 0]

    def forward(self, x: Tensor, harmonics: Tensor, radial: Tensor, senders: Tensor, table: Tensor,
                filled: Tensor, width: int) -> List[Tensor]:
        """x: sender features per atom [N, D_in, K]; harmonics [E, (sh_lmax+1)^2]; radial
        [E, paths, K] (envelope included); ``table``, ``filled``, ``width`` from NeighbourSlots.
        Output: per L, [N, 2L+1, paths_L * K]."""
        # empty slots repeat edge 0; their harmonics (the smallest tensor) are zeroed, so every
        # path's coupling Q, and with it their contribution, is exactly zero
        x_slots = x.index_select(0, senders.index_select(0, table))  # [slots, D_in, K]
        r_slots = radial.index_select(0, table)  # [slots, paths, K]
        y_slots = harmonics.index_select(0, table) * filled.unsqueeze(-1).to(harmonics.dtype)  # [slots, D_sh]
        return self.from_slots(x_slots, y_slots, r_slots, x.shape[0], width)

    def from_slots(self, x_slots: Tensor, y_slots: Tensor, r_slots: Tensor, n: int, width: int) -> List[Tensor]:
        """The sums of ``forward`` for ``n`` atoms from their ``n * width`` neighbour slots: sender
        features [slots, D_in, K], harmonics (zero in empty slots) [slots, D_sh], radial
        [slots, paths, K]."""
        k = self.channels
        # split/unbind once: slicing per path would give each slice a zero-filled full-size
        # gradient in the backward passes
        r_paths = r_slots.unbind(1)  # per path [slots, K]
        x_blocks = x_slots.split([2 * l + 1 for l in self.in_ls], dim=1)
        y_blocks = y_slots.split([2 * l + 1 for l in range(self.sh_lmax + 1)], dim=1)
        per_l: List[List[Tensor]] = [[] for _ in self.out_ls]
        for p in self.scalar_paths:
            big_l = self.paths[p][2]
            q = y_blocks[big_l].reshape(n, width, 2 * big_l + 1)
            t = (x_blocks[0].squeeze(1) * r_paths[p]).view(n, width, k)
            per_l[big_l].append(torch.bmm(q.transpose(1, 2), t))
        for p, l_in, l_sh, big_l, offset in self.coupled:
            d_in, d_sh, d_out = 2 * l_in + 1, 2 * l_sh + 1, 2 * big_l + 1
            cg = self.cg[offset:offset + d_sh * d_in * d_out].view(d_sh, d_in * d_out)
            q = (y_blocks[l_sh] @ cg).view(n, width * d_in, d_out)
            t = (x_blocks[self.in_ls.index(l_in)] * r_paths[p].unsqueeze(1)).view(n, width * d_in, k)
            per_l[big_l].append(torch.bmm(q.transpose(1, 2), t))
        out: List[Tensor] = []
        for messages in per_l:
            out.append(torch.cat(messages, dim=-1) if len(messages) > 1 else messages[0])  # [N, 2L+1, paths * K]
        return out


class PairProduct(nn.Module):
    """Channel-wise Clebsch-Gordan products of blocked features x [N, Dx, K], y [N, Dy, K].
    Each block a of x with block b of y to each reachable L in ``out_ls`` is one path
    [N, 2L+1, K]; with ``symmetric`` (x is y) only a <= b. Output: paths side by side along
    dim 1. Channels are the contiguous last dimension, so the outer products vectorise (2.3x
    faster than with the components last, measured on aspirin batches)."""

    pairs: List[Tuple[int, int, int, int]]

    def __init__(self, x_blocks: List[int], y_blocks: List[int], out_ls: List[int], symmetric: bool):
        """``x_blocks``, ``y_blocks``: the degree l of each block, blocks side by side in that order."""
        super().__init__()
        pairs: List[Tuple[int, int, int, int]] = []  # x block, y block, cg offset, columns
        matrices: List[Tensor] = []
        paths: List[Tuple[int, int]] = []  # (L, output row)
        offset, column = 0, 0
        for a, la in enumerate(x_blocks):
            for b, lb in enumerate(y_blocks):
                if symmetric and b < a:
                    continue
                blocks = []
                for big_l in natural_coupling(la, lb, max(out_ls)):
                    if big_l in out_ls:
                        blocks.append(clebsch_gordan(la, lb, big_l).reshape((2 * la + 1) * (2 * lb + 1), 2 * big_l + 1))
                        paths.append((big_l, column))
                        column += 2 * big_l + 1
                if not blocks:
                    continue
                matrix = torch.cat(blocks, dim=1).t().contiguous()  # [columns, dx * dy]
                pairs.append((a, b, offset, matrix.shape[0]))
                matrices.append(matrix.reshape(-1))
                offset += matrix.numel()
        self.pairs = pairs
        self.paths = paths
        self.dim = column
        self.x_sizes: List[int] = [2 * l + 1 for l in x_blocks]
        self.y_sizes: List[int] = [2 * l + 1 for l in y_blocks]
        self.register_buffer("cg", torch.cat(matrices).to(torch.get_default_dtype()), persistent=False)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        n, k = x.shape[0], x.shape[2]
        # split once (one backward node) rather than slicing per pair (a zero-filled gradient per slice)
        xs = x.split(self.x_sizes, dim=1)
        ys = xs if x is y else y.split(self.y_sizes, dim=1)
        out: List[Tensor] = []
        for a, b, offset, columns in self.pairs:
            dim_x, dim_y = self.x_sizes[a], self.y_sizes[b]
            outer = xs[a].unsqueeze(2) * ys[b].unsqueeze(1)
            matrix = self.cg[offset:offset + columns * dim_x * dim_y].view(columns, dim_x * dim_y)
            out.append(torch.matmul(matrix, outer.reshape(n, dim_x * dim_y, k)))
        return torch.cat(out, dim=1)


class ProductBasis(nn.Module):
    """m_i = sum over nu = 1..correlation and paths of w[z_i, path, k] B^(nu)_path (module doc).

    Input A~ [N, (lmax+1)^2, K]; output [N, sum over out_ls of 2L + 1, K]."""

    def __init__(self, channels: int, lmax: int, out_ls: List[int], correlation: int, num_elements: int):
        super().__init__()
        if not 1 <= correlation <= 3:
            raise ValueError(f"correlation must be 1, 2 or 3, got {correlation}")
        self.channels = channels
        self.correlation = correlation
        self.out_ls = out_ls
        a_blocks = list(range(lmax + 1))
        self.square = PairProduct(a_blocks, a_blocks, list(range(lmax + 1)) if correlation == 3 else out_ls, True)
        # B3 = (B2 (x) A~)_L. Its scalars (L = 0) are dot products of each B2 path with the A~
        # block of the same degree, (b2 * (A~ @ spread)) @ dot: three large ops instead of one
        # small product per path; other degrees (steerable hidden features) go through PairProduct.
        b2_paths = self.square.paths
        self.cube = PairProduct([big_l for big_l, _ in b2_paths], a_blocks, [l for l in out_ls if l > 0], False) \
            if correlation == 3 and max(out_ls) > 0 else None
        spread = torch.zeros((lmax + 1) ** 2, self.square.dim)
        dot = torch.zeros(self.square.dim, len(b2_paths))
        for q, (big_l, start) in enumerate(b2_paths):
            for m in range(2 * big_l + 1):
                spread[big_l * big_l + m, start + m] = 1.0
                dot[start + m, q] = (2 * big_l + 1) ** -0.5  # Clebsch-Gordan L (x) L -> 0
        self.register_buffer("spread", spread.t().contiguous(), persistent=False)  # [D_B2, D_A]
        self.register_buffer("dot", dot.t().contiguous(), persistent=False)  # [B2 paths, D_B2]
        scalar_columns = len(b2_paths) if 0 in out_ls else 0
        cube_paths: List[Tuple[int, int]] = [(0, q) for q in range(scalar_columns)]
        if self.cube is not None:
            cube_paths += [(big_l, scalar_columns + start) for big_l, start in self.cube.paths]
        # all paths per output degree, as (source, column): source 0 = A~, 1 = B2, 2 = B3
        self.groups: List[List[Tuple[int, int]]] = []
        for big_l in out_ls:
            group = [(0, big_l * big_l)] if big_l <= lmax else []
            if correlation >= 2:
                group += [(1, start) for l, start in self.square.paths if l == big_l]
            if correlation >= 3:
                group += [(2, start) for l, start in cube_paths if l == big_l]
            self.groups.append(group)
        # 0/1 matrices gather every path of every degree from A~, B2 and B3 (a matmul gathers
        # faster than indexing in the force double-backward)
        dims = [(lmax + 1) ** 2, self.square.dim, scalar_columns + (self.cube.dim if self.cube is not None else 0)]
        self.group_sizes: List[int] = [len(g) * (2 * out_ls[k] + 1) for k, g in enumerate(self.groups)]
        selects = [torch.zeros(sum(self.group_sizes), dims[source]) for source in range(3)]
        column = 0
        for g, group in enumerate(self.groups):
            dim = 2 * out_ls[g] + 1
            for source, start in group:
                selects[source][column:column + dim, start:start + dim] = torch.eye(dim)
                column += dim
        for source, name in enumerate(("select_a", "select_b2", "select_b3")):
            self.register_buffer(name, selects[source], persistent=False)  # [gathered, D_source]
        self.path_offsets: List[int] = [sum(len(g) for g in self.groups[:k]) for k in range(len(self.groups) + 1)]
        # w[z, path, k] for all paths of all degrees, N(0, 1) / sqrt(paths of that degree)
        scale = torch.cat([torch.full((len(g),), len(g) ** -0.5) for g in self.groups])
        self.weights = nn.Parameter(torch.randn(num_elements, self.path_offsets[-1], channels) * scale.view(1, -1, 1))

    def forward(self, a: Tensor, species: Tensor) -> Tensor:
        n, k = a.shape[0], a.shape[2]
        gathered = torch.matmul(self.select_a, a)
        if self.correlation >= 2:
            b2 = self.square(a, a)
            gathered = gathered + torch.matmul(self.select_b2, b2)
            if self.correlation >= 3:
                cube: List[Tensor] = []
                if self.out_ls[0] == 0:
                    cube.append(torch.matmul(self.dot, b2 * torch.matmul(self.spread, a)))
                cube_product = self.cube
                if cube_product is not None:
                    cube.append(cube_product(b2, a))
                gathered = gathered + torch.matmul(self.select_b3, torch.cat(cube, dim=1) if len(cube) > 1 else cube[0])
        weights = self.weights[species]  # [N, paths, K]
        out: List[Tensor] = []
        for g, part in enumerate(gathered.split(self.group_sizes, dim=1)):
            paths = self.path_offsets[g + 1] - self.path_offsets[g]
            w = weights[:, self.path_offsets[g]:self.path_offsets[g + 1]]
            out.append((part.view(n, paths, -1, k) * w.unsqueeze(2)).sum(dim=1))
        return torch.cat(out, dim=1)


def _readout_as_sequential(state_dict, prefix, *args) -> None:
    """Checkpoints before 2026-11-30 stored the first layer's readout as a bare linear map
    (``readout.weight``); it is now ``readout.0.weight`` (the same numbers)."""
    if prefix + "readout.weight" in state_dict:
        state_dict[prefix + "readout.0.weight"] = state_dict.pop(prefix + "readout.weight")


class ACELayer(nn.Module):
    max_edges_per_chunk: int

    def __init__(self, in_ls: List[int], out_ls: List[int], channels: int, sh_lmax: int, num_basis: int,
                 radial_features: int, correlation: int, num_elements: int, avg_num_neighbors: float,
                 self_connection: bool, readout: nn.Module):
        super().__init__()
        self.channels = channels
        self.in_ls = in_ls
        self.out_ls = out_ls
        self.a_lmax = sh_lmax
        self.inv_avg_num_neighbors = 1.0 / float(avg_num_neighbors)
        self.sender = nn.ModuleList([NormalizedLinear(channels, channels) for _ in in_ls])
        self.messages = EdgeMessages(in_ls, sh_lmax, sh_lmax, channels)
        self.radial = normalized_mlp([num_basis, radial_features, radial_features, self.messages.num_paths * channels])
        # V: per degree L, [paths to L * K] -> [K]
        self.mix = nn.ModuleList([NormalizedLinear(p * channels, channels) for p in self.messages.paths_per_l])
        self.products = ProductBasis(channels, sh_lmax, out_ls, correlation, num_elements)
        self.update = nn.ModuleList([NormalizedLinear(channels, channels) for _ in out_ls])
        # element-dependent skip for each output degree the input also has (none in the first layer,
        # whose input is the embedding: no unused parameters, which DDP refuses)
        self.skip_blocks = [b for b, l in enumerate(out_ls) if self_connection and l in in_ls]
        self.self_connection = nn.ModuleList([ElementLinear(num_elements, channels, channels) for _ in self.skip_blocks])
        self.readout = readout  # an nn.Sequential ending in a linear map
        self._register_load_state_dict_pre_hook(_readout_as_sequential)
        self.max_edges_per_chunk = 0  # 0: all atoms at once (eqff/models/chunking.py)

    def neighbour_sums(self, x: Tensor, graph: Dict[str, Tensor]) -> List[Tensor]:
        """A_i,p before channel mixing, per L [N, 2L+1, paths_L * K] (EdgeMessages), all atoms at once."""
        radial = (self.radial(graph[keys.EDGE_BASIS]) * graph[keys.EDGE_ENVELOPE].unsqueeze(-1))
        return self.messages(x, graph[keys.EDGE_HARMONICS], radial.view(-1, self.messages.num_paths, self.channels),
                             graph[keys.SENDERS], graph[keys.NEIGHBOUR_TABLE], graph[keys.NEIGHBOUR_FILLED],
                             int(graph[keys.NEIGHBOUR_WIDTH]))

    @torch.jit.unused
    def _neighbour_sums_in_chunks(self, x: Tensor, graph: Dict[str, Tensor]) -> List[Tensor]:
        """``self.messages`` for blocks of atoms whose neighbour-table rows hold at most
        ``max_edges_per_chunk`` slots, each block recomputed in the backward pass (chunking.py).
        The radial MLP runs per slot inside the block, so no [edges, paths, K] tensor exists."""
        table, filled = graph[keys.NEIGHBOUR_TABLE], graph[keys.NEIGHBOUR_FILLED]
        width = int(graph[keys.NEIGHBOUR_WIDTH])
        atoms_per_chunk = self._atoms_per_chunk(graph)
        if x.shape[0] <= atoms_per_chunk or width == 0:
            return self.neighbour_sums(x, graph)
        per_slot = [graph[keys.EDGE_BASIS].index_select(0, table), graph[keys.EDGE_ENVELOPE].index_select(0, table),
                    graph[keys.EDGE_HARMONICS].index_select(0, table) * filled.unsqueeze(-1).to(x.dtype),
                    graph[keys.SENDERS].index_select(0, table)]
        return rows_in_chunks(functools.partial(self._slot_sums, width=width), [x], per_slot, atoms_per_chunk, width)

    @torch.jit.unused
    def _products_in_chunks(self, a: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        """The many-body products for the same blocks of atoms, recomputed in the backward pass:
        their intermediates (B2, B3: hundreds of numbers per atom and channel) are the largest
        per-atom tensors, which edge chunks alone would leave growing with the system."""
        atoms_per_chunk = self._atoms_per_chunk(graph)
        if a.shape[0] <= atoms_per_chunk:
            return self.products(a, graph[keys.SPECIES])
        return rows_in_chunks(lambda block, species: [self.products(block, species)], [], [a, graph[keys.SPECIES]],
                              atoms_per_chunk, 1)[0]

    def _atoms_per_chunk(self, graph: Dict[str, Tensor]) -> int:
        """Atoms whose neighbour-table rows hold at most ``max_edges_per_chunk`` slots (at least one)."""
        return max(1, self.max_edges_per_chunk // max(int(graph[keys.NEIGHBOUR_WIDTH]), 1))

    def _slot_sums(self, x: Tensor, basis: Tensor, envelope: Tensor, harmonics: Tensor, senders: Tensor,
                   width: int) -> List[Tensor]:
        """One block of atoms' neighbour sums from the geometry of its ``width`` slots per atom
        (empty slots: zero harmonics)."""
        radial = (self.radial(basis) * envelope.unsqueeze(-1)).view(-1, self.messages.num_paths, self.channels)
        return self.messages.from_slots(x.index_select(0, senders), harmonics, radial, basis.shape[0] // width, width)

    def forward(self, h: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        """h [N, (hidden_lmax+1)^2, K] -> new features; adds this layer's atomic energies to
        graph[NODE_ENERGY] (MACE reads out every layer)."""
        species = graph[keys.SPECIES]
        mixed: List[Tensor] = []
        for b, linear in enumerate(self.sender):
            l_in = self.in_ls[b]
            mixed.append(linear(h[:, l_in * l_in:(l_in + 1) * (l_in + 1), :]))
        x = torch.cat(mixed, dim=1) if len(mixed) > 1 else mixed[0]
        chunked = self.max_edges_per_chunk > 0 and not torch.jit.is_scripting()
        per_l = self._neighbour_sums_in_chunks(x, graph) if chunked else self.neighbour_sums(x, graph)
        a_blocks: List[Tensor] = []
        for big_l, mix in enumerate(self.mix):
            a_blocks.append(mix(per_l[big_l]) * self.inv_avg_num_neighbors)  # [N, 2L+1, K]
        a = torch.cat(a_blocks, dim=1)  # [N, D_A, K]
        m = self._products_in_chunks(a, graph) if chunked else self.products(a, species)  # [N, D_out, K]
        out_blocks: List[Tensor] = []
        for b, linear in enumerate(self.update):
            big_l = self.out_ls[b]
            block = linear(m[:, big_l * big_l:(big_l + 1) * (big_l + 1), :])
            for c, skip in enumerate(self.self_connection):
                if self.skip_blocks[c] == b:
                    block = block + skip(h[:, big_l * big_l:(big_l + 1) * (big_l + 1), :], species)
            out_blocks.append(block)
        out = torch.cat(out_blocks, dim=1) if len(out_blocks) > 1 else out_blocks[0]
        x = out[:, 0, :]
        features = x
        for module in self.readout:  # keep the input of the last linear map: the last-layer features
            features = x
            x = module(x)
        graph[keys.NODE_FEATURES] = torch.cat([graph[keys.NODE_FEATURES], features], dim=1)
        graph[keys.NODE_ENERGY] = graph[keys.NODE_ENERGY] + x.squeeze(-1)
        return out


class MessagePassingACE(MessagePassingModel):
    def __init__(self, num_elements: int, cutoff: float, features: int = 64, hidden_lmax: int = 1,
                 sh_lmax: int = 3, correlation: int = 3, num_layers: int = 2, num_basis: int = 8,
                 radial_features: int = 64, readout_features: int = 16, envelope_p: int = 6,
                 avg_num_neighbors: float = 10.0):
        super().__init__(num_elements, features, cutoff, num_basis, envelope_p)
        self.features = features
        self.slots = NeighbourSlots()
        self.harmonics = o3.SphericalHarmonics(o3.Irreps.spherical_harmonics(sh_lmax), normalize=True,
                                               normalization="component")
        layers = []
        in_ls = [0]
        for t in range(num_layers):
            last = t == num_layers - 1
            out_ls = [0] if last else list(range(hidden_lmax + 1))
            readout = normalized_mlp([features, readout_features, 1] if last else [features, 1])
            layers.append(ACELayer(in_ls, out_ls, features, sh_lmax, num_basis, radial_features, correlation,
                                   num_elements, avg_num_neighbors, t > 0, readout))
            in_ls = out_ls
        self.layers = nn.ModuleList(layers)

    def attributes(self, graph: Dict[str, Tensor]) -> Dict[str, Tensor]:
        vectors = graph[keys.EDGE_VECTOR]
        num_nodes = graph[keys.SPECIES].shape[0]
        graph[keys.EDGE_HARMONICS] = self.harmonics(vectors)
        table, filled, width = self.slots(graph[keys.RECEIVERS], num_nodes)
        graph[keys.NEIGHBOUR_TABLE] = table
        graph[keys.NEIGHBOUR_FILLED] = filled
        graph[keys.NEIGHBOUR_WIDTH] = torch.tensor(width)
        graph[keys.NODE_ENERGY] = torch.zeros(num_nodes, dtype=vectors.dtype, device=vectors.device)
        return graph

    def embed(self, species: Tensor) -> Tensor:
        return self.embedding(species).unsqueeze(1)  # [N, 1, K]: scalars only

    def readout_energies(self, h: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        return graph[keys.NODE_ENERGY]  # every layer has added its readout

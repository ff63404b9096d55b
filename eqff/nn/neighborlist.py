"""A pure-torch, TorchScript-able cell-list neighbour list, for exported models.

An exported model must run from positions (and a box) alone, with nothing but torch, so it
carries its own neighbour list. Same contract as ``eqff.data.neighbors``: receiver/sender
indices and integer shifts with ``r_ij = x_j - x_i + shift @ cell``, for open, periodic and
mixed cells, triclinic cells, cells smaller than twice the cutoff and unwrapped positions.

Algorithm (O(N)): wrap atoms into the cell in fractional coordinates, bin them into a grid
whose bins are at least ``cutoff`` thick, and test each atom against the atoms of half of the
neighbouring bins (more than one ring of bins, and so several images, when the cell is thinner
than the cutoff); every pair found is written in both directions. Non-periodic directions get a
bounding box instead of the cell. Only occupied bins are stored (a sorted table searched with
``searchsorted``), so atoms spread over thousands of Å cost no more memory than a compact
structure.
"""
from typing import List, Tuple

import torch
from torch import Tensor


def _completed_lattice(cell: Tensor, pbc: Tensor) -> Tensor:
    """The cell with every non-periodic row replaced by a unit vector that keeps it non-singular."""
    lattice = torch.where(pbc.unsqueeze(1), cell, torch.zeros_like(cell))
    rows: List[Tensor] = [lattice[0], lattice[1], lattice[2]]
    eye = torch.eye(3, dtype=cell.dtype, device=cell.device)
    for k in range(3):
        if bool(pbc[k]):
            continue
        a = rows[(k + 1) % 3]
        b = rows[(k + 2) % 3]
        normal = torch.linalg.cross(a, b)
        normal_length = torch.linalg.norm(normal)
        if float(normal_length) > 1e-10 * max(1.0, float(torch.linalg.norm(a) * torch.linalg.norm(b))):
            rows[k] = normal / normal_length
            continue
        reference = a if float(torch.linalg.norm(a)) > 0.0 else b
        if float(torch.linalg.norm(reference)) == 0.0:
            rows[k] = eye[k]
            continue
        direction = reference / torch.linalg.norm(reference)
        m = int(torch.argmin(torch.abs(direction)))
        v = eye[m] - torch.dot(eye[m], direction) * direction
        rows[k] = v / torch.linalg.norm(v)
    return torch.stack(rows)


def neighbor_list_torch(
    positions: Tensor, cell: Tensor, pbc: Tensor, cutoff: float, chunk_size: int = 4096
) -> Tuple[Tensor, Tensor]:
    """Full neighbour list of one structure: (edge_index [2,E] long, shifts [E,3] in positions' dtype).

    Each pair is found once (from the receiver's bin towards half of the neighbouring bins)
    and written in both directions, (i, j, S) and (j, i, -S). The bins live in a sparse table
    of occupied bins (sorted bin ids, looked up with ``searchsorted``), so memory is O(atoms)
    however far apart the atoms are in non-periodic directions. ``chunk_size`` receivers are
    processed at a time (bounds the memory of the candidate pairs)."""
    device = positions.device
    dtype = positions.dtype
    n_atoms = positions.shape[0]
    if n_atoms == 0:
        return (torch.zeros((2, 0), dtype=torch.long, device=device),
                torch.zeros((0, 3), dtype=dtype, device=device))
    positions = positions.detach()
    cell = cell.detach().to(dtype)
    pbc = pbc.to(torch.bool)
    if bool(pbc.any()):
        periodic_cell = torch.where(pbc.unsqueeze(1), cell, torch.zeros_like(cell))
        if bool((torch.linalg.norm(periodic_cell, dim=1)[pbc] < 1e-8).any()):
            raise ValueError("eqff neighbour list: a periodic direction has a zero cell vector")
    lattice = _completed_lattice(cell, pbc)
    if float(torch.abs(torch.linalg.det(lattice))) < 1e-8:
        raise ValueError("eqff neighbour list: the periodic cell is singular (zero volume)")
    inverse = torch.linalg.inv(lattice)
    heights = 1.0 / torch.linalg.norm(inverse, dim=0)  # distance between lattice planes

    frac = positions @ inverse
    wrap = torch.where(pbc.unsqueeze(0), torch.floor(frac), torch.zeros_like(frac))
    frac = frac - wrap
    wrapped = positions - wrap @ lattice  # = frac @ lattice: the atoms moved into the cell
    frac_min = torch.where(pbc, torch.zeros_like(heights), frac.min(dim=0).values)
    frac = frac - frac_min
    span = torch.where(pbc, torch.ones_like(heights), frac.max(dim=0).values)
    extent = span * heights
    # at most 2^20 bins per direction: bin ids (their product) stay far inside int64; only
    # occupied bins are stored, so a sparse structure costs no memory for its empty bins
    n_bins = torch.clamp(torch.floor(extent / cutoff), min=1.0, max=float(1 << 20)).to(torch.long)
    bin_width = torch.where(span > 0, span, torch.ones_like(span)) / n_bins.to(dtype)
    # How many rings of bins a neighbour can be away: more than one only if the cell is thin.
    reach = torch.ceil(cutoff / (heights * bin_width) - 1e-9).to(torch.long)
    reach = torch.where(pbc, reach, torch.clamp(torch.minimum(reach, n_bins - 1), min=0))

    bin3 = torch.minimum(torch.floor(frac / bin_width).to(torch.long), n_bins - 1)
    bin3 = torch.clamp(bin3, min=0)
    strides = torch.stack([n_bins[1] * n_bins[2], n_bins[2], torch.ones_like(n_bins[2])])
    bin_id = (bin3 * strides).sum(dim=1)
    # sparse cell list: atoms sorted by bin, and the occupied bins with their first atom and count
    sorted_bins, order = torch.sort(bin_id)
    rank_of = torch.empty_like(order)
    rank_of[order] = torch.arange(n_atoms, device=device)  # position of each atom in the sorted order
    is_first = torch.ones_like(sorted_bins, dtype=torch.bool)
    is_first[1:] = sorted_bins[1:] != sorted_bins[:-1]
    bin_start = torch.nonzero(is_first).flatten()
    occupied = sorted_bins.index_select(0, bin_start)
    bin_count = torch.diff(bin_start, append=torch.full((1,), n_atoms, dtype=torch.long, device=device))
    sorted_wrapped = wrapped.index_select(0, order)
    # coordinates as separate contiguous columns: 1-d gathers are the fast ones
    sorted_x = sorted_wrapped[:, 0].contiguous()
    sorted_y = sorted_wrapped[:, 1].contiguous()
    sorted_z = sorted_wrapped[:, 2].contiguous()
    long_wrap = wrap.to(torch.long)

    ranges = [torch.arange(-int(reach[k]), int(reach[k]) + 1, device=device) for k in range(3)]
    offsets = torch.cartesian_prod(ranges[0], ranges[1], ranges[2]).reshape(-1, 3)
    # half of the offsets (lexicographically >= 0): each pair is found from one side only; in
    # the receiver's own bin (offset 0) only the atoms after it in the sorted order
    width = 2 * reach + 1
    offset_code = (offsets[:, 0] * width[1] + offsets[:, 1]) * width[2] + offsets[:, 2]
    offsets = offsets[offset_code >= 0]
    is_zero_offset = (offsets == 0).all(dim=1)
    n_offsets = offsets.shape[0]
    cutoff_sq = cutoff * cutoff

    senders_out: List[Tensor] = []
    receivers_out: List[Tensor] = []
    shifts_out: List[Tensor] = []
    for start in range(0, n_atoms, chunk_size):
        receivers = torch.arange(start, min(start + chunk_size, n_atoms), device=device)
        raw = bin3[receivers].unsqueeze(1) + offsets.unsqueeze(0)  # [n, n_off, 3]
        image = torch.where(pbc, torch.div(raw, n_bins, rounding_mode="floor"), torch.zeros_like(raw))
        neighbour_bin = raw - image * n_bins
        inside = ((neighbour_bin >= 0) & (neighbour_bin < n_bins)).all(dim=-1)
        neighbour_id = (neighbour_bin * strides).sum(dim=-1).reshape(-1)
        slot = torch.clamp(torch.searchsorted(occupied, neighbour_id), max=occupied.shape[0] - 1)
        found = inside.reshape(-1) & (occupied.index_select(0, slot) == neighbour_id)
        first_sorted = bin_start.index_select(0, slot)
        count = bin_count.index_select(0, slot)
        # own bin: only the atoms after the receiver (each pair once)
        own = is_zero_offset.repeat(receivers.shape[0])
        after_self = rank_of[receivers].repeat_interleave(n_offsets) + 1
        count = torch.where(own, first_sorted + count - after_self, count)
        first_sorted = torch.where(own, after_self, first_sorted)
        count = torch.where(found, count, torch.zeros_like(count))
        # per (receiver, offset) pair: the receiver's position minus the image's lattice offset
        image = image.reshape(-1, 3)
        base = (wrapped[receivers].unsqueeze(1).expand(-1, n_offsets, -1).reshape(-1, 3)
                - image.to(dtype) @ lattice)
        base_x = base[:, 0].contiguous()
        base_y = base[:, 1].contiguous()
        base_z = base[:, 2].contiguous()
        # one row per candidate (receiver, atom of a neighbouring bin), no padding
        pair = torch.repeat_interleave(torch.arange(count.shape[0], device=device), count)
        delta = first_sorted - (torch.cumsum(count, 0) - count)
        candidate = torch.arange(pair.shape[0], device=device) + delta.index_select(0, pair)
        dx = sorted_x.index_select(0, candidate) - base_x.index_select(0, pair)
        dy = sorted_y.index_select(0, candidate) - base_y.index_select(0, pair)
        dz = sorted_z.index_select(0, candidate) - base_z.index_select(0, pair)
        kept = torch.nonzero(dx * dx + dy * dy + dz * dz < cutoff_sq).flatten()
        pair = pair.index_select(0, kept)
        j = order.index_select(0, candidate.index_select(0, kept))
        i = torch.div(pair, n_offsets, rounding_mode="floor") + start
        shift = image.index_select(0, pair) + long_wrap.index_select(0, i) - long_wrap.index_select(0, j)
        receivers_out += [i, j]
        senders_out += [j, i]
        shifts_out += [shift, -shift]
    edge_index = torch.stack([torch.cat(receivers_out), torch.cat(senders_out)])
    return edge_index, torch.cat(shifts_out).to(dtype)


def batched_neighbor_list_torch(
    positions: Tensor, cell: Tensor, pbc: Tensor, batch: Tensor, num_graphs: int, cutoff: float
) -> Tuple[Tensor, Tensor]:
    """Neighbour lists of every structure in a batch, with global atom indices."""
    edge_indices: List[Tensor] = []
    shifts: List[Tensor] = []
    counts = torch.bincount(batch, minlength=num_graphs)
    first = torch.cumsum(counts, 0) - counts
    for b in range(num_graphs):
        start = int(first[b])
        stop = start + int(counts[b])
        edge_index, shift = neighbor_list_torch(positions[start:stop], cell[b], pbc[b], cutoff)
        edge_indices.append(edge_index + start)
        shifts.append(shift)
    return torch.cat(edge_indices, dim=1), torch.cat(shifts)

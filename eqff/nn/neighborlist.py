"""A pure-torch, TorchScript-able cell-list neighbour list, for exported models.

An exported model must run from positions (and a box) alone, with nothing but torch, so it
carries its own neighbour list. Same contract as ``eqff.data.neighbors``: receiver/sender
indices and integer shifts with ``r_ij = x_j - x_i + shift @ cell``, for open, periodic and
mixed cells, triclinic cells, cells smaller than twice the cutoff and unwrapped positions.

Algorithm (O(N)): wrap atoms into the cell in fractional coordinates, bin them into a grid
whose bins are at least ``cutoff`` thick, and test each atom against the atoms of the
neighbouring bins (more than one ring of bins, and so several images, when the cell is thinner
than the cutoff). Non-periodic directions get a bounding box instead of the cell.
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
    """Full neighbour list of one structure: (edge_index [2,E] long, shifts [E,3] in positions' dtype)."""
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
    frac_min = torch.where(pbc, torch.zeros_like(heights), frac.min(dim=0).values)
    frac = frac - frac_min
    span = torch.where(pbc, torch.ones_like(heights), frac.max(dim=0).values)
    extent = span * heights
    n_bins = torch.clamp(torch.floor(extent / cutoff), min=1.0).to(torch.long)
    bin_width = torch.where(span > 0, span, torch.ones_like(span)) / n_bins.to(dtype)
    # How many rings of bins a neighbour can be away: more than one only if the cell is thin.
    reach = torch.ceil(cutoff / (heights * bin_width) - 1e-9).to(torch.long)
    reach = torch.where(pbc, reach, torch.clamp(torch.minimum(reach, n_bins - 1), min=0))

    bin3 = torch.minimum(torch.floor(frac / bin_width).to(torch.long), n_bins - 1)
    bin3 = torch.clamp(bin3, min=0)
    strides = torch.stack([n_bins[1] * n_bins[2], n_bins[2], torch.ones_like(n_bins[2])])
    bin_id = (bin3 * strides).sum(dim=1)
    n_total_bins = int(n_bins.prod())
    order = torch.argsort(bin_id)
    sorted_bins = bin_id[order]
    counts = torch.bincount(bin_id, minlength=n_total_bins)
    starts = torch.cumsum(counts, 0) - counts
    max_per_bin = int(counts.max())
    slot = torch.arange(n_atoms, device=device) - starts[sorted_bins]
    table = torch.full((n_total_bins, max_per_bin), -1, dtype=torch.long, device=device)
    table[sorted_bins, slot] = order

    ranges = [torch.arange(-int(reach[k]), int(reach[k]) + 1, device=device) for k in range(3)]
    offsets = torch.cartesian_prod(ranges[0], ranges[1], ranges[2]).reshape(-1, 3)
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
        neighbour_bin = torch.where(inside.unsqueeze(-1), neighbour_bin, torch.zeros_like(neighbour_bin))
        candidates = table[(neighbour_bin * strides).sum(dim=-1)]  # [n, n_off, M]
        valid = (candidates >= 0) & inside.unsqueeze(-1)
        i = receivers.view(-1, 1, 1).expand_as(candidates)
        img = image.unsqueeze(2).expand(-1, -1, max_per_bin, -1)
        i, j, img = i[valid], candidates[valid], img[valid]
        vectors = (frac[j] - frac[i] + img.to(dtype)) @ lattice
        keep = ((vectors * vectors).sum(dim=-1) < cutoff_sq) & ~((i == j) & (img == 0).all(dim=-1))
        i, j, img = i[keep], j[keep], img[keep]
        receivers_out.append(i)
        senders_out.append(j)
        shifts_out.append(img.to(dtype) - wrap[j] + wrap[i])
    edge_index = torch.stack([torch.cat(receivers_out), torch.cat(senders_out)])
    return edge_index, torch.cat(shifts_out)


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

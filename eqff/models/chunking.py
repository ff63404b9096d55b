"""Memory-bounded evaluation: the sums over edges of every layer, a chunk of edges at a time,
recomputed in the backward pass.

A message-passing layer's memory is its per-edge tensors (SEGNN: [edges, 1184] tensor-product
outputs; ace: [neighbour slots, paths, channels]), and autograd keeps tens of them per layer for
the force backward, so the peak of energy + forces grows with the number of edges (SEGNN: +4 GiB
at 1,536 waters, ~32 GiB at 12,288; benchmarks/RESULTS.md). With ``max_edges_per_chunk = C``
a layer computes its sums over edges, sum_j m_ij, for C edges at a time under
``torch.utils.checkpoint``: the forward keeps only each chunk's node-sized result, and the
backward recomputes one chunk's messages when it reaches them. What stays alive is then

    per-edge intermediates of C edges (one chunk, in the forward and in the backward)
    + what any evaluation holds: node features of every layer [N, ...] and the edge geometry
      (vectors, radial basis, envelope, harmonics: [E, a few tens])

instead of the per-edge intermediates of all E edges of every layer. The sums are the same
numbers added in another order: equal to round-off. The price is one more pass through the
messages (the recomputation).

ace evaluates its neighbour sums on a padded [atoms, max neighbours] table, so there a chunk is
a block of atoms whose table rows hold at most C slots (at least one atom); its many-body
products, per atom but hundreds of numbers per atom and channel, run in the same blocks.

Eager only: TorchScript cannot run ``torch.utils.checkpoint``, so exported models (TorchScript,
.pt2) evaluate in one piece and ``set_max_edges_per_chunk`` refuses them. The trainer does not
use it; the force loss's double backward runs through it too, with the same gradients
(tests/test_chunked.py).
"""
import numbers
from typing import Callable, Dict, List, Optional

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from eqff.data import keys
from eqff.errors import ConfigError

EdgeSums = Callable[[Tensor, Dict[str, Tensor]], List[Tensor]]


def split_edges(graph: Dict[str, Tensor], size: int) -> List[Dict[str, Tensor]]:
    """One ``graph`` per chunk of ``size`` edges: the per-edge fields (``keys.EDGE_FIELDS``) split,
    everything else shared. ``split`` makes one backward node per field, which concatenates the
    chunks' gradients once, where slicing would add a zero-filled full-size gradient per chunk."""
    pieces = {key: graph[key].split(size) for key in keys.EDGE_FIELDS if key in graph}
    count = len(pieces[keys.RECEIVERS])
    return [{**graph, **{key: parts[c] for key, parts in pieces.items()}} for c in range(count)]


def sums_in_chunks(edge_sums: EdgeSums, h: Tensor, graph: Dict[str, Tensor], max_edges: int) -> List[Tensor]:
    """``edge_sums(h, graph)`` (node-sized sums over edges) added up over chunks of at most
    ``max_edges`` edges, each chunk checkpointed (recomputed in the backward pass).
    ``edge_sums`` must not write to ``graph``: it runs again on the same inputs."""
    if graph[keys.RECEIVERS].shape[0] <= max_edges:
        return edge_sums(h, graph)
    total: Optional[List[Tensor]] = None
    for chunk in split_edges(graph, max_edges):
        sums = checkpoint(edge_sums, h, chunk, use_reentrant=False, preserve_rng_state=False)
        total = list(sums) if total is None else [t + s for t, s in zip(total, sums)]
    return total


def rows_in_chunks(row_sums: Callable[..., List[Tensor]], shared: List[Tensor], per_row: List[Tensor],
                   rows_per_chunk: int, row_width: int) -> List[Tensor]:
    """``row_sums(*shared, *per_row)`` over blocks of ``rows_per_chunk`` rows, each checkpointed,
    the results concatenated along rows. ``per_row`` tensors hold ``row_width`` entries per row
    (ace's neighbour slots: ``row_width`` slots per atom) and are split, not sliced (see
    ``split_edges``)."""
    pieces = [t.split(rows_per_chunk * row_width) for t in per_row]
    parts = [checkpoint(row_sums, *shared, *[p[c] for p in pieces], use_reentrant=False, preserve_rng_state=False)
             for c in range(len(pieces[0]))]
    return [torch.cat([part[k] for part in parts], dim=0) for k in range(len(parts[0]))]


def chunked_layers(module: nn.Module) -> List[nn.Module]:
    """The layers of ``module`` that can evaluate in chunks (they carry ``max_edges_per_chunk``)."""
    return [m for m in module.modules() if hasattr(m, "max_edges_per_chunk")]


def check_max_edges(max_edges: Optional[int]) -> int:
    """``max_edges`` as the int the layers keep: None or 0 -> 0 (all edges at once)."""
    if max_edges is None:
        return 0
    if isinstance(max_edges, bool) or not isinstance(max_edges, numbers.Integral) or max_edges < 0:
        raise ConfigError(f"max_edges_per_chunk must be a whole number of edges >= 1 (or None/0: all at once), "
                          f"got {max_edges!r}")
    return int(max_edges)


def set_max_edges_per_chunk(module: nn.Module, max_edges: Optional[int]) -> nn.Module:
    """Evaluate every layer of ``module`` (a ``Potential``, an eager ``ExportedPotential`` or a
    ``Committee``) over at most ``max_edges`` edges at a time; None or 0: all at once. Changes
    ``module`` in place and returns it."""
    value = check_max_edges(max_edges)
    layers = chunked_layers(module)
    scripted = isinstance(module, torch.jit.ScriptModule) or any(isinstance(m, torch.jit.ScriptModule) for m in layers)
    if scripted and not value:
        return module  # TorchScript evaluates in one piece anyway
    if scripted:
        raise ConfigError("max_edges_per_chunk needs an eager model (a checkpoint or a model in memory): a "
                          "TorchScript module cannot run torch.utils.checkpoint; load the checkpoint (best.pt) instead")
    if value and not layers:
        raise ConfigError(f"max_edges_per_chunk: {type(module).__name__} has no eqff layers to evaluate in chunks "
                          "(a .pt2 export computes in one piece: load the checkpoint instead)")
    for layer in layers:
        layer.max_edges_per_chunk = value
    return module


def max_edges_per_chunk(module: nn.Module) -> int:
    """The chunk size ``module``'s layers use (0: all edges at once)."""
    values = {int(layer.max_edges_per_chunk) for layer in chunked_layers(module)}
    return values.pop() if len(values) == 1 else 0

"""The generic message-passing frame (Gilmer et al.), which every eqff model instantiates.

    m_ij = phi_m(h_i, h_j, a_ij)                     message along edge j -> i
    M_i  = (1 / avg_num_neighbors) * sum_j m_ij      sum aggregation (normalised, see below)
    h_i' = phi_f(h_i, M_i)                           update

A layer subclasses ``MessagePassing`` and defines ``message`` and ``update``. The edge
geometry a_ij (vectors, lengths, radial basis, cutoff envelope) is computed once per
structure by ``EdgeGeometry`` and passed to every layer in a ``graph`` dict, whose keys are
declared in eqff/data/keys.py. A model subclasses ``MessagePassingModel``, which owns the
embedding, the geometry, the layer loop and the readout; its file keeps its layer, its formula
and what it adds to the frame (extra edge attributes, a different embedding or readout).

Memory: ``max_edges_per_chunk`` (0: off) makes a layer compute its sums over edges a chunk of
edges at a time, recomputed in the backward pass (eqff/models/chunking.py), so that the
per-edge intermediates of one chunk only are alive at a time. A layer's ``edge_sums`` is what
is chunked: it must read ``graph`` without writing to it.

The sum is divided by a constant (the typical neighbour count of the training data) so that
features keep their scale between a 9-atom molecule and a dense liquid. Dividing by a constant,
not by each atom's own count, keeps the energy smooth as atoms enter and leave the cutoff.
"""
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from eqff.data import keys
from eqff.models.chunking import sums_in_chunks
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
            keys.RECEIVERS: edge_index[0],
            keys.SENDERS: edge_index[1],
            keys.EDGE_VECTOR: edge_vector,
            keys.EDGE_LENGTH: length,
            keys.EDGE_BASIS: self.basis(length),
            keys.EDGE_ENVELOPE: self.envelope(length),
        }


class MessagePassing(nn.Module):
    """One layer of the frame: ``update(h, sum_j message(h, graph) / avg_num_neighbors, graph)``."""

    max_edges_per_chunk: int

    def __init__(self, avg_num_neighbors: float):
        super().__init__()
        self.inv_avg_num_neighbors = 1.0 / float(avg_num_neighbors)
        self.max_edges_per_chunk = 0  # 0: all edges at once (eqff/models/chunking.py)

    def aggregate(self, messages: Tensor, graph: Dict[str, Tensor], num_nodes: int) -> Tensor:
        return scatter_sum(messages, graph[keys.RECEIVERS], num_nodes) * self.inv_avg_num_neighbors

    def forward(self, h: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        return self.update(h, self.sums_over_edges(h, graph)[0], graph)

    def edge_sums(self, h: Tensor, graph: Dict[str, Tensor]) -> List[Tensor]:
        """The node-sized sums over edges that the layer needs: here the aggregated messages.
        Reads ``graph`` only (chunked evaluation calls it per chunk, and again in the backward)."""
        return [self.aggregate(self.message(h, graph), graph, h.shape[0])]

    def sums_over_edges(self, h: Tensor, graph: Dict[str, Tensor]) -> List[Tensor]:
        if self.max_edges_per_chunk > 0 and not torch.jit.is_scripting():
            return self._sums_in_chunks(h, graph)
        return self.edge_sums(h, graph)

    @torch.jit.unused
    def _sums_in_chunks(self, h: Tensor, graph: Dict[str, Tensor]) -> List[Tensor]:
        return sums_in_chunks(self.edge_sums, h, graph, self.max_edges_per_chunk)

    def message(self, h: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def update(self, h: Tensor, aggregated: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        raise NotImplementedError


class MessagePassingModel(nn.Module):
    """A whole model of the frame: per-atom energies e_i from species and edge vectors r_ij.

        graph = geometry(r) + attributes(graph)       a_ij, plus what the model adds
        h^0   = embed(species)
        h^t   = layer_t(h^(t-1), graph)               t = 1 .. T
        e_i   = readout_energies(h^T, graph)
        f_i   = graph[NODE_FEATURES]                  inputs of the readout's last linear map

``e_i`` is linear in ``f_i`` (its last-layer features): what last-layer uncertainty
(eqff/runtime/llpr.py) measures the novelty of. ``read_out`` runs a readout ``nn.Sequential``
and keeps the input of its last module.

    Subclasses build ``self.layers`` (an ``nn.ModuleList`` of layers called as
    ``layer(h, graph) -> h``) and ``self.readout`` (or override ``readout_energies``), and
    override ``attributes`` / ``embed`` where they need more than the defaults. The module
    names (embedding, geometry, layers, readout) are those of every saved checkpoint."""

    def __init__(self, num_elements: int, features: int, cutoff: float, num_basis: int, envelope_p: int):
        super().__init__()
        self.embedding = nn.Embedding(num_elements, features)
        self.geometry = EdgeGeometry(cutoff, num_basis, envelope_p)

    def forward(self, species: Tensor, edge_index: Tensor, edge_vector: Tensor) -> Tensor:
        return self.energies_and_features(species, edge_index, edge_vector)[0]

    def energies_and_features(self, species: Tensor, edge_index: Tensor, edge_vector: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-atom energies [N] and last-layer features [N, d]."""
        graph = self.geometry(edge_index, edge_vector)
        graph[keys.SPECIES] = species
        graph[keys.NODE_FEATURES] = torch.zeros((species.shape[0], 0), dtype=edge_vector.dtype, device=edge_vector.device)
        graph = self.attributes(graph)
        h = self.embed(species)
        for layer in self.layers:
            h = layer(h, graph)
        energies = self.readout_energies(h, graph)
        return energies, graph[keys.NODE_FEATURES]

    def attributes(self, graph: Dict[str, Tensor]) -> Dict[str, Tensor]:
        return graph

    def embed(self, species: Tensor) -> Tensor:
        return self.embedding(species)

    def readout_energies(self, h: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        return self.read_out(h, graph)

    def read_out(self, x: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        """``self.readout(x)`` [N]; appends the input of its last (linear) module to graph[NODE_FEATURES]."""
        features = x
        for module in self.readout:
            features = x
            x = module(x)
        graph[keys.NODE_FEATURES] = torch.cat([graph[keys.NODE_FEATURES], features], dim=1)
        return x.squeeze(-1)

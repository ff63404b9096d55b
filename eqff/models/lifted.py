"""A regular group convolution lifted to position-orientation space R^3 x S^2 (Bekkers et al.,
"Fast, expressive SE(n) equivariant networks through weight-sharing in position-orientation
space", ICLR 2024: PΘNITA), as an energy model on the message-passing frame.

Every atom i carries features h[i, k, c] over a fixed grid of K orientations o_k on the sphere
with quadrature weights w_k (sum 1): a Lebedev rule (default; octahedrally symmetric, exact for
spherical polynomials up to a degree) or a Fibonacci lattice (near-uniform, any K, w_k = 1/K).
A point (x_i, o_k) and an atom x_j have the invariants a = o_k . r_ij and
b = |r_ij - a o_k| (r_ij = x_j - x_i); two orientations of one atom have the invariant
o_k . o_l. A layer is a separable group convolution:

    spatial    m[i,k]  = (1/avg) sum_j u(|r_ij|) K(|r_ij|, o_k . r_ij / |r_ij|) * (W h[j,k])
    group      g[i,k]  = sum_l w_l G(o_k . o_l) * m[i,l]
    update     h'[i,k] = h[i,k] + MLP(g[i,k])
    energy     e_i     = MLP_out( sum_k w_k h[i,k] )         (h[i,k] = embedding(Z_i) at the start)

with (* per channel c)

    K_c(r, t) = sum_{n=0..lmax} R_{n,c}(r) P_n(t),   R = MLP(Bessel(r))
    G_c(t)    = sum_{n=0..lmax} v_{n,c} P_n(t)        (a zonal filter; Funk-Hecke: it scales
                                                       the degree-n harmonics by v_n / (2n+1))

P_n Legendre polynomials, u the cutoff envelope. The spatial kernel is a function of the pair's
invariants: (|r|, t = cos angle(o_k, r)) determine (a, b) = (|r| t, |r| sqrt(1 - t^2)) and back;
the kernel uses (|r|, t) because b is not differentiable where r is parallel to o_k. Spatial
messages connect (x_i, o_k) only with (x_j, o_k) and the group convolution mixes orientations
per atom, so a layer costs E K C + N K^2 C instead of E K^2 C for all orientation pairs.
The weights do not depend on the grid: one set of weights can be evaluated on any grid.

Symmetry. On the whole sphere the model is exactly E(3)-invariant: a rotation Q maps h[i](o) to
h[i](Q^T o) and the pooled integral is unchanged. The grid replaces the integrals over S^2
(group convolution, pooling) by quadratures, so rotation (and reflection) invariance is
approximate. Translations, permutations, periodic images, batching, cutoff smoothness and
forces = -dE/dx are exact (to round-off) on any grid.

The trade-off, measured by ``OMP_NUM_THREADS=1 python benchmarks/lifted_invariance.py``
(float64; relative errors under 4 random rotations/reflections, max over an rMD17 ethanol frame
and, for K <= 50, a periodic water_192 frame: energy error |dE| / |interaction energy|, force
error max|dF| / max|F|) and ``--checkpoint`` for weights trained 90 s on rMD17 ethanol (200
frames, K = 50, augment_rotations) evaluated on every grid; time of one energy+forces call,
float32, 1 thread, on a shared 2-core machine (SchNet in the same runs: 1.5-1.9 ms / 54-66 ms):

    grid       K   untrained E / F      90-s trained E / F  ethanol    water_192
    fibonacci  24  3e-03 / 4e-02        9e-02 / 5e-01          9 ms       480 ms
    fibonacci  48  8e-04 / 3e-02        2e-02 / 6e-02         11 ms      1183 ms
    fibonacci  96  2e-04 / 9e-03        6e-03 / 4e-02         16 ms      2202 ms
    lebedev    14  4e-04 / 2e-02        2e-01 / 2e+00          8 ms       237 ms
    lebedev    26  2e-07 / 6e-06        2e-02 / 1e-01          9 ms       405 ms
    lebedev    50  2e-10 / 3e-08        4e-04 / 5e-03         10 ms      1085 ms   (default)
    lebedev    86  6e-14 / 2e-13        2e-05 / 2e-04         13 ms      1869 ms
    lebedev    110 <1e-13               7e-06 / 1e-04         17 ms      2476 ms

Lebedev rules converge far faster than the equal-weight Fibonacci lattice (exponentially vs
about K^-1.5), so they are the default. An untrained network is nearly polynomial on the
sphere and a degree-11 rule (K = 50) integrates it almost exactly; training sharpens the
features over orientations and the error grows by orders of magnitude, so judge a grid on
trained weights (``benchmarks/lifted_invariance.py --checkpoint best.pt``). Cost grows
linearly (messages, E K C) to quadratically (group convolution, N K^2 C) in K. K = 50 keeps the
force error of the briefly trained model at ~5e-3 of the largest force, at ~5x the cost of
SchNet on ethanol and ~20x on dense water; fully trained weights are likely sharper still, so
use K = 86 or 110 where rotation errors matter (long NVE runs, reported forces), and train with
``augment_rotations: true`` so the fit does not single out the grid's axes.
"""
import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from eqff.errors import ConfigError
from eqff.data import keys
from eqff.models.mpnn import MessagePassing, MessagePassingModel
from eqff.nn.mlp import mlp


def fibonacci_sphere(num_points: int) -> Tensor:
    """``num_points`` near-uniform unit vectors [K, 3] (golden-angle spiral; deterministic)."""
    index = torch.arange(num_points, dtype=torch.float64) + 0.5
    z = 1.0 - 2.0 * index / num_points
    radius = torch.sqrt(torch.clamp(1.0 - z * z, min=0.0))
    angle = index * math.pi * (3.0 - math.sqrt(5.0))
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle), z], dim=-1)


# Lebedev rules with positive weights: number of points -> polynomial degree integrated exactly
LEBEDEV_RULES: Dict[int, int] = {6: 3, 14: 5, 26: 7, 38: 9, 50: 11, 86: 15, 110: 17, 146: 19, 170: 21,
                                 194: 23, 302: 29, 350: 31, 434: 35, 590: 41}


def lebedev_sphere(num_points: int) -> Tuple[Tensor, Tensor]:
    """The Lebedev rule with ``num_points`` points: unit vectors [K, 3] and weights [K] that sum
    to 1; it integrates spherical polynomials up to degree ``LEBEDEV_RULES[K]`` exactly."""
    if num_points not in LEBEDEV_RULES:
        raise ConfigError(f"grid 'lebedev' has rules with num_orientations in {sorted(LEBEDEV_RULES)}, "
                          f"not {num_points}; pick one of them or grid 'fibonacci' (any number)")
    try:
        from scipy.integrate import lebedev_rule
    except ImportError as error:
        raise ConfigError("grid 'lebedev' needs scipy >= 1.15 (scipy.integrate.lebedev_rule); "
                          "upgrade scipy or use grid 'fibonacci'") from error
    points, weights = lebedev_rule(LEBEDEV_RULES[num_points])
    return torch.as_tensor(points.T.copy()), torch.as_tensor(weights / weights.sum())


def orientation_grid(grid: str, num_points: int) -> Tuple[Tensor, Tensor]:
    """Orientations [K, 3] (float64) and quadrature weights [K] summing to 1."""
    if grid == "fibonacci":
        if num_points < 1:
            raise ConfigError(f"num_orientations must be at least 1, got {num_points}")
        return fibonacci_sphere(num_points), torch.full((num_points,), 1.0 / num_points, dtype=torch.float64)
    if grid == "lebedev":
        return lebedev_sphere(num_points)
    raise ConfigError(f"grid must be 'lebedev' or 'fibonacci', got {grid!r}")


def legendre(x: Tensor, lmax: int) -> Tensor:
    """P_0(x) .. P_lmax(x) stacked on a new last axis (Bonnet's recursion)."""
    values: List[Tensor] = [torch.ones_like(x), x]
    for n in range(1, lmax):
        values.append(((2 * n + 1) * x * values[n] - n * values[n - 1]) / (n + 1))
    return torch.stack(values[: lmax + 1], dim=-1)


class LiftedInteraction(MessagePassing):
    """Spatial convolution at equal orientations, then a group convolution over the sphere."""

    def __init__(self, features: int, num_basis: int, lmax: int, avg_num_neighbors: float):
        super().__init__(avg_num_neighbors)
        self.features = features
        self.lmax = lmax
        self.radial = mlp([num_basis, features, (lmax + 1) * features])
        self.to_sender = nn.Linear(features, features, bias=False)
        # G_c(t) = sum_n v_nc P_n(t); Funk-Hecke: degree-n harmonics are scaled by v_n / (2n+1),
        # so v_n ~ (2n+1) keeps every degree at unit gain.
        scale = torch.tensor([2.0 * n + 1.0 for n in range(lmax + 1)]).unsqueeze(-1)
        self.fiber_weights = nn.Parameter(scale * torch.randn(lmax + 1, features) / math.sqrt(lmax + 1))
        self.output = mlp([features, features, features])

    def message(self, h: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        angular = graph[keys.ORIENTATION_LEGENDRE]  # [E, K, lmax+1]: P_n(o_k . r_ij / |r_ij|)
        radial = self.radial(graph[keys.EDGE_BASIS]) * graph[keys.EDGE_ENVELOPE].unsqueeze(-1)
        radial = radial.view(radial.shape[0], self.lmax + 1, self.features)
        kernel = torch.einsum("ekn,enc->ekc", angular, radial)
        return kernel * self.to_sender(h)[graph[keys.SENDERS]]  # [E, K, C]

    def update(self, h: Tensor, aggregated: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        fiber = graph[keys.FIBER_LEGENDRE]  # [K, K, lmax+1]: P_n(o_k . o_l) w_l (quadrature weights)
        group_kernel = torch.einsum("kln,nc->ckl", fiber, self.fiber_weights)  # [C, K, K]
        mixed = torch.matmul(group_kernel, aggregated.permute(2, 1, 0)).permute(2, 1, 0)  # [N, K, C]
        return h + self.output(mixed)


class LiftedGroupConv(MessagePassingModel):
    def __init__(self, num_elements: int, cutoff: float, features: int = 32, num_orientations: int = 50,
                 num_layers: int = 3, num_basis: int = 8, lmax: int = 3, grid: str = "lebedev", envelope_p: int = 6,
                 avg_num_neighbors: float = 10.0):
        super().__init__(num_elements, features, cutoff, num_basis, envelope_p)
        if lmax < 1:
            raise ConfigError(f"lmax must be at least 1, got {lmax}")
        self.lmax = lmax
        orientations, weights = orientation_grid(grid, num_orientations)
        # derived from the config: not saved, so a float32 checkpoint loads float64-exact grids
        self.register_buffer("orientations", orientations.to(torch.get_default_dtype()), persistent=False)
        self.register_buffer("weights", weights.to(torch.get_default_dtype()), persistent=False)
        fiber = legendre(orientations @ orientations.T, lmax) * weights.view(1, -1, 1)
        self.register_buffer("fiber_legendre", fiber.to(torch.get_default_dtype()), persistent=False)
        self.layers = nn.ModuleList(
            [LiftedInteraction(features, num_basis, lmax, avg_num_neighbors) for _ in range(num_layers)]
        )
        self.readout = mlp([features, features // 2, 1])

    def attributes(self, graph: Dict[str, Tensor]) -> Dict[str, Tensor]:
        cosines = (graph[keys.EDGE_VECTOR] @ self.orientations.T) / graph[keys.EDGE_LENGTH].unsqueeze(-1)  # [E, K]
        graph[keys.ORIENTATION_LEGENDRE] = legendre(cosines, self.lmax)
        graph[keys.FIBER_LEGENDRE] = self.fiber_legendre
        return graph

    def embed(self, species: Tensor) -> Tensor:
        return self.embedding(species).unsqueeze(1).expand(-1, self.orientations.shape[0], -1)  # [N, K, C]

    def readout_energies(self, h: Tensor, graph: Dict[str, Tensor]) -> Tensor:
        pooled = (h * self.weights.unsqueeze(-1)).sum(dim=1)
        return self.read_out(pooled, graph)

"""Radial bases and the smooth cutoff envelope.

Every edge contribution in every model is multiplied by ``PolynomialEnvelope``, which goes to
zero with its first and second derivatives at the cutoff: energies and forces stay continuous
when an atom crosses the cutoff, and edges beyond it (from a neighbour list with a skin)
contribute exactly nothing.
"""
import math

import torch
from torch import Tensor, nn


class BesselBasis(nn.Module):
    """sqrt(2/rc) sin(n pi r / rc) / r, n = 1..num_basis (DimeNet / NequIP)."""

    def __init__(self, cutoff: float, num_basis: int = 8):
        super().__init__()
        self.cutoff = float(cutoff)
        self.register_buffer("frequencies", torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype()) * math.pi / cutoff)
        self.prefactor = math.sqrt(2.0 / cutoff)

    def forward(self, r: Tensor) -> Tensor:
        r = r.unsqueeze(-1)
        return self.prefactor * torch.sin(self.frequencies * r) / r


class PolynomialEnvelope(nn.Module):
    """u(r) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2), x = r/rc; 0 beyond rc."""

    def __init__(self, cutoff: float, p: int = 6):
        super().__init__()
        self.cutoff = float(cutoff)
        self.p = float(p)

    def forward(self, r: Tensor) -> Tensor:
        p = self.p
        x = r / self.cutoff
        value = (
            1.0
            - (p + 1.0) * (p + 2.0) / 2.0 * torch.pow(x, p)
            + p * (p + 2.0) * torch.pow(x, p + 1.0)
            - p * (p + 1.0) / 2.0 * torch.pow(x, p + 2.0)
        )
        return torch.where(x < 1.0, value, torch.zeros_like(value))

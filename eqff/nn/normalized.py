"""Layers in the normalised parametrisation of e3nn (and MACE): weights N(0, 1), the 1/sqrt(fan_in)
factor applied in the forward pass, activations scaled to unit second moment.

Why it matters for training: Adam moves every weight by about the learning rate per step,
whatever its scale. A weight of size 1/sqrt(fan_in) (PyTorch's default parametrisation) then
changes by a relative ~lr * sqrt(fan_in) per step, 8x more than a weight of size 1 at width 64,
so one learning rate is too large for wide layers and too small for narrow ones. With the
normalised parametrisation the relative step is ~lr at every width, and lr = 0.01 means what it
means in MACE. Measured on rMD17 aspirin: issue 12 in benchmarks/RESULTS.md.
"""
from typing import List

import torch
from e3nn.math import normalize2mom
from torch import Tensor, nn


class NormalizedLinear(nn.Module):
    """y = x W / sqrt(fan_in) (+ b), W ~ N(0, 1): unit-variance inputs give unit-variance outputs.
    Applied to the channels of a steerable block (components in other dimensions) it is
    equivariant when bias-free."""

    def __init__(self, fan_in: int, fan_out: int, bias: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_in, fan_out))
        self.bias = nn.Parameter(torch.zeros(fan_out)) if bias else None
        self.scale = fan_in ** -0.5

    def forward(self, x: Tensor) -> Tensor:
        out = torch.matmul(x, self.weight * self.scale)
        bias = self.bias
        if bias is not None:
            out = out + bias
        return out


class NormalizedSiLU(nn.Module):
    """SiLU times the constant that gives unit second moment on N(0, 1) inputs (e3nn's normalize2mom)."""

    def __init__(self):
        super().__init__()
        self.constant = float(normalize2mom(nn.functional.silu).cst)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.silu(x) * self.constant


def normalized_mlp(sizes: List[int]) -> nn.Sequential:
    """NormalizedLinear -> NormalizedSiLU -> ... -> NormalizedLinear, bias-free (e3nn's
    FullyConnectedNet, MACE's radial network)."""
    layers: List[nn.Module] = []
    for k in range(len(sizes) - 1):
        layers.append(NormalizedLinear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2:
            layers.append(NormalizedSiLU())
    return nn.Sequential(*layers)


class ElementLinear(nn.Module):
    """y_i = x_i W[z_i] / sqrt(fan_in): a linear map per chemical element (MACE's element-dependent
    self-connection), x [N, components, fan_in] -> [N, components, fan_out]."""

    def __init__(self, num_elements: int, fan_in: int, fan_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_in, num_elements, fan_out))
        self.scale = fan_in ** -0.5
        self.fan_out = fan_out

    def forward(self, x: Tensor, species: Tensor) -> Tensor:
        # every element's map in one matmul, then each atom's own: deterministic, unlike a batched
        # product with gathered per-atom matrices (its rounding depended on memory alignment)
        n, d = x.shape[0], x.shape[1]
        every = torch.matmul(x, self.weight.view(self.weight.shape[0], -1) * self.scale).view(n, d, -1, self.fan_out)
        index = species.view(n, 1, 1, 1).expand(n, d, 1, self.fan_out)
        return every.gather(2, index).squeeze(2)

"""Plain multilayer perceptrons and the shifted softplus of SchNet."""
import math
from typing import List

import torch
from torch import Tensor, nn


class ShiftedSoftplus(nn.Module):
    """ln(1 + e^x) - ln 2: smooth, zero at zero (SchNet)."""

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.softplus(x) - math.log(2.0)


def activation(name: str) -> nn.Module:
    table = {"silu": nn.SiLU, "ssp": ShiftedSoftplus, "tanh": nn.Tanh}
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(table)}")
    return table[name]()


def mlp(sizes: List[int], act: str = "silu", bias_last: bool = True) -> nn.Sequential:
    """Linear -> act -> ... -> Linear (no activation after the last layer)."""
    layers: List[nn.Module] = []
    for k in range(len(sizes) - 1):
        last = k == len(sizes) - 2
        layers.append(nn.Linear(sizes[k], sizes[k + 1], bias=bias_last or not last))
        if not last:
            layers.append(activation(act))
    return nn.Sequential(*layers)

"""σ of a prediction from its last-layer features: the part of the last-layer prediction
rigidity (eqff/runtime/llpr.py, which fits it) that runs with the model, TorchScript included.

    σ_E(s) = α_E · sqrt(F_sᵀ A_E F_s)      F_s = Σ_{i in s} f_i        energy σ of structure s (eV)
    σ_i    = α_F · sqrt(f_iᵀ A_F f_i)                                  force σ of atom i (eV/Å)

f_i: the features the potential reports with ``compute_features`` (eqff/models/potential.py);
A_E, A_F: regularised inverse feature covariances of the training set; α: calibration scales.
An empty head (no matrices) is disabled: the exported potential then has no σ.
"""
from typing import Any, Dict, Optional

import torch
from e3nn.util.jit import compile_mode
from torch import Tensor, nn

from eqff.data import keys
from eqff.nn.scatter import scatter_sum

METHOD = "llpr"


@compile_mode("script")
class LastLayerUncertainty(nn.Module):
    def __init__(self, energy_inverse: Optional[Tensor] = None, atom_inverse: Optional[Tensor] = None,
                 energy_scale: float = 1.0, forces_scale: float = 1.0):
        super().__init__()
        self.enabled: bool = energy_inverse is not None and atom_inverse is not None
        empty = torch.zeros((0, 0), dtype=torch.get_default_dtype())
        self.register_buffer("energy_inverse", energy_inverse.clone() if energy_inverse is not None else empty)
        self.register_buffer("atom_inverse", atom_inverse.clone() if atom_inverse is not None else empty.clone())
        self.energy_scale: float = float(energy_scale)  # α_E
        self.uncertainty_scale: float = float(forces_scale)  # α_F (the committee's name for it)

    def forward(self, out: Dict[str, Tensor], batch: Tensor, num_graphs: int, compute_forces: bool) -> Dict[str, Tensor]:
        """Adds ``energy_std`` [B] and, with forces, ``forces_std`` [N] to the potential's ``out``."""
        features = out[keys.NODE_FEATURES]
        structure = scatter_sum(features, batch, num_graphs)
        out[keys.ENERGY_STD] = self.energy_scale * quadratic_form(structure, self.energy_inverse).sqrt()
        if compute_forces:
            out[keys.FORCES_STD] = self.uncertainty_scale * quadratic_form(features, self.atom_inverse).sqrt()
        return out

    @torch.jit.ignore
    def state(self) -> Dict[str, Any]:
        """What a checkpoint stores (``eqff uncertainty``), float64."""
        return {"method": METHOD, "energy_inverse": self.energy_inverse.detach().cpu().double(),
                "atom_inverse": self.atom_inverse.detach().cpu().double(), "energy_scale": self.energy_scale,
                "forces_scale": self.uncertainty_scale}


def quadratic_form(x: Tensor, matrix: Tensor) -> Tensor:
    """xᵀ M x per row of x, clamped at 0 (round-off)."""
    return ((x @ matrix) * x).sum(dim=-1).clamp_min(0.0)


def head_from_state(state: Optional[Dict[str, Any]], dtype: torch.dtype, source: str = "checkpoint") -> LastLayerUncertainty:
    """The head a checkpoint's ``uncertainty`` entry describes, in ``dtype`` (None: a disabled head)."""
    from eqff.errors import ModelFileError

    if state is None:
        return LastLayerUncertainty().to(dtype)
    if state.get("method") != METHOD:
        raise ModelFileError(f"{source}: unknown uncertainty method {state.get('method')!r} (this eqff reads {METHOD!r})")
    return LastLayerUncertainty(state["energy_inverse"].to(dtype), state["atom_inverse"].to(dtype),
                                state["energy_scale"], state["forces_scale"])

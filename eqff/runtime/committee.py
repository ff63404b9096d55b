"""A committee of potentials: their mean as the prediction, their spread as its uncertainty.

    committee = load_model(["a/best.pt", "b/best.pt", "c/best.pt"]).module   # or Committee([...])
    out = committee(batch)   # energy, forces, ... (means) + energy_std [B] eV, forces_std [N] eV/Å

The reference method of the field for uncertainty (MACE, SchNetPack, TorchMD-Net committees):
N independently trained models; where they disagree the potential is guessing. Per structure
``energy_std`` is the standard deviation of the members' energies; per atom ``forces_std`` is
sqrt(mean over members of |F_m - F̄|²) — a length, so it is invariant under rotations while
the forces rotate. Both are multiplied by ``uncertainty_scale``, set by ``calibrate`` so that on
validation frames the mean σ² equals the mean squared error of the mean forces (σ then
estimates the error, not only ranks it).

The members may differ in architecture and cutoff: the batch carries the neighbour list of
the largest cutoff and each member gets the pairs within its own. All must know the elements.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from eqff.data import keys
from eqff.errors import ConfigError
from eqff.nn.geometry import edge_vectors


def _within_cutoff(data: Dict[str, Tensor], cutoff: float) -> Dict[str, Tensor]:
    """``data`` with only the edges shorter than ``cutoff``."""
    x, edge_index, shifts = data[keys.POSITIONS].detach(), data[keys.EDGE_INDEX], data[keys.CELL_SHIFTS]
    vectors = edge_vectors(x, data[keys.CELL].reshape(-1, 3, 3).to(x.dtype), data[keys.BATCH], edge_index,
                           shifts.to(x.dtype))
    keep = (vectors ** 2).sum(dim=1) < cutoff * cutoff
    return {**data, keys.EDGE_INDEX: edge_index[:, keep], keys.CELL_SHIFTS: shifts[keep]}


class Committee(nn.Module):
    def __init__(self, members: Sequence[nn.Module], uncertainty_scale: float = 1.0):
        super().__init__()
        if len(members) < 2:
            raise ConfigError(f"a committee needs at least two models, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.cutoff = max(float(m.cutoff) for m in members)
        known = [set(int(z) for z in m.atomic_numbers.tolist()) for m in members]
        common = sorted(set.intersection(*known))
        if not common:
            raise ConfigError("the committee's models have no element in common")
        self.register_buffer("atomic_numbers", torch.tensor(common, dtype=torch.long))
        self.uncertainty_scale = float(uncertainty_scale)

    def forward(self, data: Dict[str, Tensor], compute_forces: bool = True, compute_stress: bool = False,
                create_graph: bool = False) -> Dict[str, Tensor]:
        outs: List[Dict[str, Tensor]] = []
        for member in self.members:
            member_data = data if float(member.cutoff) >= self.cutoff else _within_cutoff(data, float(member.cutoff))
            outs.append({k: v.detach() for k, v in member(member_data, compute_forces, compute_stress, create_graph).items()})
        out = {key: torch.stack([o[key] for o in outs]).mean(dim=0) for key in outs[0]}
        energies = torch.stack([o[keys.ENERGY] for o in outs])
        out[keys.ENERGY_STD] = energies.std(dim=0, unbiased=False) * self.uncertainty_scale
        if compute_forces:
            spread = torch.stack([o[keys.FORCES] for o in outs]) - out[keys.FORCES]
            out[keys.FORCES_STD] = (spread ** 2).sum(dim=-1).mean(dim=0).sqrt() * self.uncertainty_scale
        return out


def calibrate(committee: Committee, predictions: Sequence[Dict[str, np.ndarray]],
              references: Sequence[Dict[str, np.ndarray]]) -> float:
    """Set ``uncertainty_scale`` so that mean σ_F² = mean |F̄ - F_ref|² over the atoms of the
    given (validation) frames; ``predictions`` made with the current scale. Returns the scale."""
    errors, variances = [], []
    for prediction, reference in zip(predictions, references):
        if reference.get("forces") is None:
            continue
        errors.append(((prediction["forces"] - reference["forces"]) ** 2).sum(axis=1))
        variances.append((prediction["forces_std"] / committee.uncertainty_scale) ** 2)
    if not errors:
        raise ConfigError("calibration needs frames with reference forces")
    committee.uncertainty_scale = float(np.sqrt(np.concatenate(errors).mean() / np.concatenate(variances).mean()))
    return committee.uncertainty_scale


def uncertainty_metrics(predictions: Sequence[Dict[str, np.ndarray]],
                        references: Sequence[Dict[str, np.ndarray]]) -> Dict[str, float]:
    """How well σ tracks the error: Spearman rank correlations of a frame's σ_E with its
    |energy error|, of its mean σ_F with its force MAE, of single atoms' σ_F with |F̄ - F_ref|,
    and the calibration ratios RMS error / RMS σ (1 when calibrated). Frames without reference
    forces count for the energy only."""
    from scipy.stats import spearmanr

    metrics: Dict[str, float] = {}
    pairs = [(p, r) for p, r in zip(predictions, references) if "energy_std" in p]
    if len(pairs) >= 3:
        sigma = np.array([float(p["energy_std"]) for p, _ in pairs])
        error = np.array([abs(float(p["energy"]) - float(r["energy"])) for p, r in pairs])
        metrics["energy_std_mean_meV"] = 1000.0 * float(sigma.mean())
        metrics["spearman_energy_sigma_vs_error"] = float(spearmanr(sigma, error)[0])
        metrics["calibration_energy_rms_error_over_rms_sigma"] = float(np.sqrt((error ** 2).mean() / (sigma ** 2).mean()))
    pairs = [(p, r) for p, r in pairs if r.get("forces") is not None and "forces_std" in p]
    if len(pairs) >= 3:
        atom_sigma = np.concatenate([p["forces_std"] for p, _ in pairs])
        atom_error = np.concatenate([np.linalg.norm(p["forces"] - r["forces"], axis=1) for p, r in pairs])
        frame_sigma = [float(p["forces_std"].mean()) for p, _ in pairs]
        frame_error = [float(np.abs(p["forces"] - r["forces"]).mean()) for p, r in pairs]
        metrics.update({
            "forces_std_mean_meV_per_A": 1000.0 * float(atom_sigma.mean()),
            "spearman_frame_sigma_vs_force_mae": float(spearmanr(frame_sigma, frame_error)[0]),
            "spearman_atom_sigma_vs_force_error": float(spearmanr(atom_sigma, atom_error)[0]),
            "calibration_rms_error_over_rms_sigma": float(np.sqrt((atom_error ** 2).mean() / (atom_sigma ** 2).mean())),
        })
    return metrics

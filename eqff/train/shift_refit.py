"""The closing refit of the per-element energy shift: linear least squares on the training frames.

Why: the loss weighs forces far above energies (100:1 by default, and a frame of N atoms has
3N force labels for one energy), so the network's mean energy level is learned slowly. On
water_192 (192 atoms a frame) the default ace model sat 35-42 meV/atom off for its first ten
epochs while its forces fell from 150 to 43 meV/Å, against a per-atom energy spread of only
3.3 meV in the data. A constant per element leaves the forces and stress untouched, so its best
value given the trained network is a small linear problem, solved here at the end of training:
the per-atom energy residuals of the training frames against their composition (per atom, as the
loss counts them), fitted by least absolute deviations. Absolute, not squared: the error reported
is the MAE, and a few frames far off in energy (the broken-bond structures active learning labels:
aspirin, 2 of 1,160 frames 8-16 eV above the rest) pulled a least-squares shift so far that the
training energy MAE rose, 3.20 -> 3.46 meV/atom; the absolute fit never raises it. With one
composition (a molecule, a water box) only the composition's total is determined; the
minimum-norm solution spreads it.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

import ase.data
import numpy as np
import torch

from eqff.data import keys


def energy_residuals(potential: torch.nn.Module, graphs: Sequence[Dict[str, np.ndarray]], batch_size: int
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """(per-atom composition [frames, elements], per-atom residual E_label - E_model [frames]) of
    the frames with an energy label."""
    from eqff.data.graph import collate
    from eqff.predict import model_device, model_dtype
    from eqff.train.statistics import composition_counts

    labelled = [g for g in graphs if bool(g[keys.HAS_ENERGY])]
    sizes = np.array([len(g[keys.ATOMIC_NUMBERS]) for g in labelled], dtype=np.float64)
    composition = composition_counts([g[keys.ATOMIC_NUMBERS] for g in labelled],
                                     potential.atomic_numbers.tolist()) / sizes[:, None]
    dtype, device = model_dtype(potential), model_device(potential)
    predicted = []
    potential.eval()
    for start in range(0, len(labelled), batch_size):
        batch = collate(labelled[start:start + batch_size], dtype=dtype, device=device)
        with torch.no_grad():
            predicted.append(potential(batch, compute_forces=False, compute_stress=False)[keys.ENERGY].cpu().numpy())
    labels = np.array([float(g[keys.ENERGY]) for g in labelled])
    residual = (labels - np.concatenate(predicted)) / sizes if labelled else np.zeros(0)
    return composition, residual


def least_absolute_deviations(matrix: np.ndarray, target: np.ndarray, iterations: int = 100) -> np.ndarray:
    """The minimum-norm ``x`` that minimises mean |target - matrix @ x| (iteratively reweighted least
    squares from the least-squares solution); never worse than ``x = 0``."""
    best, best_error = np.zeros(matrix.shape[1]), float(np.mean(np.abs(target)))
    x, *_ = np.linalg.lstsq(matrix, target, rcond=None)
    for _ in range(iterations):
        residual = np.abs(target - matrix @ x)
        error = float(np.mean(residual))
        if error < best_error:
            best, best_error = x, error
        weight = 1.0 / np.sqrt(np.maximum(residual, 1e-12))  # squares weighted by 1/|r| sum to |r|
        x, *_ = np.linalg.lstsq(matrix * weight[:, None], target * weight, rcond=None)
    return best


def refit_energy_shift(potential: torch.nn.Module, graphs: Sequence[Dict[str, np.ndarray]], batch_size: int = 16
                       ) -> Dict[str, Any]:
    """Add to ``potential.energy_shift`` the per-element constants that minimise the training
    frames' absolute per-atom energy residuals. Returns the change per element symbol (eV,
    ``shift_eV``) and the training energy MAE (meV/atom) before and after; {} without energies."""
    composition, residual = energy_residuals(potential, graphs, batch_size)
    if not len(residual):
        return {}
    delta = least_absolute_deviations(composition, residual)
    with torch.no_grad():
        potential.energy_shift += torch.as_tensor(delta, dtype=potential.energy_shift.dtype,
                                                  device=potential.energy_shift.device)
    after = residual - composition @ delta
    symbols = [ase.data.chemical_symbols[z] for z in potential.atomic_numbers.tolist()]
    return {"shift_eV": {symbol: float(d) for symbol, d in zip(symbols, delta)},
            "train_energy_mae_before_meV_per_atom": float(np.mean(np.abs(residual)) * 1000.0),
            "train_energy_mae_after_meV_per_atom": float(np.mean(np.abs(after)) * 1000.0)}

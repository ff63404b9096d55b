"""PNG learning curves and parity plots (matplotlib, no display needed)."""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
# Figure objects, not pyplot: drawing a PNG must not change the backend of the caller's process
from matplotlib.figure import Figure


def learning_curves(history: List[Dict[str, float]], path: str) -> None:
    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(13, 3.8))
    axes = fig.subplots(1, 3)
    axes[0].semilogy(epochs, [row["train_loss"] for row in history], label="train")
    axes[0].semilogy(epochs, [row["valid_loss"] for row in history], label="validation (EMA)")
    axes[0].set_ylabel("loss")
    axes[0].legend()
    axes[1].semilogy(epochs, [row["valid_energy_mae_meV_per_atom"] for row in history])
    axes[1].set_ylabel("validation energy MAE (meV/atom)")
    if "valid_forces_mae_meV_per_A" in history[0]:
        axes[2].semilogy(epochs, [row["valid_forces_mae_meV_per_A"] for row in history])
    axes[2].set_ylabel("validation force MAE (meV/Å)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def parity(predicted: Sequence[Dict[str, np.ndarray]], reference: Sequence[Dict[str, np.ndarray]], path: str,
           title: str = "") -> None:
    n_atoms = np.array([r["n_atoms"] for r in reference])
    e_ref = np.array([float(r["energy"]) for r in reference]) / n_atoms
    e_pred = np.array([float(p["energy"]) for p in predicted]) / n_atoms
    with_forces = [k for k, r in enumerate(reference) if r["forces"] is not None]
    fig = Figure(figsize=(9 if with_forces else 4.5, 4.2))
    axes = fig.subplots(1, 2 if with_forces else 1, squeeze=False)
    _panel(axes[0, 0], e_ref, e_pred, "energy (eV/atom)")
    if with_forces:
        f_ref = np.concatenate([reference[k]["forces"].ravel() for k in with_forces])
        f_pred = np.concatenate([predicted[k]["forces"].ravel() for k in with_forces])
        _panel(axes[0, 1], f_ref, f_pred, "force component (eV/Å)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _panel(ax, reference: np.ndarray, predicted: np.ndarray, label: str) -> None:
    low, high = float(min(reference.min(), predicted.min())), float(max(reference.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="grey", lw=1)
    ax.scatter(reference, predicted, s=4, alpha=0.5)
    mae = float(np.mean(np.abs(predicted - reference)))
    ax.set_title(f"MAE {mae * 1000:.2f} m{label.split(' ')[1][1:-1]}")
    ax.set_xlabel(f"DFT {label}")
    ax.set_ylabel(f"model {label}")

"""PNG figures of an active-learning run: σ per round, labelled errors against σ, the summary."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np
# Figure objects, not pyplot: drawing a PNG must not change the backend of the caller's process
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def sigma_histogram(histogram: Dict[str, Any], sigma_threshold: float, path: str, title: str) -> None:
    edges = np.asarray(histogram["edges_eV_per_A"])
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    ax.bar(edges[:-1], histogram["counts"], width=np.diff(edges), align="edge", color="tab:blue", alpha=0.8)
    ax.axvline(sigma_threshold, color="tab:red", lw=1, label=f"sigma_threshold {sigma_threshold:g}")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel("σ: max per-atom force spread (eV/Å)")
    ax.set_ylabel("MD frames")
    ax.set_title(f"{title}\n{histogram['below_lowest_edge']} below the axis, {histogram['above_sigma_stop']} above sigma_stop",
                 fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def error_vs_sigma(pairs: Sequence[Dict[str, float]], path: str, title: str) -> None:
    """Each labelled frame: its predicted σ against its true largest per-atom force error."""
    fig = Figure(figsize=(4.5, 4.2))
    ax = fig.subplots()
    sigma = [p["sigma"] for p in pairs]
    error = [p["force_error_max"] for p in pairs]
    ax.scatter(sigma, error, s=12)
    if pairs:
        high = max(max(sigma), max(error)) * 1.05
        ax.plot([0, high], [0, high], color="grey", lw=1, label="error = σ")
        ax.legend()
    ax.set_xlabel("σ at selection (eV/Å)")
    ax.set_ylabel("max per-atom |F_pred − F_label| (eV/Å)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def summary(rounds: List[Dict[str, Any]], path: str) -> None:
    """Over rounds: the training set, the committee's validation error, σ of the exploration,
    frames added."""
    index = [r["round"] for r in rounds]
    get = lambda key: [r.get(key, np.nan) if r.get(key) is not None else np.nan for r in rounds]
    fig = Figure(figsize=(11, 7))
    axes = fig.subplots(2, 2)
    axes[0, 0].plot(index, get("training_frames"), "o-")
    axes[0, 0].set_ylabel("training frames")
    axes[0, 1].plot(index, get("valid_forces_mae_meV_per_A"), "o-")
    axes[0, 1].set_ylabel("committee validation force MAE (meV/Å)")
    axes[1, 0].semilogy(index, get("sigma_max"), "o-", label="max σ")
    axes[1, 0].semilogy(index, get("sigma_median"), "s--", label="median σ")
    axes[1, 0].set_ylabel("σ over the exploration (eV/Å)")
    axes[1, 0].legend()
    axes[1, 1].bar(index, get("frames_added"))
    axes[1, 1].set_ylabel("frames labelled and added")
    for ax in axes.ravel():
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)

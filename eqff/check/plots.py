"""Plots of ``eqff check``."""
from __future__ import annotations

import ase.data
# Figure objects, not pyplot: drawing a PNG must not change the backend of the caller's process
from matplotlib.figure import Figure


def plot_cutoff_scan(distances, scans, cutoff, path):
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
    for (a, b), (energies, forces) in scans.items():
        label = f"{ase.data.chemical_symbols[a]}-{ase.data.chemical_symbols[b]}"
        axes[0].plot(distances, energies, label=label)
        axes[1].plot(distances, forces, label=label)
    for ax, ylabel in zip(axes, ["E(r) - E(far) (eV)", "force on atom 2, x (eV/Å)"]):
        ax.axvline(cutoff, color="grey", ls="--", lw=1)
        ax.set_xlabel("pair distance (Å)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    fig.suptitle("dimer scan across the cutoff (dashed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_nve(result, path):
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    energies = [1000.0 * (e - result.total_energy_eV[0]) for e in result.total_energy_eV]
    ax.plot(result.times_ps, energies)
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("E_total - E_total(0) (meV)")
    ax.set_title(f"NVE drift {result.drift_meV_per_atom_per_ps:.3g} meV/atom/ps")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_nvt(runs, path):
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    for run in runs:
        ax.plot(run.times_ps, run.temperatures_K, label=f"{run.temperature_K:.0f} K" + ("" if run.completed else " (stopped)"))
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("temperature (K)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_stability(result, path):
    """Largest bond deviation and temperature against time; the 0.5 Å line of the criterion."""
    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2)
    axes[0].plot(result.times_ps, result.deviations_A)
    axes[0].axhline(0.5, color="red", ls="--", lw=1)
    axes[0].set_ylabel("largest |d - d0| of a bond (Å)")
    axes[1].plot(result.times_ps, result.temperatures_K)
    axes[1].set_ylabel("temperature (K)")
    for ax in axes:
        ax.set_xlabel("time (ps)")
    status = "stable" if result.stable else f"unstable at {result.stability_time_ps:.3g} ps"
    fig.suptitle(f"NVT {result.temperature_K:.0f} K, dt {result.timestep_fs} fs: {status}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_rdf(result, path):
    """g(r) of each element pair: the MD run against the reference frames."""
    pairs = list(result.rdf)
    fig = Figure(figsize=(4 * len(pairs), 3.4))
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    for ax, pair in zip(axes, pairs):
        rdf = result.rdf[pair]
        ax.plot(rdf.r_A, rdf.reference, label="reference frames", color="black")
        ax.plot(rdf.r_A, rdf.md, label="MD", color="tab:orange", ls="--")
        ax.set_xlabel("r (Å)")
        ax.set_ylabel(f"g(r) {pair}")
        ax.set_title(f"{pair}: MAE {rdf.mae:.3f}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)

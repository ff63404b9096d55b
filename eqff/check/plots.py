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

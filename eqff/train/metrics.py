"""Error metrics in the units people quote: meV, meV/atom, meV/Å, meV/Å³."""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np


def error_metrics(predicted: Sequence[Dict[str, np.ndarray]], reference: Sequence[Dict[str, np.ndarray]]) -> Dict[str, float]:
    """MAE and RMSE of energy (per structure and per atom), force components and stress
    components; stress keys only when the reference has stress. Each reference dict holds
    ``energy``, ``forces``, optionally ``stress`` (3x3) and ``n_atoms``."""
    n_atoms = np.array([len(r["forces"]) if r.get("forces") is not None else r["n_atoms"] for r in reference])
    e_pred = np.array([float(p["energy"]) for p in predicted])
    e_ref = np.array([float(r["energy"]) for r in reference])
    de = (e_pred - e_ref) * 1000.0
    metrics = {
        "n_structures": int(len(reference)),
        "n_atoms": int(n_atoms.sum()),
        "energy_mae_meV": float(np.mean(np.abs(de))),
        "energy_rmse_meV": float(np.sqrt(np.mean(de ** 2))),
        "energy_mae_meV_per_atom": float(np.mean(np.abs(de / n_atoms))),
        "energy_rmse_meV_per_atom": float(np.sqrt(np.mean((de / n_atoms) ** 2))),
    }
    with_forces = [k for k, r in enumerate(reference) if r.get("forces") is not None]
    if with_forces:
        df = np.concatenate([(predicted[k]["forces"] - reference[k]["forces"]).ravel() for k in with_forces]) * 1000.0
        metrics["forces_mae_meV_per_A"] = float(np.mean(np.abs(df)))
        metrics["forces_rmse_meV_per_A"] = float(np.sqrt(np.mean(df ** 2)))
    with_stress = [k for k, r in enumerate(reference) if r.get("stress") is not None]
    if with_stress:
        ds = np.concatenate([(predicted[k]["stress"] - reference[k]["stress"]).ravel() for k in with_stress]) * 1000.0
        metrics["stress_mae_meV_per_A3"] = float(np.mean(np.abs(ds)))
        metrics["stress_rmse_meV_per_A3"] = float(np.sqrt(np.mean(ds ** 2)))
    return metrics


def format_table(metrics: Dict[str, float], title: str = "") -> str:
    rows: List[str] = [title] if title else []
    rows.append(f"{'structures':>24}: {metrics['n_structures']}   atoms: {metrics['n_atoms']}")
    pairs = [("energy (meV)", "energy_mae_meV", "energy_rmse_meV"),
             ("energy (meV/atom)", "energy_mae_meV_per_atom", "energy_rmse_meV_per_atom"),
             ("forces (meV/Å)", "forces_mae_meV_per_A", "forces_rmse_meV_per_A"),
             ("stress (meV/Å³)", "stress_mae_meV_per_A3", "stress_rmse_meV_per_A3")]
    rows.append(f"{'':>24}  {'MAE':>10} {'RMSE':>10}")
    for label, mae, rmse in pairs:
        if mae in metrics:
            rows.append(f"{label:>24}  {metrics[mae]:>10.3f} {metrics[rmse]:>10.3f}")
    return "\n".join(rows)


def format_group_table(by_group: Dict[str, Dict[str, float]], key: str) -> str:
    """One row per group of structures: MAE of energy per atom, forces and stress."""
    width = max([len("group")] + [len(name) for name in by_group])
    rows = [f"MAE by {key}:", f"  {'group':<{width}} {'structures':>10} {'E (meV/atom)':>13} {'F (meV/Å)':>10} {'S (meV/Å³)':>11}"]
    for name, m in by_group.items():
        cells = [f"{m[k]:.3f}" if k in m else "–" for k in
                 ("energy_mae_meV_per_atom", "forces_mae_meV_per_A", "stress_mae_meV_per_A3")]
        rows.append(f"  {name:<{width}} {m['n_structures']:>10} {cells[0]:>13} {cells[1]:>10} {cells[2]:>11}")
    return "\n".join(rows)

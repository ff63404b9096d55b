"""What each frame contributes to an evaluation: the frames with the largest errors (printed by
``eqff evaluate``) and every prediction beside its reference in one extxyz (``--predictions``),
the way MACE's eval_configs writes them, so a user can see which structures carry the MAE."""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
from ase import Atoms

# the model's numbers; the reference is written as energy/forces/stress (eqff train's default keys),
# whatever keys the input file used
PREFIX = "eqff_"


def frame_errors(predictions: Sequence[Dict[str, np.ndarray]], refs: Sequence[Dict]) -> List[Dict[str, float]]:
    """Per frame: signed energy error (meV/atom) and force MAE (meV/Å, None without reference forces)."""
    rows = []
    for p, r in zip(predictions, refs):
        n = r["n_atoms"]
        forces = None if r["forces"] is None else float(1000.0 * np.abs(p["forces"] - r["forces"]).mean())
        rows.append({"energy_error_meV_per_atom": float(1000.0 * (p["energy"] - r["energy"]) / n),
                     "forces_mae_meV_per_A": forces})
    return rows


def largest_errors(frames: Sequence, predictions, refs, count: int = 5) -> str:
    """The ``count`` frames with the largest energy error per atom, one line each, named by file and index."""
    rows = frame_errors(predictions, refs)
    order = sorted(range(len(rows)), key=lambda i: -abs(rows[i]["energy_error_meV_per_atom"]))[:count]
    lines = [f"frames with the largest energy error per atom (of {len(rows)}):"]
    width = max([len(frames[i].source) for i in order], default=0)
    for i in order:
        forces = rows[i]["forces_mae_meV_per_A"]
        lines.append(f"  {frames[i].source:<{width}}  {frames[i].config_type or '-':>12}  {len(frames[i]):>5} atoms  "
                     f"E {rows[i]['energy_error_meV_per_atom']:+9.2f} meV/atom"
                     + (f"  F MAE {forces:8.1f} meV/Å" if forces is not None else ""))
    return "\n".join(lines)


def prediction_images(frames: Sequence, predictions, refs) -> List[Atoms]:
    """Each frame with its reference labels and the model's as ``eqff_energy`` (eV), ``eqff_forces``
    (eV/Å), ``eqff_stress`` (eV/Å³, 3x3), ``eqff_energy_std`` / ``eqff_forces_std`` where the
    model has an uncertainty, and ``source`` (file:frame)."""
    images = []
    for frame, p, r in zip(frames, predictions, refs):
        atoms = Atoms(numbers=frame.numbers, positions=frame.positions, cell=frame.cell, pbc=frame.pbc)
        atoms.info["source"] = frame.source
        if frame.config_type is not None:
            atoms.info["config_type"] = frame.config_type
        atoms.info["energy"] = r["energy"]
        if r["forces"] is not None:
            atoms.arrays["forces"] = np.asarray(r["forces"], dtype=np.float64)
        if r["stress"] is not None:
            atoms.info["stress"] = np.asarray(r["stress"], dtype=np.float64).reshape(9)
        atoms.info[PREFIX + "energy"] = float(p["energy"])
        atoms.arrays[PREFIX + "forces"] = np.asarray(p["forces"], dtype=np.float64)
        if "stress" in p:
            atoms.info[PREFIX + "stress"] = np.asarray(p["stress"], dtype=np.float64).reshape(9)
        if "energy_std" in p:
            atoms.info[PREFIX + "energy_std"] = float(p["energy_std"])
            atoms.arrays[PREFIX + "forces_std"] = np.asarray(p["forces_std"], dtype=np.float64)
        images.append(atoms)
    return images

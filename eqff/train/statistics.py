"""Per-element reference energies (E0s) and the statistics that set the model's scale and shift."""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Union

import ase.data
import numpy as np

from eqff.data.frames import Frame, read_frames
from eqff.errors import ConfigError, DataError


def e0s_from_isolated_atoms(frames: Sequence[Frame]) -> Dict[int, float]:
    e0s: Dict[int, float] = {}
    for frame in frames:
        if frame.is_isolated_atom and frame.energy is not None:
            e0s[int(frame.numbers[0])] = float(frame.energy)
    return e0s


def composition_counts(numbers: Sequence[Sequence[int]], elements: Sequence[int]) -> np.ndarray:
    """[structures, elements]: how many atoms of each of ``elements`` every structure holds."""
    index = {int(z): k for k, z in enumerate(elements)}
    counts = np.zeros((len(numbers), len(elements)))
    for row, structure in enumerate(numbers):
        for z in structure:
            counts[row, index[int(z)]] += 1
    return counts


def e0s_least_squares(frames: Sequence[Frame], elements: Sequence[int]) -> Dict[int, float]:
    """E0s minimising sum over frames of (E - sum_z n_z E0_z)^2 (minimum-norm when the
    compositions do not determine them, e.g. one molecule: only their sum then matters)."""
    counts = composition_counts([f.numbers for f in frames], elements)
    energies = np.array([f.energy for f in frames], dtype=np.float64)
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return {int(z): float(solution[k]) for k, z in enumerate(elements)}


def resolve_e0s(spec: Union[str, Dict], train_frames: Sequence[Frame], isolated: Sequence[Frame],
                elements: Sequence[int], energy_key: str) -> Dict[int, float]:
    """E0 per element from the config's ``e0s`` (see TrainConfig)."""
    if isinstance(spec, dict):
        e0s = {}
        for element, value in spec.items():
            z = ase.data.atomic_numbers.get(element) if isinstance(element, str) else int(element)
            if z is None:
                raise ConfigError(f"e0s: unknown element {element!r}")
            e0s[int(z)] = float(value)
    elif spec == "auto":
        e0s = e0s_from_isolated_atoms(isolated)
        if not e0s:
            return e0s_least_squares(train_frames, elements)
    elif spec == "least_squares":
        return e0s_least_squares(train_frames, elements)
    elif isinstance(spec, str) and os.path.exists(spec):
        e0s = e0s_from_isolated_atoms(read_frames(spec, energy_key=energy_key, require_forces=False))
        if not e0s:
            raise ConfigError(f"e0s: {spec} holds no isolated-atom frames with energies")
    else:
        raise ConfigError(f"e0s must be 'auto', 'least_squares', a file of isolated atoms or a mapping; got {spec!r}")
    missing = [ase.data.chemical_symbols[z] for z in elements if z not in e0s]
    if missing:
        raise ConfigError(f"e0s: no reference energy for {missing}; add them or use e0s: least_squares")
    return {z: e0s[z] for z in elements}


def energy_residuals_per_atom(frames: Sequence[Frame], e0s: Dict[int, float]) -> np.ndarray:
    """(E - sum of E0s) / atoms of every frame with an energy (eV/atom)."""
    return np.array([(f.energy - sum(e0s[int(z)] for z in f.numbers)) / len(f) for f in frames if f.energy is not None])


def energy_statistics(frames: Sequence[Frame], e0s: Dict[int, float]) -> Dict[str, float]:
    """Mean per-atom energy after E0s (the shift) and force RMS (the scale)."""
    residuals = energy_residuals_per_atom(frames, e0s)
    forces = [f.forces for f in frames if f.forces is not None]
    mean_residual = float(np.mean(residuals)) if len(residuals) else 0.0
    if forces:
        scale = float(np.sqrt(np.mean(np.concatenate(forces) ** 2)))
    else:
        scale = float(np.std(residuals)) if len(residuals) > 1 else 1.0
    if not np.isfinite(scale) or scale <= 1e-8:
        scale = 1.0
    return {"mean_energy_per_atom": mean_residual, "scale": scale}


# The energy term's weight is raised until w_E var(E/atom) >= w_F mean(F^2) / ENERGY_BALANCE.
# 10 keeps the weight tuned on rMD17 (1; issue 12) for the molecular sets, whose force/energy
# variance ratios are 3,300 (ethanol; ~1,000 in a 20-frame piece), 9,900 (aspirin) and 60,000
# (water_192), and gives ~75 for mlearn Mo (ratio 13), where the tuned 1 left energies unlearned:
# 8 minutes of ace gave test 142 meV/atom with weight 1, 46 with 100, 20 with 1000 (forces 134,
# 139, 161 meV/Å; benchmarks/RESULTS.md, "Materials: the energy weight").
ENERGY_BALANCE = 10.0


def auto_energy_weight(frames: Sequence[Frame], e0s: Dict[int, float], forces_weight: float) -> float:
    """The default energy weight for these training frames: max(1, w_F * ENERGY_BALANCE / r),
    r = mean(F^2) / var(E/atom after E0s)."""
    residuals = energy_residuals_per_atom(frames, e0s)
    forces = [f.forces for f in frames if f.forces is not None]
    if len(residuals) < 2 or not forces or forces_weight == 0 or residuals.var() == 0:
        return 1.0
    ratio = float(np.mean(np.concatenate(forces) ** 2) / residuals.var())
    return float(max(1.0, forces_weight * ENERGY_BALANCE / ratio))


# stage_two_at "auto": where the energies are starved (the energy weight from the data is raised
# above the molecular 1: materials), the second stage starts at half the budget, the one
# fraction measured (mlearn Mo, 60 minutes: benchmarks/RESULTS.md, "stage two")
AUTO_STAGE_TWO_AT = 0.5


def auto_stage_two_at(frames: Sequence[Frame], e0s: Dict[int, float], forces_weight: float) -> Optional[float]:
    """The default stage-two start for these training frames: AUTO_STAGE_TWO_AT where
    auto_energy_weight raises the energy weight (per-atom energies spread like the forces),
    None (one stage) otherwise."""
    return AUTO_STAGE_TWO_AT if auto_energy_weight(frames, e0s, forces_weight) > 1.0 else None


def average_num_neighbors(graphs: Sequence[Dict[str, np.ndarray]]) -> float:
    atoms = sum(len(g["atomic_numbers"]) for g in graphs)
    edges = sum(g["edge_index"].shape[1] for g in graphs)
    return max(edges / max(atoms, 1), 1.0)


def elements_of(frames: Sequence[Frame]) -> List[int]:
    return sorted({int(z) for f in frames for z in f.numbers})


def check_labels(frames: Sequence[Frame], forces_weight: float, stress_weight: float, source: str) -> None:
    """A positive weight on a label the data lacks is an error, never a silent zero loss."""
    if forces_weight > 0:
        lacking = [f.source for f in frames if f.forces is None]
        if lacking:
            raise DataError(
                f"{source}: forces_weight is {forces_weight} but {len(lacking)} frame(s) have no forces "
                f"(first: {lacking[0]}); set forces_key to the key the file uses, or forces_weight: 0"
            )
    if stress_weight > 0 and not any(f.stress is not None for f in frames):
        raise DataError(f"{source}: stress_weight is {stress_weight} but no frame has a stress; set stress_weight: 0")

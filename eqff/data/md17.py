"""MD17 and revised MD17 ``.npz`` files (kcal/mol, Å) -> eV, eV/Å frames."""
from __future__ import annotations

import numpy as np

from eqff.errors import DataError
from eqff.units import KCAL_PER_MOL_TO_EV

# (atomic numbers, coordinates, energies, forces) under each variant's names.
_LAYOUTS = {
    "rmd17": ("nuclear_charges", "coords", "energies", "forces"),
    "md17": ("z", "R", "E", "F"),
}


def read_md17_npz(path: str) -> list:
    from eqff.data.frames import Frame

    try:
        data = np.load(path, allow_pickle=False)
    except Exception as error:
        raise DataError(f"{path}: not a readable .npz file ({error})") from error
    for name, (kz, kr, ke, kf) in _LAYOUTS.items():
        if all(k in data.files for k in (kz, kr, ke, kf)):
            break
    else:
        raise DataError(
            f"{path}: not an MD17/rMD17 file; expected keys {_LAYOUTS['rmd17']} or {_LAYOUTS['md17']}, "
            f"found {sorted(data.files)}"
        )
    numbers = np.asarray(data[kz], dtype=np.int64)
    coords = np.asarray(data[kr], dtype=np.float64)
    energies = np.asarray(data[ke], dtype=np.float64).reshape(-1) * KCAL_PER_MOL_TO_EV
    forces = np.asarray(data[kf], dtype=np.float64) * KCAL_PER_MOL_TO_EV
    if coords.ndim != 3 or coords.shape[1:] != (len(numbers), 3) or forces.shape != coords.shape or len(energies) != len(coords):
        raise DataError(
            f"{path}: inconsistent shapes: {kz} {numbers.shape}, {kr} {coords.shape}, {ke} {energies.shape}, {kf} {forces.shape}"
        )
    return [
        Frame(numbers=numbers, positions=coords[k], cell=np.zeros((3, 3)), pbc=np.zeros(3, bool),
              energy=float(energies[k]), forces=forces[k], source=f"{path}: frame {k}")
        for k in range(len(coords))
    ]

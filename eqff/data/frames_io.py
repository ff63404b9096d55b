"""Labelled structure files (eqff learn's rounds, eqff evaluate --predictions): extxyz with
labels under energy/forces/stress, written atomically (a temp file in the same folder, then
``os.replace``), so an interrupted write never leaves a half file that a rerun would read."""
from __future__ import annotations

import os
import tempfile
from typing import List, Sequence

import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress

from eqff.data.frames import Frame


def frame_to_atoms(frame: Frame) -> Atoms:
    """An eqff frame as ASE atoms whose single-point results hold its labels."""
    atoms = frame.to_atoms()
    if frame.config_type is not None:
        atoms.info["config_type"] = frame.config_type
    results = {}
    if frame.energy is not None:
        results["energy"] = float(frame.energy)
    if frame.forces is not None:
        results["forces"] = np.asarray(frame.forces, dtype=np.float64)
    if frame.stress is not None:
        results["stress"] = full_3x3_to_voigt_6_stress(np.asarray(frame.stress, dtype=np.float64))
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def write_atomic(images: Sequence[Atoms], path: str) -> None:
    """Write ``images`` as extxyz to ``path``; the old file (if any) stays until the new one is complete."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path), suffix=".extxyz", dir=folder)
    os.close(handle)
    try:
        ase.io.write(tmp, list(images), format="extxyz")
        with open(tmp, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_images(path: str) -> List[Atoms]:
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return []
    return list(ase.io.read(path, index=":", format="extxyz"))

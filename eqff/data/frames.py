"""Labelled structures (frames) from any file ASE reads, or from MD17/rMD17 ``.npz`` files.

Energies, forces and stress are looked up under configurable keys, in this order: the
single-point calculator ASE attaches (ASE >= 3.23 moves extxyz ``energy``/``forces``/``stress``
there), then ``atoms.info``, then ``atoms.arrays`` (per-atom keys such as ``force`` or
``REF_forces``). Units are ASE's: Å, eV, eV/Å, eV/Å³ (stress with ASE's sign).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Iterable, Optional

import ase.io
import numpy as np
from ase import Atoms
from ase.stress import voigt_6_to_full_3x3_stress

from eqff.data.neighbors import periodic_cell_problem
from eqff.data.stress_conventions import CONVERTERS
from eqff.errors import DataError

ISOLATED_ATOM_TYPES = {"isolatedatom", "isolated_atom", "isolated", "e0"}


@dataclass
class Frame:
    """One structure and its reference labels (None where the file has none)."""

    numbers: np.ndarray  # [N] atomic numbers
    positions: np.ndarray  # [N,3] Å
    cell: np.ndarray  # [3,3] Å (rows are lattice vectors)
    pbc: np.ndarray  # [3] bool
    energy: Optional[float] = None  # eV
    forces: Optional[np.ndarray] = None  # [N,3] eV/Å
    stress: Optional[np.ndarray] = None  # [3,3] eV/Å³, ASE sign
    config_type: Optional[str] = None
    source: str = ""  # "file:frame" for error messages

    def __len__(self) -> int:
        return len(self.numbers)

    @property
    def is_isolated_atom(self) -> bool:
        """A lone atom in vacuum: its energy is a reference energy E0 of its element."""
        if len(self.numbers) != 1:
            return False
        tagged = (self.config_type or "").lower() in ISOLATED_ATOM_TYPES
        return tagged or not bool(np.any(self.pbc))

    @classmethod
    def from_atoms(cls, atoms: Atoms, source: str = "") -> "Frame":
        """A frame without labels (for prediction)."""
        return cls(
            numbers=np.asarray(atoms.numbers, dtype=np.int64),
            positions=np.asarray(atoms.positions, dtype=np.float64),
            cell=np.asarray(atoms.cell.array, dtype=np.float64),
            pbc=np.asarray(atoms.pbc, dtype=bool),
            source=source,
        )

    def to_atoms(self) -> Atoms:
        return Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)


def read_frames(
    path: str | os.PathLike,
    energy_key: str = "energy",
    forces_key: str = "forces",
    stress_key: str = "stress",
    index: str | int | slice = ":",
    require_energy: bool = True,
    require_forces: bool = True,
    format: Optional[str] = None,
    config_type_key: str = "config_type",
) -> list[Frame]:
    """Read labelled frames; a missing required label or a non-finite value is a ``DataError``
    naming the file, the frame index and the key. Isolated-atom frames need no forces.
    ``Frame.config_type`` is the frame's ``atoms.info[config_type_key]`` (None where absent)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if path.endswith(".npz"):
        from eqff.data.md17 import read_md17_npz

        frames = read_md17_npz(path)
        if index != ":":
            frames = frames[index] if isinstance(index, slice) else [frames[int(index)]]
    else:
        _check_text_file_complete(path)
        try:
            images = ase.io.read(path, index=index, format=format)
        except Exception as error:  # ASE raises many types for unreadable files
            raise DataError(
                f"{path}: ASE cannot read this file ({type(error).__name__}: {error}); "
                "check that it is complete and pass format=... if the extension does not say it"
            ) from error
        if isinstance(images, Atoms):
            images = [images]
        frames = [
            _frame_from_atoms(atoms, path, k, energy_key, forces_key, stress_key, config_type_key)
            for k, atoms in enumerate(images)
        ]
    if not frames:
        raise DataError(f"{path}: holds no structures")
    for k, frame in enumerate(frames):
        validate_frame(frame, energy_key, forces_key, stress_key,
                       require_energy, require_forces and not frame.is_isolated_atom)
    return frames


TEXT_FORMATS = (".xyz", ".extxyz")


def _check_text_file_complete(path: str) -> None:
    """A text structure file cut mid-line can still parse, with a shortened last number: refuse
    files that do not end with a newline (how a truncated copy or a killed writer leaves them)."""
    if not path.lower().endswith(TEXT_FORMATS) or os.path.getsize(path) == 0:
        return
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) not in (b"\n", b"\r"):
            raise DataError(f"{path}: does not end with a newline, so its last line may be cut short (a truncated "
                            "copy?); check the file, or add the final newline if it is complete")


def _lookup(atoms: Atoms, key: str, per_atom: bool) -> Optional[np.ndarray]:
    calc = atoms.calc
    if calc is not None and key in getattr(calc, "results", {}):
        return np.asarray(calc.results[key], dtype=np.float64)
    if key in atoms.info:
        return np.asarray(atoms.info[key], dtype=np.float64)
    if per_atom and key in atoms.arrays:
        return np.asarray(atoms.arrays[key], dtype=np.float64)
    return None


def _frame_from_atoms(atoms: Atoms, path: str, k: int, energy_key: str, forces_key: str, stress_key: str,
                      config_type_key: str = "config_type") -> Frame:
    where = f"{path}: frame {k}"
    energy = _lookup(atoms, energy_key, per_atom=False)
    if energy is not None and energy.size != 1:
        raise DataError(f"{where}: key '{energy_key}' should be one number (total energy, eV), has shape {energy.shape}")
    forces = _lookup(atoms, forces_key, per_atom=True)
    if forces is not None and forces.shape != (len(atoms), 3):
        raise DataError(f"{where}: key '{forces_key}' has shape {forces.shape}, expected ({len(atoms)}, 3)")
    stress = _stress(atoms, stress_key, where)
    config_type = atoms.info.get(config_type_key)
    return Frame(
        numbers=np.asarray(atoms.numbers, dtype=np.int64),
        positions=np.asarray(atoms.positions, dtype=np.float64),
        cell=np.asarray(atoms.cell.array, dtype=np.float64),
        pbc=np.asarray(atoms.pbc, dtype=bool),
        energy=None if energy is None else float(energy.reshape(())),
        forces=forces,
        stress=stress,
        config_type=None if config_type is None else str(config_type),
        source=where,
    )


def _stress(atoms: Atoms, key: str, where: str) -> Optional[np.ndarray]:
    """The stress label [3,3] in ASE's convention; keys of other conventions are converted
    (eqff.data.stress_conventions), also when the default key "stress" is missing."""
    value = _lookup(atoms, key, per_atom=False)
    if value is not None:
        convert = CONVERTERS.get(key)
        return convert(value, where) if convert else _stress_3x3(value, f"{where}: key '{key}'")
    if key == "stress":
        for raw_key, convert in CONVERTERS.items():
            value = _lookup(atoms, raw_key, per_atom=False)
            if value is not None:
                return convert(value, where)
    return None


def _stress_3x3(value: np.ndarray, where: str) -> np.ndarray:
    if value.shape == (6,):
        return voigt_6_to_full_3x3_stress(value)
    if value.shape in ((3, 3), (9,)):
        return value.reshape(3, 3)
    raise DataError(f"{where} has shape {value.shape}; expected 6 (Voigt), 9 or 3x3 (eV/Å³)")


def validate_frame(frame: Frame, energy_key: str = "energy", forces_key: str = "forces",
                   stress_key: str = "stress", require_energy: bool = True, require_forces: bool = True) -> None:
    """Raise ``DataError`` (naming file, frame, key and atom) for missing or non-finite data."""
    where = frame.source or "structure"
    if len(frame.numbers) == 0:
        raise DataError(f"{where}: the structure has no atoms")
    if np.any(frame.numbers <= 0) or np.any(frame.numbers > 118):
        bad = int(np.flatnonzero((frame.numbers <= 0) | (frame.numbers > 118))[0])
        raise DataError(f"{where}: atom {bad} has atomic number {frame.numbers[bad]}, not a chemical element")
    _finite(frame.positions, where, "positions", "atom")
    _finite(frame.cell, where, "cell", "lattice vector")
    if frame.positions.shape != (len(frame.numbers), 3):
        raise DataError(f"{where}: positions have shape {frame.positions.shape}, expected ({len(frame.numbers)}, 3)")
    problem = periodic_cell_problem(frame.cell, frame.pbc) if np.any(frame.pbc) else None
    if problem is not None:
        raise DataError(f"{where}: {problem}")
    if require_energy and frame.energy is None:
        raise DataError(f"{where}: no energy under key '{energy_key}'; pass energy_key=... naming the key the file uses")
    if require_forces and frame.forces is None:
        raise DataError(f"{where}: no forces under key '{forces_key}'; pass forces_key=... naming the key the file uses")
    if frame.energy is not None and not np.isfinite(frame.energy):
        raise DataError(f"{where}: key '{energy_key}' is {frame.energy}; remove the frame or fix the value")
    if frame.forces is not None:
        _finite(frame.forces, where, forces_key, "atom")
    if frame.stress is not None:
        _finite(frame.stress, where, stress_key, "row")


def _finite(values: np.ndarray, where: str, key: str, noun: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise DataError(f"{where}: key '{key}' has a non-finite value at {noun} {row}; remove the frame or fix the value")


def frames_hash(frames: Iterable[Frame]) -> str:
    """A short SHA-256 over structures and labels, to identify the training data of a model."""
    digest = hashlib.sha256()
    for frame in frames:
        for array in (frame.numbers, frame.positions, frame.cell, frame.pbc):
            digest.update(np.ascontiguousarray(array).tobytes())
        for label in (frame.energy, frame.forces, frame.stress):
            if label is not None:
                digest.update(np.ascontiguousarray(np.asarray(label, dtype=np.float64)).tobytes())
    return digest.hexdigest()[:16]

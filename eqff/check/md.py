"""Short MD runs that test a potential in use: NVE energy drift and NVT stability."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation

try:  # ASE >= 3.29
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase.neighborlist import natural_cutoffs, neighbor_list


@dataclass
class NVEResult:
    drift_meV_per_atom_per_ps: float  # slope of the total energy, per atom
    fluctuation_meV_per_atom: float  # RMS of the total energy about its linear fit
    times_ps: List[float] = field(default_factory=list)
    total_energy_eV: List[float] = field(default_factory=list)
    steps_per_second: float = 0.0


CLOSEST_PAIR_SEARCH_A = 3.0  # Å; a run with no pair this close reports the closest pair as nan


@dataclass
class NVTResult:
    temperature_K: float
    completed: bool  # False if stopped early by a blow-up
    max_force_eV_per_A: float
    max_bond_stretch: float  # largest (bond length / initial bond length) over the run
    min_distance_A: float
    reason: str = ""
    times_ps: List[float] = field(default_factory=list)
    temperatures_K: List[float] = field(default_factory=list)


def _start(atoms: Atoms, calculator, temperature: float, seed: int) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = calculator
    thermalize_momenta(atoms, temperature_K=temperature, rng=np.random.default_rng(seed))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    return atoms


def nve_drift(atoms: Atoms, calculator, picoseconds: float = 2.0, timestep_fs: float = 0.5,
              temperature: float = 300.0, seed: int = 0, samples: int = 200,
              trajectory: Optional[str] = None) -> NVEResult:
    """Velocity Verlet from Maxwell-Boltzmann velocities; drift is the slope of E_total(t).
    ``trajectory``: also write the sampled frames to this ASE trajectory file."""
    import time

    atoms = _start(atoms, calculator, temperature, seed)
    steps = max(int(round(picoseconds * 1000.0 / timestep_fs)), 2)
    interval = max(steps // samples, 1)
    dyn = VelocityVerlet(atoms, timestep_fs * units.fs, trajectory=trajectory, loginterval=interval)
    times, energies = [], []

    def record():
        times.append(dyn.nsteps * timestep_fs / 1000.0)
        energies.append(atoms.get_potential_energy() + atoms.get_kinetic_energy())

    dyn.attach(record, interval=interval)
    start = time.perf_counter()
    dyn.run(steps)
    elapsed = time.perf_counter() - start
    t, e = np.array(times), np.array(energies)
    slope, intercept = np.polyfit(t, e, 1)
    residual = e - (slope * t + intercept)
    n = len(atoms)
    return NVEResult(float(abs(slope) * 1000.0 / n), float(np.sqrt(np.mean(residual ** 2)) * 1000.0 / n),
                     t.tolist(), e.tolist(), steps / elapsed)


def bonds_of(atoms: Atoms, factor: float = 1.2):
    """Covalent bonds at the start: pairs closer than factor x the sum of covalent radii."""
    i, j, d = neighbor_list("ijd", atoms, [c * factor for c in natural_cutoffs(atoms)])
    keep = i < j
    return i[keep], j[keep], d[keep]


def nvt_stability(atoms: Atoms, calculator, temperature: float, picoseconds: float = 1.0,
                  timestep_fs: float = 0.5, friction_per_fs: float = 0.01, seed: int = 0,
                  max_force: float = 50.0, max_stretch: float = 1.6, min_distance: float = 0.5,
                  samples: int = 100) -> NVTResult:
    """Langevin NVT; stops early (completed=False) on exploding forces, broken bonds or collapse."""
    atoms = _start(atoms, calculator, temperature, seed)
    bond_i, bond_j, bond_d0 = bonds_of(atoms)
    steps = max(int(round(picoseconds * 1000.0 / timestep_fs)), 2)
    interval = max(steps // samples, 1)
    dyn = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature, friction=friction_per_fs / units.fs,
                   rng=np.random.default_rng(seed + 1), fixcm=False)
    result = NVTResult(temperature, True, 0.0, 1.0, np.inf)

    class Blowup(Exception):
        pass

    def watch():
        reason = watch_step(atoms, atoms.get_forces(), (bond_i, bond_j, bond_d0), result, max_force, max_stretch,
                            min_distance)
        result.times_ps.append(dyn.nsteps * timestep_fs / 1000.0)
        result.temperatures_K.append(float(atoms.get_temperature()))
        if reason is not None:
            raise Blowup(reason)

    dyn.attach(watch, interval=interval)
    try:
        dyn.run(steps)
    except Blowup as error:
        result.completed = False
        result.reason = str(error)
    if result.min_distance_A == np.inf:
        result.min_distance_A = float("nan")
    return result


def watch_step(atoms: Atoms, forces: np.ndarray, bonds, extremes, max_force: float, max_stretch: float,
               min_distance: float) -> Optional[str]:
    """One look at an MD configuration (ASE here, OpenMM in potentials/stability.py): update the
    running extremes of ``extremes`` (max_force_eV_per_A, max_bond_stretch, min_distance_A) and
    return the first limit broken, as a sentence, or None. ``bonds``: ``bonds_of`` at the start."""
    extremes.max_force_eV_per_A = max(extremes.max_force_eV_per_A, float(np.abs(forces).max()))
    bond_i, bond_j, bond_d0 = bonds
    stretched = ""
    if len(bond_i):
        lengths = np.linalg.norm(_mic_vectors(atoms, bond_i, bond_j), axis=1)
        worst = int(np.argmax(lengths / bond_d0))
        if lengths[worst] / bond_d0[worst] > max_stretch:
            stretched = describe_broken_bond(atoms, int(bond_i[worst]), int(bond_j[worst]), float(lengths[worst]))
        extremes.max_bond_stretch = max(extremes.max_bond_stretch, float(lengths[worst] / bond_d0[worst]))
    if len(atoms) > 1:
        # searched wider than the limit so that the report gives the real closest pair, also in
        # metals (~2.7 Å), where nothing comes within twice the limit
        _, _, d = neighbor_list("ijd", atoms, max(min_distance * 2, CLOSEST_PAIR_SEARCH_A))
        if len(d):
            extremes.min_distance_A = min(extremes.min_distance_A, float(d.min()))
    if not np.all(np.isfinite(forces)) or extremes.max_force_eV_per_A > max_force:
        return f"force {extremes.max_force_eV_per_A:.1f} eV/Å above {max_force}"
    if extremes.max_bond_stretch > max_stretch:
        return f"a bond stretched to {extremes.max_bond_stretch:.2f}x its initial length" + (f" ({stretched})" if stretched else "")
    if extremes.min_distance_A < min_distance:
        return f"two atoms came within {extremes.min_distance_A:.2f} Å"
    return None


def describe_broken_bond(atoms: Atoms, i: int, j: int, length: float) -> str:
    """Which bond broke and where its lighter atom went, e.g. "O57-H121 at 1.78 Å; H121 is now
    0.87 Å from O29": a proton moving to a neighbour reads differently from an atom flying off."""
    symbols = atoms.get_chemical_symbols()
    light, heavy = (i, j) if atoms.numbers[i] <= atoms.numbers[j] else (j, i)
    text = f"{symbols[heavy]}{heavy}-{symbols[light]}{light} at {length:.2f} Å"
    others = [k for k in range(len(atoms)) if k not in (light, heavy)]
    if others:
        distances = atoms.get_distances(light, others, mic=bool(atoms.pbc.any()))
        nearest = int(np.argmin(distances))
        text += f"; {symbols[light]}{light} is now {distances[nearest]:.2f} Å from {symbols[others[nearest]]}{others[nearest]}"
    return text


def _mic_vectors(atoms: Atoms, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    from ase.geometry import find_mic

    vectors = atoms.positions[j] - atoms.positions[i]
    if atoms.pbc.any():
        vectors, _ = find_mic(vectors, atoms.cell, atoms.pbc)
    return vectors

"""Exploration: Langevin MD driven by the potential being learned, watching its uncertainty.

The calculator is any ASE calculator whose results carry ``forces_std`` ([N] eV/Å per atom; a
committee's ``eqff.EqffCalculator([...])`` does, and any other uncertainty source that sets
the same key drops in). Each step's σ is the largest per-atom ``forces_std``. A trajectory
stops early when σ exceeds ``sigma_stop``: past that point the potential is extrapolating
wildly and the MD no longer samples anything physical. It stops too when two atoms come closer
than the training frames ever put them (eqff/learn/contacts.py), where σ is no guide.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation

try:  # ASE >= 3.29
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

from eqff.errors import ConfigError, EqffError
from eqff.learn.contacts import ContactFloor
from eqff.learn.select import Candidate, is_candidate


@dataclass
class Trajectory:
    start: int  # index of the start structure
    temperature_K: float
    stop_reason: str = "completed"
    sigma: List[float] = field(default_factory=list)  # σ at steps 0, 1, ... (eV/Å)
    candidates: List[Candidate] = field(default_factory=list)
    # the latest frame (after step 0) still inside sigma_stop and the contact floor, whatever its σ:
    # for a lost trajectory, the structure just before the potential failed
    last_sound: Optional[Candidate] = None

    @property
    def lost(self) -> bool:
        return self.stop_reason != "completed"

    def summary(self) -> dict:
        return {"start": self.start, "temperature_K": self.temperature_K, "steps_run": max(len(self.sigma) - 1, 0),
                "stop_reason": self.stop_reason, "sigma_max": max(self.sigma, default=0.0),
                "candidates": len(self.candidates)}


class _Lost(Exception):
    """σ went above sigma_stop, or two atoms came closer than the contact floor."""


def frame_sigma(calculator) -> np.ndarray:
    """The per-atom σ of the calculator's last results, or a ``ConfigError`` saying what is missing."""
    value = calculator.results.get("forces_std")
    if value is None:
        raise ConfigError(f"the exploration calculator ({type(calculator).__name__}) puts no 'forces_std' in its "
                          "results: use a committee (eqff.EqffCalculator with a list of models) or another "
                          "uncertainty source that sets results['forces_std'] (eV/Å per atom)")
    return np.asarray(value, dtype=np.float64)


def run_trajectory(calculator, start: Atoms, start_index: int, trajectory: int, temperature: float, steps: int,
                   timestep_fs: float, friction_per_fs: float, sigma_threshold: float, sigma_stop: float,
                   seed: int, contacts: Optional[ContactFloor] = None) -> Trajectory:
    atoms = Atoms(numbers=start.numbers, positions=start.positions, cell=start.cell, pbc=start.pbc)
    atoms.calc = calculator
    thermalize_momenta(atoms, temperature_K=temperature, rng=np.random.default_rng(seed))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    result = Trajectory(start_index, float(temperature))
    dyn = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature, friction=friction_per_fs / units.fs,
                   rng=np.random.default_rng(seed + 1), fixcm=False)

    def look() -> None:
        forces = atoms.get_forces()  # computed already by the MD step: read from the calculator's cache
        forces_std = frame_sigma(atoms.calc)
        sigma = float(forces_std.max())
        result.sigma.append(sigma)
        too_close = contacts.violation(atoms) if contacts is not None else None
        if too_close:
            raise _Lost(f"{too_close} at step {dyn.nsteps}")
        if sigma > sigma_stop:
            raise _Lost(f"σ {sigma:.3g} eV/Å > sigma_stop at step {dyn.nsteps}")
        if dyn.nsteps == 0:  # the start structure (a training frame, unless start_file is given): not relabelled
            return
        structure = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        frame = Candidate(structure, sigma, trajectory, dyn.nsteps, np.array(forces), forces_std.copy())
        result.last_sound = frame
        if is_candidate(sigma, sigma_threshold, sigma_stop):
            result.candidates.append(frame)

    dyn.attach(look, interval=1)
    try:
        dyn.run(steps)
    except _Lost as lost:
        result.stop_reason = str(lost)
    except ConfigError:  # a calculator without σ: nothing to explore with
        raise
    except EqffError as error:  # e.g. atoms pushed onto each other: the potential is lost too
        result.stop_reason = f"stopped at step {dyn.nsteps}: {error}"
    return result


def explore(calculator, starts: Sequence[Atoms], temperatures: Sequence[float], steps: int, timestep_fs: float,
            friction_per_fs: float, sigma_threshold: float, sigma_stop: float, seed: int,
            log: Callable[[str], None] = print, contacts: Optional[ContactFloor] = None) -> List[Trajectory]:
    """One trajectory per start structure and temperature, in that order."""
    trajectories = []
    for s, start in enumerate(starts):
        for temperature in temperatures:
            k = len(trajectories)
            trajectory = run_trajectory(calculator, start, s, k, temperature, steps, timestep_fs, friction_per_fs,
                                        sigma_threshold, sigma_stop, seed + 1000 * k, contacts)
            summary = trajectory.summary()
            log(f"  trajectory {k} (start {s}, {temperature:g} K): {summary['steps_run']} steps, σ max "
                f"{summary['sigma_max']:.3g} eV/Å, {summary['candidates']} candidate(s); {trajectory.stop_reason}")
            trajectories.append(trajectory)
    return trajectories


def sigma_histogram(sigmas: Sequence[float], sigma_threshold: float, sigma_stop: float, bins: int = 24) -> dict:
    """Counts of σ in log-spaced bins from sigma_threshold/100 to sigma_stop (σ spans decades:
    converged regions sit far below the threshold, lost ones far above), and the counts outside."""
    values = np.asarray(sigmas, dtype=np.float64)
    edges = np.geomspace(sigma_threshold / 100.0, sigma_stop, bins + 1)
    counts, _ = np.histogram(values, bins=edges)
    return {"edges_eV_per_A": edges.tolist(), "counts": counts.tolist(), "below_lowest_edge": int((values < edges[0]).sum()),
            "above_sigma_stop": int((values > sigma_stop).sum())}

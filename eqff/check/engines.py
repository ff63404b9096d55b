"""Langevin NVT for the stability protocol, in ASE or in OpenMM, behind one small interface.

Both start from the same Maxwell-Boltzmann velocities (``eqff.check.md._start``), step in
blocks, show the current configuration as an ``ase.Atoms`` in the caller's atom order, and
hand out / take back their full state, so that a run of hours can stop and resume:

* ``AseLangevin``: ``ase.md.langevin.Langevin`` with any ASE calculator. Its state includes the
  random generator's, so a resumed run continues with the very numbers it would have drawn.
* ``OpenMMLangevin``: ``openmm.LangevinMiddleIntegrator`` with the eqff force (TorchForce when
  openmmtorch works, else PythonForce) on the CPU platform: the engine of a user's production MD.
  OpenMM cannot hand out its random state; a resumed run reseeds the thermostat noise from the
  seed and the step count, which changes the trajectory but not its statistics.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np
from ase import Atoms, units

from eqff.calculators.openmm_steps import fast_steps
from eqff.check.md import _start
from eqff.units import ASE_VELOCITY_TO_NM_PER_PS, BOLTZMANN_KJ_PER_MOL_K

ENGINES = ("ase", "openmm")


class AseLangevin:
    def __init__(self, atoms: Atoms, calculator, temperature: float, timestep_fs: float, friction_per_fs: float,
                 seed: int):
        from ase.md.langevin import Langevin

        self.atoms = _start(atoms, calculator, temperature, seed)
        self.dynamics = Langevin(self.atoms, timestep_fs * units.fs, temperature_K=temperature,
                                 friction=friction_per_fs / units.fs, rng=np.random.default_rng(seed + 1), fixcm=False)

    @property
    def nsteps(self) -> int:
        return int(self.dynamics.nsteps)

    def step(self, n: int) -> None:
        self.dynamics.run(n)

    def frame(self) -> Atoms:
        return self.atoms

    def temperature(self) -> float:
        return float(self.atoms.get_temperature())

    def state(self) -> Dict[str, Any]:
        return {"nsteps": self.nsteps, "positions": self.atoms.positions.tolist(),
                "momenta": self.atoms.get_momenta().tolist(), "rng": self.dynamics.rng.bit_generator.state}

    def restore(self, state: Dict[str, Any]) -> None:
        self.atoms.positions = np.asarray(state["positions"], dtype=float)
        self.atoms.set_momenta(np.asarray(state["momenta"], dtype=float))
        self.dynamics.rng.bit_generator.state = state["rng"]
        self.dynamics.nsteps = int(state["nsteps"])


class OpenMMLangevin:
    def __init__(self, atoms: Atoms, model, temperature: float, timestep_fs: float, friction_per_fs: float, seed: int,
                 threads: Optional[int] = None, restart_at: int = 0):
        """``model``: any model eqff.runtime loads (a path). ``restart_at``: the step count of
        the state that will be restored (it only changes the thermostat's noise seed)."""
        import openmm
        from openmm import unit

        from eqff.calculators.openmm_system import system_from_atoms

        start = _start(atoms, None, temperature, seed)
        self.setup = system_from_atoms(start, model, implementation="auto", threads=threads)
        integrator = openmm.LangevinMiddleIntegrator(temperature * unit.kelvin, friction_per_fs * 1000.0 / unit.picosecond,
                                                     timestep_fs * unit.femtosecond)
        integrator.setRandomNumberSeed(seed + 1 + restart_at)  # 0 would mean "pick one at random"
        self.simulation = self.setup.simulation(integrator, platform="CPU")
        order = self.setup.order
        self.simulation.context.setVelocities(start.get_velocities()[order] * ASE_VELOCITY_TO_NM_PER_PS)
        self.atoms = start
        self.atoms.calc = None
        self._state = None

    @property
    def nsteps(self) -> int:
        return int(self.simulation.currentStep)

    def step(self, n: int) -> None:
        with fast_steps(self.simulation):
            self.simulation.step(n)
        self._state = None

    def _current(self):
        if self._state is None:
            self._state = self.simulation.context.getState(getPositions=True, getVelocities=True, getEnergy=True)
        return self._state

    def frame(self) -> Atoms:
        from openmm import unit

        positions = self._current().getPositions(asNumpy=True).value_in_unit(unit.angstrom)
        self.atoms.positions = self.setup.in_atoms_order(positions)
        return self.atoms

    def temperature(self) -> float:
        from openmm import unit

        kinetic = self._current().getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        # no constraints and no CMMotionRemover in this System: all 3N degrees of freedom are thermalised
        return float(2.0 * kinetic / (3 * len(self.atoms) * BOLTZMANN_KJ_PER_MOL_K))

    def state(self) -> Dict[str, Any]:
        from openmm import unit

        current = self._current()
        return {"nsteps": self.nsteps,
                "positions_nm": current.getPositions(asNumpy=True).value_in_unit(unit.nanometer).tolist(),
                "velocities_nm_per_ps": current.getVelocities(asNumpy=True).value_in_unit(
                    unit.nanometer / unit.picosecond).tolist()}

    def restore(self, state: Dict[str, Any]) -> None:
        context = self.simulation.context
        context.setPositions(np.asarray(state["positions_nm"]))
        context.setVelocities(np.asarray(state["velocities_nm_per_ps"]))
        self.simulation.currentStep = int(state["nsteps"])
        self._state = None

"""The uncertainty of an OpenMM simulation's learned forces, as a reporter.

    reporter = eqff.openmm.UncertaintyReporter("best_llpr.pt", topology, "sigma.csv", 100)
    simulation.reporters.append(reporter)

Every ``report_interval`` steps it evaluates the ML atoms' current positions with a model that
has an uncertainty — a checkpoint from ``eqff uncertainty`` (one model, last-layer σ) or a list
of models (a committee) — and writes one CSV row: step, time (ps), energy σ (eV), the largest
and the mean per-atom force σ (eV/Å) and the atom (index in the System) with the largest σ.
The System's own force (TorchForce or PythonForce, any model) is not touched: the reporter is
an observer, so its cost is paid only every ``report_interval`` steps. ``stop_above`` (eV/Å)
raises ``UncertaintyExceeded`` when the largest σ passes it: the run leaves what the potential
knows (the active-learning loop, ``eqff learn``, labels such frames).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from eqff.errors import ConfigError, EqffError
from eqff.units import NM_TO_ANGSTROM

COLUMNS = ("step", "time_ps", "energy_std_eV", "forces_std_max_eV_per_A", "forces_std_mean_eV_per_A", "atom_of_max")


class UncertaintyExceeded(EqffError, RuntimeError):
    """The largest per-atom force σ passed ``stop_above``."""


class UncertaintyReporter:
    def __init__(self, model: Any, topology: Any, file: Optional[str], report_interval: int,
                 atoms: Optional[Sequence[int]] = None, periodic: Optional[bool] = None,
                 stop_above: Optional[float] = None, **calculator_options: Any):
        """``topology``, ``atoms`` (the ML atoms; None: all) and ``periodic`` as for
        ``eqff.openmm.python_force``; ``calculator_options`` go to ``EqffCalculator``."""
        from eqff.calculators.ase import EqffCalculator
        from eqff.calculators.openmm_forces import ml_atoms, system_atomic_numbers, topology_is_periodic
        from eqff.runtime.inputs import check_elements

        self.calculator = EqffCalculator(model, **calculator_options)
        if not self.calculator.has_uncertainty:
            raise ConfigError(f"{model}: this model gives no uncertainty; use a checkpoint from `eqff uncertainty` or "
                              "a list of models (a committee)")
        numbers = np.asarray(system_atomic_numbers(topology), dtype=int)
        indices = ml_atoms(atoms, len(numbers))
        self.indices = np.arange(len(numbers)) if indices is None else np.asarray(indices, dtype=int)
        self.numbers = numbers[self.indices]
        check_elements(self.numbers.tolist(), self.calculator.known_numbers, "ML atoms", index=indices)
        self.periodic = topology_is_periodic(topology) if periodic is None else bool(periodic)
        self.interval = int(report_interval)
        self.stop_above = stop_above
        self.rows: List[Dict[str, float]] = []
        self.file = file
        if file is not None:
            folder = os.path.dirname(os.path.abspath(file))
            os.makedirs(folder, exist_ok=True)
            with open(file, "w") as handle:
                handle.write(",".join(COLUMNS) + "\n")

    def describeNextReport(self, simulation):  # noqa: N802 (OpenMM's reporter interface)
        steps = self.interval - simulation.currentStep % self.interval
        return {"steps": steps, "periodic": None, "include": ["positions"]}

    def report(self, simulation, state) -> None:
        from ase import Atoms

        positions = np.asarray(state.getPositions(asNumpy=True)._value)[self.indices] * NM_TO_ANGSTROM
        cell = (np.asarray(state.getPeriodicBoxVectors(asNumpy=True)._value) * NM_TO_ANGSTROM if self.periodic
                else np.zeros((3, 3)))
        atoms = Atoms(numbers=self.numbers, positions=positions, cell=cell, pbc=self.periodic)
        atoms.calc = self.calculator
        atoms.get_forces()
        sigma = self.calculator.results["forces_std"]
        worst = int(np.argmax(sigma))
        row = {"step": simulation.currentStep, "time_ps": state.getTime()._value,
               "energy_std_eV": float(self.calculator.results["energy_std"]), "forces_std_max_eV_per_A": float(sigma[worst]),
               "forces_std_mean_eV_per_A": float(sigma.mean()), "atom_of_max": int(self.indices[worst])}
        self.rows.append(row)
        if self.file is not None:
            with open(self.file, "a") as handle:
                handle.write(",".join(f"{row[c]:.6g}" if isinstance(row[c], float) else str(row[c]) for c in COLUMNS)
                             + "\n")
        if self.stop_above is not None and row["forces_std_max_eV_per_A"] > self.stop_above:
            raise UncertaintyExceeded(
                f"step {row['step']}: force σ {row['forces_std_max_eV_per_A']:.3g} eV/Å on atom {row['atom_of_max']} "
                f"passed stop_above {self.stop_above:g}: the simulation left what the potential knows")

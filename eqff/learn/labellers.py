"""Labellers: what gives a selected frame its reference energy and forces (DFT; EMT in tests).

A labeller is named in the config as ``"module:factory"``: ``factory(**labeller_kwargs)`` returns
an ASE calculator (``"ase.calculators.emt:EMT"``, ``"my_dft:make_vasp"``). ``"pyscf"`` is the
built-in molecular one (eqff/learn/pyscf_labeller.py).
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, Optional

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from eqff.errors import ConfigError, EqffError

BUILTIN = {"pyscf": "eqff.learn.pyscf_labeller:PySCFCalculator"}
# built-in labellers with their own thread pool (PySCF's OpenMP is not torch's): they get eqff's threads
TAKES_THREADS = {"pyscf"}


class LabellingError(EqffError, RuntimeError):
    """The labeller gave no usable energy or forces for a frame."""


def make_labeller(spec: str, kwargs: Dict[str, Any], threads: Optional[int] = None):
    """The ASE calculator that ``spec`` ("module:factory" or a built-in name) builds from ``kwargs``;
    a built-in labeller with its own thread pool keeps to ``threads`` unless ``kwargs`` sets them."""
    if spec in TAKES_THREADS and threads is not None:
        kwargs = {"threads": threads, **kwargs}
    target = BUILTIN.get(spec, spec)
    module_name, colon, factory_name = target.partition(":")
    if not colon or not module_name or not factory_name:
        raise ConfigError(f"labeller {spec!r}: write it as 'module:factory' (e.g. 'ase.calculators.emt:EMT') "
                          f"or use a built-in one ({', '.join(BUILTIN)})")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"labeller {spec!r}: cannot import module {module_name!r} ({error}); install it, or fix "
                          "the name (the module must be importable from where eqff runs)") from error
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise ConfigError(f"labeller {spec!r}: module {module_name!r} has no callable {factory_name!r}; name a "
                          "class or function that returns an ASE calculator")
    try:
        calculator = factory(**kwargs)
    except ImportError as error:  # a labeller whose backend is missing (pyscf: pip install eqff[pyscf])
        raise ConfigError(f"labeller {spec!r}: {error}") from error
    except TypeError as error:
        raise ConfigError(f"labeller {spec!r}: {factory_name}(**labeller_kwargs) failed ({error}); check "
                          f"labeller_kwargs {kwargs}") from error
    if not hasattr(calculator, "get_potential_energy"):
        raise ConfigError(f"labeller {spec!r}: {factory_name}(...) returned a {type(calculator).__name__}, not an "
                          "ASE calculator (it needs get_potential_energy and get_forces)")
    return calculator


def label(calculator, atoms: Atoms, with_stress: bool, where: str) -> Atoms:
    """A bare copy of ``atoms`` (structure only) carrying the labeller's energy, forces and, with
    ``with_stress``, stress, as ASE single-point results."""
    work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    work.calc = calculator
    energy = float(work.get_potential_energy())
    forces = np.array(work.get_forces(), dtype=np.float64)
    results = {"energy": energy, "forces": forces}
    if with_stress:
        results["stress"] = np.array(work.get_stress(voigt=True), dtype=np.float64)
    if not np.isfinite(energy) or not all(np.isfinite(v).all() for v in results.values()):
        raise LabellingError(f"{where}: the labeller returned a non-finite energy, force or stress")
    labelled = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    labelled.calc = SinglePointCalculator(labelled, **results)
    return labelled

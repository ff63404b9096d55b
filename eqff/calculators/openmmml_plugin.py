"""The openmm-ml plugin: ``MLPotential("eqff", modelPath=...)``.

Registered in the ``openmmml.potentials`` entry-point group (pyproject.toml), so after
``pip install eqff`` openmm-ml finds it by name::

    from openmmml import MLPotential
    potential = MLPotential("eqff", modelPath="ethanol.pt")        # checkpoint or export file
    system = potential.createSystem(topology)                     # everything ML
    system = potential.createMixedSystem(topology, mm_system, ml_atoms)   # ML/MM, mechanical embedding

Arguments of ``createSystem`` / ``createMixedSystem`` understood here:
``implementation`` "auto" (default: TorchForce when openmmtorch imports, else PythonForce),
"torchforce" or "pythonforce"; ``precision`` "single"/"double" (or ``dtype``; default: the
model's); ``device`` (PythonForce only; default "cpu"); ``threads`` (torch's intra-op threads;
default: eqff chooses once per process, eqff/threads.py).

``createMixedSystem(interpolate=True)`` copies the ML force, which crashes for a TorchForce
with openmm 8.6.1 + openmmtorch 1.5 (its deserialisation segfaults): there "auto" uses a
PythonForce and "torchforce" is refused with an explanation.

The ML region is periodic exactly when the System is (openmm-ml#52, #77), and eqff potentials
are local (``getMLLongRange() -> False``): in a periodic mixed system the mechanical embedding
keeps the MM charges of the ML atoms for ML–MM electrostatics and excludes ML–ML pairs.
"""
from __future__ import annotations

from typing import Iterable, Optional

from openmmml.mlpotential import MLPotentialImpl, MLPotentialImplFactory


class EqffPotentialImplFactory(MLPotentialImplFactory):
    """Creates ``EqffPotentialImpl`` objects (the entry point's target)."""

    def createImpl(self, name: str, modelPath: Optional[str] = None, model=None, **args) -> MLPotentialImpl:
        return EqffPotentialImpl(name, modelPath=modelPath, model=model)


class EqffPotentialImpl(MLPotentialImpl):
    """An eqff potential from ``modelPath`` (checkpoint or export) or ``model`` (in memory)."""

    def __init__(self, name: str, modelPath: Optional[str] = None, model=None):
        from eqff.errors import ConfigError

        if (modelPath is None) == (model is None):
            raise ConfigError("MLPotential('eqff', ...) needs exactly one of modelPath= (a checkpoint or an exported "
                              "file) or model= (an eqff Potential)")
        self.name = name
        self.model = model if model is not None else modelPath
        if modelPath is not None:
            import os

            from eqff.errors import ModelFileError

            if not os.path.exists(modelPath):
                raise ModelFileError(f"{modelPath}: no such file")

    def addForces(self, topology, system, atoms: Optional[Iterable[int]], forceGroup: int,
                  implementation: str = "auto", precision: Optional[str] = None, dtype: Optional[str] = None,
                  device: Optional[str] = None, threads: Optional[int] = None, **args) -> None:
        import warnings

        from eqff.calculators.openmm_forces import ml_force
        from eqff.errors import ConfigError

        if system.getNumParticles() == 0 and atoms is not None:
            # openmm-ml's interpolation (createMixedSystem(interpolate=True)) builds the force in an
            # empty temporary System and deep-copies it; copying (deserialising) a TorchForce
            # segfaults with openmm 8.6.1 + openmmtorch 1.5, so only a PythonForce survives that.
            name = implementation.lower().replace("_", "").replace("-", "")
            if name == "torchforce":
                raise ConfigError("createMixedSystem(interpolate=True) copies the ML force, and copying a TorchForce "
                                  "crashes with openmmtorch 1.5; use implementation='pythonforce' (or 'auto')")
            if name == "auto":
                warnings.warn("interpolating ML/MM system: using openmm.PythonForce (a TorchForce cannot be copied "
                              "with openmmtorch 1.5)", stacklevel=2)
                implementation = "pythonforce"
        periodic = topology.getPeriodicBoxVectors() is not None or system.usesPeriodicBoundaryConditions()
        kwargs = dict(atoms=None if atoms is None else list(atoms), periodic=periodic, topology=topology,
                      dtype=dtype if dtype is not None else precision, threads=threads)
        if device is not None:
            kwargs["device"] = device
        force = ml_force(self.model, implementation=implementation, **kwargs)
        force.setForceGroup(forceGroup)
        system.addForce(force)

    def getMLLongRange(self) -> bool:
        return False

"""eqff in OpenMM: ``import eqff.openmm`` (or ``eqff.openmm`` after ``import eqff``).

    force = eqff.openmm.torch_force("ethanol.pt", topology=pdb.topology)     # openmmtorch.TorchForce
    force = eqff.openmm.python_force("ethanol.pt", topology=pdb.topology)    # openmm.PythonForce
    system.addForce(force)

or, for an ``ase.Atoms``, the whole System at once:
``setup = eqff.openmm.system_from_atoms(atoms, "ethanol.pt")`` (eqff.calculators.openmm_system);
or through openmm-ml: ``MLPotential("eqff", modelPath="ethanol.pt").createSystem(topology)``.
``eqff.openmm.UncertaintyReporter`` writes the learned forces' σ along a simulation.
``with eqff.openmm.fast_steps(simulation): simulation.step(n)`` steps a TorchForce on the CPU
at the bare model's cost (eqff.calculators.openmm_steps).
The implementation and its decisions (units, periodicity, subsets) are documented in
``eqff.calculators.openmm_forces``.
"""
from eqff.calculators.openmm_forces import (
    OpenMMModule,
    PythonForceComputation,
    load_for_openmm,
    ml_force,
    openmm_module,
    python_force,
    torch_force,
)
from eqff.calculators.openmm_steps import fast_steps
from eqff.calculators.openmm_system import OpenMMSystem, system_from_atoms, topology_from_atoms
from eqff.calculators.openmm_uncertainty import UncertaintyExceeded, UncertaintyReporter

__all__ = ["OpenMMModule", "OpenMMSystem", "PythonForceComputation", "fast_steps", "load_for_openmm", "ml_force",
           "openmm_module", "python_force", "system_from_atoms", "topology_from_atoms", "torch_force",
           "UncertaintyExceeded", "UncertaintyReporter"]

"""An OpenMM System from an ``ase.Atoms`` and an eqff potential, in one call.

    setup = eqff.openmm.system_from_atoms(atoms, "ethanol.pt")     # System + Topology + positions + box
    simulation = setup.simulation(openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond,
                                                                  0.5 * unit.femtosecond))
    forces = setup.in_atoms_order(state.getForces(asNumpy=True))   # back in the order of ``atoms``

The topology has one residue per bonded molecule (``topology_from_atoms``), so OpenMM's atom
order may differ from the ``ase.Atoms`` order: ``order`` maps one to the other.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from eqff import units
from eqff.errors import ConfigError


@dataclass
class OpenMMSystem:
    """What ``system_from_atoms`` builds. Topology atom ``k`` is ``atoms[order[k]]``."""

    system: Any  # openmm.System: the particles' masses, the box when periodic, the eqff force
    topology: Any  # openmm.app.Topology
    positions: Any  # Quantity (nm), in topology order
    order: np.ndarray
    force: Any  # the eqff force in ``system`` (None when no model was given)

    @property
    def box(self) -> Optional[Any]:
        """The periodic box vectors (Quantity, nm), or None."""
        return self.topology.getPeriodicBoxVectors()

    def in_atoms_order(self, values) -> np.ndarray:
        """Per-atom ``values`` in topology order (forces, velocities…) back in the order of the ``ase.Atoms``."""
        values = np.asarray(values)
        out = np.empty_like(values)
        out[self.order] = values
        return out

    def simulation(self, integrator, platform: str = "CPU", properties: Optional[dict] = None):
        """An ``openmm.app.Simulation`` of the System on ``platform`` with the positions set."""
        import openmm
        from openmm import app

        simulation = app.Simulation(self.topology, self.system, integrator,
                                    openmm.Platform.getPlatformByName(platform), properties or {})
        simulation.context.setPositions(self.positions)
        return simulation


def system_from_atoms(atoms, model=None, implementation: str = "auto", residue_name: str = "MOL",
                      molecules: bool = True, **force_options) -> OpenMMSystem:
    """An OpenMM System for ``atoms``: one particle per atom (the atoms' masses), the box when
    ``atoms`` is periodic in all three directions, and ``model`` (any model ``eqff.runtime``
    loads) as its force: ``implementation`` "auto" (TorchForce when openmmtorch works, else
    PythonForce), "torchforce" or "pythonforce"; ``force_options`` go to ``eqff.openmm.ml_force``
    (``dtype``, ``skin``, ``threads``, ``device``...). ``model=None``: no force (add your own).
    ``molecules``: one residue per molecule (OpenMM's atom order may then differ from the
    atoms': ``order``), or False: one residue in the order of ``atoms``."""
    import openmm
    from openmm import unit

    from eqff.calculators.openmm_forces import ml_force

    topology, positions_nm, order = topology_from_atoms(atoms, residue_name=residue_name, molecules=molecules)
    system = openmm.System()
    for mass in atoms.get_masses()[order]:
        system.addParticle(float(mass))
    if atoms.pbc.all():
        system.setDefaultPeriodicBoxVectors(*[openmm.Vec3(*row) for row in atoms.cell.array * units.ANGSTROM_TO_NM])
    force = None
    if model is not None:
        force = ml_force(model, implementation=implementation, topology=topology, **force_options)
        system.addForce(force)
    return OpenMMSystem(system, topology, positions_nm * unit.nanometer, order, force)


def topology_from_atoms(atoms, residue_name: str = "MOL", molecules: bool = True):
    """``(topology, positions_nm, order)`` for an ``ase.Atoms``: one residue per bonded molecule
    (ASE covalent radii x 1.25, periodic images included), waters named HOH/O/H1/H2 so that
    OpenMM's water force fields and Modeller recognise them; box vectors when periodic.
    ``molecules=False``: all atoms in one residue, in the order of ``atoms`` (``order`` is 0..n-1).

    OpenMM keeps a residue's atoms together, so topology atom ``k`` is ``atoms[order[k]]``
    (``order`` is ``0..n-1`` when the file already lists molecule by molecule); ``positions_nm``
    are in topology order."""
    from ase.neighborlist import natural_cutoffs, neighbor_list
    from openmm import app, unit
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(atoms)
    i, j = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.25))
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    if molecules:
        _, molecule = connected_components(graph, directed=False)
    else:
        molecule = np.zeros(n, dtype=np.int64)
    topology = app.Topology()
    chain = topology.addChain()
    atom_objects = [None] * n
    first_of = {}
    for k in range(n):
        first_of.setdefault(molecule[k], k)
    order = []
    for m in sorted(first_of, key=lambda m: first_of[m]):
        members = [k for k in range(n) if molecule[k] == m]
        order.extend(members)
        symbols = sorted(atoms.get_chemical_symbols()[k] for k in members)
        is_water = symbols == ["H", "H", "O"]
        residue = topology.addResidue("HOH" if is_water else residue_name, chain)
        hydrogens = 0
        counts = {}
        for k in members:
            element = app.Element.getByAtomicNumber(int(atoms.numbers[k]))
            if is_water:
                if element.symbol == "O":
                    name = "O"
                else:
                    hydrogens += 1
                    name = f"H{hydrogens}"
            else:
                counts[element.symbol] = counts.get(element.symbol, 0) + 1
                name = f"{element.symbol}{counts[element.symbol]}"
            atom_objects[k] = topology.addAtom(name, element, residue)
    for a, b in zip(i, j):
        if a < b:
            topology.addBond(atom_objects[a], atom_objects[b])
    if atoms.pbc.all():
        topology.setPeriodicBoxVectors(atoms.cell.array * units.ANGSTROM_TO_NM * unit.nanometer)
    elif atoms.pbc.any():
        raise ConfigError(f"the structure is periodic along {atoms.pbc.tolist()} only: OpenMM needs all or none")
    positions = atoms.positions[order] * units.ANGSTROM_TO_NM
    return topology, positions, np.asarray(order, dtype=np.int64)

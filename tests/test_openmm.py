"""OpenMM: TorchForce, PythonForce and the openmm-ml plugin give the eager model's numbers.

The agreement test (one number everywhere): energies and forces of the eager model, the
exported file, the ASE calculator, TorchForce, PythonForce and openmm-ml (both forces) agree to
1e-5 relative in float64 on ethanol and on water_192 with atoms outside the box.
"""
import copy
import os
import subprocess
import sys

import numpy as np
import openmm
import pytest
import torch
from ase import Atoms
from openmm import app, unit
from openmmml import MLPotential

import eqff
import eqff.openmm
from eqff import units
from eqff.errors import ConfigError, UnknownElementError
from eqff.export import export_potential, load_exported
from eqff.models.io import potential_state
from eqff.predict import predict
from conftest import MODELS

# TorchForce needs openmmtorch (the torchforce extra, torch 2.9.1): tests and halves marked
# `torchforce` are skipped where it does not import (conftest.py); PythonForce runs with any torch.
TORCHFORCE = pytest.mark.torchforce
IMPLEMENTATIONS = [pytest.param("torchforce", marks=TORCHFORCE), "pythonforce"]
FORCES = {"torchforce": ("TorchForce", eqff.openmm.torch_force), "pythonforce": ("PythonForce", eqff.openmm.python_force)}

TOLERANCE = 1e-5
FORCEFIELD = os.path.join(os.path.dirname(__file__), "..", "md_scripts", "data", "ethanol_nonbonded.xml")


def _outside_the_box(water: Atoms) -> Atoms:
    atoms = water.copy()
    cell = atoms.cell.array
    atoms.positions[:7] += cell[0] * 2 - cell[2]       # whole lattice vectors
    atoms.positions[7:12] += np.array([0.3, -0.2, 0.1]) * cell.sum(0)  # part of a molecule leaves the box
    assert ((atoms.get_scaled_positions(wrap=False) < 0) | (atoms.get_scaled_positions(wrap=False) >= 1)).any()
    return atoms


def _structures(ethanol, water):
    return {"ethanol": ethanol.copy(), "water_192": _outside_the_box(water)}


def _model(kind, atoms, dtype="float64"):
    torch.manual_seed(1)
    model = eqff.build_model(kind, elements=sorted(set(atoms.get_chemical_symbols())), cutoff=4.0, dtype=dtype)
    with torch.no_grad():  # not the all-default readout: distinct per-element energies
        model.energy_shift.copy_(torch.linspace(-2.0, -1.0, len(model.energy_shift)))
    return model


def _system(atoms: Atoms) -> openmm.System:
    """The System eqff.openmm.system_from_atoms builds (masses, box), no force yet, in the
    order of ``atoms`` (the tests give positions in that order)."""
    return eqff.openmm.system_from_atoms(atoms, molecules=False).system


def _evaluate(system: openmm.System, positions_nm, groups=-1, platform="CPU"):
    context = openmm.Context(system, openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName(platform))
    context.setPositions(positions_nm)
    state = context.getState(getEnergy=True, getForces=True, groups=groups)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    return energy, np.asarray(forces)


def _assert_close(name, energy, forces, ref_energy, ref_forces, tolerance=TOLERANCE):
    energy_error = abs(energy - ref_energy) / max(abs(ref_energy), 1e-3)
    force_error = float(np.abs(forces - ref_forces).max()) / max(float(np.abs(ref_forces).max()), 1e-6)
    assert energy_error < tolerance and force_error < tolerance, \
        f"{name}: energy {energy} vs {ref_energy} (rel {energy_error:.1e}), forces rel {force_error:.1e}"


_SLOW = pytest.mark.slow


@pytest.mark.parametrize("kind, name", [
    ("schnet", "ethanol"), ("schnet", "water_192"), ("segnn", "ethanol"),
    pytest.param("segnn", "water_192", marks=_SLOW), pytest.param("egnn", "ethanol", marks=_SLOW),
    pytest.param("egnn", "water_192", marks=_SLOW),
])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_one_number_everywhere(implementation, kind, name, ethanol, water, tmp_path):
    """implementation="torchforce": TorchForce (from the file, from memory) and openmm-ml's
    TorchForce; "pythonforce": the exported module, the ASE calculator, PythonForce and
    openmm-ml's PythonForce (everything that needs no openmmtorch, so it runs on every stack)."""
    atoms = _structures(ethanol, water)[name]
    topology, _, order = eqff.openmm.topology_from_atoms(atoms)
    atoms = atoms[order]  # OpenMM's order: molecule by molecule
    model = _model(kind, atoms)
    checkpoint, exported = tmp_path / "best.pt", tmp_path / "model.pt"
    torch.save(potential_state(model), checkpoint)
    export_potential(model, exported)
    reference = predict(model, [atoms])[0]
    ref_energy = float(reference["energy"]) * units.EV_TO_KJ_PER_MOL  # every result below in kJ/mol, kJ/mol/nm
    ref_forces = reference["forces"] * units.EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM
    assert np.abs(ref_forces).max() > 1.0  # a test that can fail
    positions_nm = atoms.positions * units.ANGSTROM_TO_NM
    results = {}

    if implementation == "pythonforce":
        module = load_exported(exported)
        out = module.compute(torch.tensor(atoms.numbers), torch.tensor(atoms.positions),
                             torch.tensor(atoms.cell.array), torch.tensor(atoms.pbc))
        results["exported compute"] = (float(out["energy"][0].detach()) * units.EV_TO_KJ_PER_MOL,
                                       out["forces"].detach().numpy() * units.EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM)
        box = torch.tensor(atoms.cell.array * units.ANGSTROM_TO_NM) if atoms.pbc.all() else None
        energy, forces = module.compute_openmm(torch.tensor(atoms.numbers), torch.tensor(positions_nm), box)
        results["exported compute_openmm"] = (float(energy.detach()), forces.numpy())
        for source in (exported, checkpoint):
            copy_ = atoms.copy()
            copy_.calc = eqff.EqffCalculator(str(source), dtype="float64")
            results[f"ASE from {source.name}"] = (copy_.get_potential_energy() * units.EV_TO_KJ_PER_MOL,
                                                 copy_.get_forces() * units.EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM)
    label, _ = FORCES[implementation]  # the public builder: System, force and positions from the ase.Atoms
    setup = eqff.openmm.system_from_atoms(atoms, str(exported), implementation=implementation)
    assert setup.force.getName() == {"torchforce": "eqff TorchForce", "pythonforce": "eqff PythonForce"}[implementation]
    results[label] = _evaluate(setup.system, setup.positions)
    if implementation == "torchforce":
        system = _system(atoms)
        system.addForce(eqff.openmm.torch_force(model, atoms=atoms))  # in-memory model, ase.Atoms as the system
        results["TorchForce from memory, Reference platform"] = _evaluate(system, positions_nm, platform="Reference")
    system = MLPotential("eqff", modelPath=str(checkpoint)).createSystem(topology, implementation=implementation)
    assert system.usesPeriodicBoundaryConditions() == bool(atoms.pbc.all())
    results[f"openmm-ml {implementation}"] = _evaluate(system, positions_nm)
    for label, (energy, forces) in results.items():
        _assert_close(label, energy, forces, ref_energy, ref_forces)


def _solvated_ethanol(ethanol, water):
    """Ethanol (split across the box boundary) in the waters of water_192 that do not overlap it."""
    from ase.geometry import get_distances

    solute = ethanol.copy()
    solute.positions += 1.0 - solute.positions.min(0)  # near the corner ...
    solute.positions[[0, 3, 4]] += water.cell.array[1]  # ... with the CH2 group in the next image
    _, _, order = eqff.openmm.topology_from_atoms(water)
    molecules = order.reshape(-1, 3)  # O, H, H of each water
    _, distances = get_distances(solute.positions, water.positions, cell=water.cell, pbc=True)
    keep = [m for m in molecules if distances[:, m].min() > 2.5]
    solvent = water[np.concatenate(keep)]
    combined = solute + solvent
    combined.cell, combined.pbc = water.cell, True
    assert 40 < len(keep) < 64
    return combined


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_subset_and_atom_order(implementation, ethanol, water):
    """A periodic ML subset: energy of the ML atoms alone in the periodic box, not minimum-image
    (openmm-ml#52/#77); the same for any order of the ML atom list (openmm-ml#130)."""
    atoms = _solvated_ethanol(ethanol, water)
    model = _model("schnet", ethanol)
    ml = list(range(9))
    solute = atoms[ml]
    solute.cell, solute.pbc = atoms.cell, True
    reference = predict(model, [solute])[0]
    ref_energy = float(reference["energy"]) * units.EV_TO_KJ_PER_MOL
    ref_forces = np.zeros((len(atoms), 3))
    ref_forces[ml] = reference["forces"] * units.EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM
    shuffled = [4, 8, 0, 2, 7, 1, 6, 3, 5]
    positions_nm = atoms.positions * units.ANGSTROM_TO_NM
    _, make = FORCES[implementation]
    for order in (ml, shuffled):
        system = _system(atoms)
        system.addForce(make(model, atoms=order, topology=atoms))
        energy, forces = _evaluate(system, positions_nm)
        _assert_close(f"{make.__name__} atoms={order}", energy, forces, ref_energy, ref_forces)
    # the open-boundary energy of the same coordinates is different: the periodic box matters
    open_solute = solute.copy()
    open_solute.pbc = False
    assert abs(float(predict(model, [open_solute])[0]["energy"]) * units.EV_TO_KJ_PER_MOL - ref_energy) > 1e-3


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_openmmml_mixed_system(implementation, ethanol, water, tmp_path):
    atoms = _solvated_ethanol(ethanol, water)
    model = _model("schnet", ethanol)
    checkpoint = tmp_path / "best.pt"
    torch.save(potential_state(model), checkpoint)
    topology, positions_nm, order = eqff.openmm.topology_from_atoms(atoms, residue_name="ETH")
    assert (order == np.arange(len(atoms))).all()
    forcefield = app.ForceField("tip3p.xml", FORCEFIELD)
    mm_system = forcefield.createSystem(topology, nonbondedMethod=app.PME, nonbondedCutoff=0.6 * unit.nanometer)
    ml_atoms = [a.index for a in topology.atoms() if a.residue.name == "ETH"]
    assert ml_atoms == list(range(9))
    potential = MLPotential("eqff", modelPath=str(checkpoint))
    system = potential.createMixedSystem(topology, mm_system, ml_atoms[::-1], forceGroup=1,
                                         implementation=implementation)
    assert system.usesPeriodicBoundaryConditions()
    solute = atoms[ml_atoms]
    solute.cell, solute.pbc = atoms.cell, True
    reference = predict(model, [solute])[0]
    ref_forces = np.zeros((len(atoms), 3))
    ref_forces[ml_atoms] = reference["forces"] * units.EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM
    energy, forces = _evaluate(system, positions_nm, groups={1})
    _assert_close("ML force group", energy, forces, float(reference["energy"]) * units.EV_TO_KJ_PER_MOL, ref_forces)
    # and the mixed system runs
    integrator = openmm.LangevinMiddleIntegrator(300, 1.0, 0.0005)
    simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName("CPU"))
    simulation.context.setPositions(positions_nm)
    simulation.minimizeEnergy(maxIterations=20)
    simulation.step(5)
    assert np.isfinite(simulation.context.getState(getEnergy=True).getPotentialEnergy()._value)


def test_openmmml_interpolation_uses_a_copyable_force(ethanol, water):
    """createMixedSystem(interpolate=True) deep-copies the ML force; a TorchForce copy segfaults
    with openmm 8.6.1 + openmmtorch 1.5, so "auto" falls back to PythonForce and "torchforce"
    is refused with a reason (instead of a crash)."""
    atoms = _solvated_ethanol(ethanol, water)
    model = _model("schnet", ethanol)
    topology, positions_nm, _ = eqff.openmm.topology_from_atoms(atoms, residue_name="ETH")
    mm_system = app.ForceField("tip3p.xml", FORCEFIELD).createSystem(topology, nonbondedMethod=app.PME,
                                                                      nonbondedCutoff=0.6 * unit.nanometer)
    potential = MLPotential("eqff", model=model)
    with pytest.raises(ConfigError, match="pythonforce"):
        potential.createMixedSystem(topology, mm_system, list(range(9)), interpolate=True, implementation="torchforce")
    with pytest.warns(UserWarning, match="PythonForce"):
        interpolating = potential.createMixedSystem(topology, mm_system, list(range(9)), interpolate=True)
    mixed = potential.createMixedSystem(topology, mm_system, list(range(9)))
    # Reference platform: double precision in a fixed order (the CPU platform's single-precision
    # nonbonded kernel hands out work blocks dynamically: ~4e-9 relative run to run under load)
    context = openmm.Context(interpolating, openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions_nm)
    context.setParameter("lambda_interpolate", 1.0)
    energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    assert energy == pytest.approx(_evaluate(mixed, positions_nm, platform="Reference")[0], rel=1e-9)


@TORCHFORCE
def test_box_thinner_than_twice_the_cutoff(water):
    """Three waters in a 4 Å box with a 4 Å cutoff: many images, computed exactly, not an error."""
    atoms = water[:9].copy()
    atoms.set_cell(np.diag([4.2, 4.5, 4.0]) + np.array([[0, 0, 0], [0.8, 0, 0], [0.3, -0.4, 0]]), scale_atoms=False)
    model = _model("schnet", atoms)
    reference = predict(model, [atoms])[0]  # vesin neighbour list
    system = _system(atoms)
    system.addForce(eqff.openmm.torch_force(model, topology=atoms))
    energy, forces = _evaluate(system, atoms.positions * units.ANGSTROM_TO_NM)
    _assert_close("small triclinic box", energy, forces, float(reference["energy"]) * units.EV_TO_KJ_PER_MOL,
                  reference["forces"] * units.EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM)


@TORCHFORCE
def test_float32_export_close_to_float64(water, tmp_path):
    atoms = _outside_the_box(water)
    model = _model("schnet", atoms)
    export_potential(model, tmp_path / "f32.pt", dtype=torch.float32)
    reference = predict(model, [atoms])[0]
    system = _system(atoms)
    system.addForce(eqff.openmm.torch_force(str(tmp_path / "f32.pt"), topology=atoms))
    energy, forces = _evaluate(system, atoms.positions * units.ANGSTROM_TO_NM)
    _assert_close("float32 TorchForce", energy, forces, float(reference["energy"]) * units.EV_TO_KJ_PER_MOL,
                  reference["forces"] * units.EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM, tolerance=1e-4)


def test_python_force_survives_copy_and_serialisation(ethanol):
    model = _model("schnet", ethanol)
    system = _system(ethanol)
    system.addForce(eqff.openmm.python_force(model, topology=ethanol))
    positions = ethanol.positions * units.ANGSTROM_TO_NM
    expected = _evaluate(system, positions)
    for other in (copy.deepcopy(system), openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))):
        energy, forces = _evaluate(other, positions)
        _assert_close("copied PythonForce", energy, forces, *expected, tolerance=1e-12)


@TORCHFORCE
def test_torch_force_errors_are_clear(ethanol, water):
    """The errors of test_errors_are_clear raised through torch_force."""
    model = _model("schnet", water)  # H and O only
    with pytest.raises(UnknownElementError, match=r"ML atoms \[0, 1\] are C,"):
        eqff.openmm.torch_force(model, topology=ethanol)
    with pytest.raises(ConfigError, match="elements of the System"):
        eqff.openmm.torch_force(model, atoms=None, periodic=False)
    with pytest.raises(ConfigError, match="duplicate"):
        eqff.openmm.torch_force(model, atoms=[3, 3], topology=water)
    slab = water.copy()
    slab.pbc = [True, True, False]
    with pytest.raises(ConfigError, match="all three directions or none"):
        eqff.openmm.torch_force(model, topology=slab)
    # a simulation that blew up: an error, not a number
    system = _system(water)
    system.addForce(eqff.openmm.torch_force(model, topology=water))
    positions = water.positions * units.ANGSTROM_TO_NM
    positions[5] = np.nan
    with pytest.raises(openmm.OpenMMException, match="NaN"):  # OpenMM itself checks before our force runs
        _evaluate(system, positions)


def test_errors_are_clear(ethanol, water, tmp_path):
    """(The TorchForce ones: test_torch_force_errors_are_clear.)"""
    model = _model("schnet", water)  # H and O only
    with pytest.raises(UnknownElementError, match="elements"):
        eqff.openmm.python_force(model, atoms=[0, 2, 3], topology=ethanol)
    with pytest.raises(ConfigError, match="outside"):
        eqff.openmm.python_force(model, atoms=[0, 500], topology=water)
    with pytest.raises(ConfigError, match="implementation"):
        eqff.openmm.ml_force(model, implementation="cuda-graphs", topology=water)
    positions = water.positions * units.ANGSTROM_TO_NM
    positions[5] = np.nan
    module = eqff.openmm.openmm_module(model, topology=water)
    with pytest.raises(torch.jit.Error, match=r"positions of atoms \[5\] are not finite"):
        module(torch.tensor(positions), torch.tensor(water.cell.array * units.ANGSTROM_TO_NM))
    with pytest.raises(torch.jit.Error, match="periodic but got no box"):
        module(torch.tensor(water.positions * units.ANGSTROM_TO_NM))
    # openmm-ml: a topology atom without an element, a missing model file
    topology, _, _ = eqff.openmm.topology_from_atoms(water)
    extra = topology.addAtom("EP", None, list(topology.residues())[-1])
    assert extra.index == len(water)
    with pytest.raises(UnknownElementError, match="no element"):
        MLPotential("eqff", model=model).createSystem(topology)
    with pytest.raises(eqff.errors.ModelFileError, match="no such file"):
        MLPotential("eqff", modelPath=str(tmp_path / "missing.pt"))


@TORCHFORCE
@pytest.mark.parametrize("kind", MODELS)
def test_torch_force_scripts_every_model(kind, ethanol):
    """Every architecture goes through TorchScript into a TorchForce (float32, the MD default)."""
    model = _model(kind, ethanol, dtype="float32")
    system = _system(ethanol)
    system.addForce(eqff.openmm.torch_force(model, topology=ethanol))
    energy, forces = _evaluate(system, ethanol.positions * units.ANGSTROM_TO_NM)
    reference = predict(model, [ethanol])[0]
    _assert_close(kind, energy, forces, float(reference["energy"]) * units.EV_TO_KJ_PER_MOL,
                  reference["forces"] * units.EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM, tolerance=1e-4)


OPENMM_FIRST = """
import openmm                      # before torch, as many OpenMM scripts do
from openmm import unit
import numpy as np
import ase.io
import eqff, eqff.openmm
atoms = ase.io.read({ethanol!r}, 0)
model = eqff.build_model("schnet", elements=["H", "C", "O"], cutoff=4.0, dtype="float64", features=8, num_layers=1)
system = openmm.System()
for mass in atoms.get_masses():
    system.addParticle(mass)
system.addForce(eqff.openmm.torch_force(model, topology=atoms))
atoms.calc = eqff.EqffCalculator(model, dtype="float64")
expected = atoms.get_potential_energy() * 96.485332
for platform in ("Reference", "CPU"):
    context = openmm.Context(system, openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName(platform))
    context.setPositions(atoms.positions * 0.1)
    energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    assert abs(energy - expected) < 1e-6 * abs(expected), (platform, energy, expected)
print("ok")
"""


@TORCHFORCE
def test_torch_force_works_when_openmm_is_imported_first(tmp_path):
    """A fresh process that imports openmm before torch: OpenMM's TorchForce kernels fail to load
    until eqff reloads the plugins; the Context then runs on Reference and CPU."""
    from conftest import data_path

    script = OPENMM_FIRST.format(ethanol=data_path("ethanol_20.xyz"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
    assert "simtk" not in result.stderr, result.stderr[-3000:]  # openmmtorch's own deprecation notice is dropped


@TORCHFORCE
def test_torch_force_steps_with_the_executor_optimisation_off(ethanol):
    """`torch.jit.optimized_execution(False)` around the Context and the steps (the fast CPU
    setting, README): the force still builds (its module comes frozen, every method inlined) and
    gives the numbers it gives with the optimisation on."""
    model = _model("schnet", ethanol, dtype="float64")
    results = []
    for optimise in (True, False):
        system = _system(ethanol)
        system.addForce(eqff.openmm.torch_force(model, topology=ethanol))
        with torch.jit.optimized_execution(optimise):
            for _ in range(3):  # the profiling executor plans on the second call
                results.append(_evaluate(system, ethanol.positions * units.ANGSTROM_TO_NM))
    reference = predict(model, [ethanol])[0]
    for energy, forces in results:
        _assert_close("optimisation off", energy, forces, float(reference["energy"]) * units.EV_TO_KJ_PER_MOL,
                      reference["forces"] * units.EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM, tolerance=1e-10)

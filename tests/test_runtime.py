"""The deploy runtime (eqff/runtime): one loader and one dtype policy for every path, the
caller's model never changed, and the ASE calculator, the OpenMM forces and ``eqff evaluate``
agree on what they load."""
import io
import warnings

import numpy as np
import pytest
import torch

import eqff
import eqff.openmm
from eqff import units
from eqff.errors import ConfigError
from eqff.export import export_potential
from eqff.models.io import potential_state
from eqff.runtime import load_model


def _model(dtype="float32"):
    torch.manual_seed(3)
    return eqff.build_model("schnet", elements=["H", "C", "O"], cutoff=4.0, dtype=dtype)


def _weights(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runtime")
    model = _model("float32")
    torch.save(potential_state(model), folder / "f32.ckpt")
    export_potential(model, folder / "f32.pt")
    export_potential(model, folder / "f64.pt", dtype=torch.float64)
    return folder


@pytest.mark.parametrize("name, dtype, expected, note", [
    ("f32.ckpt", None, torch.float32, "float32, the checkpoint in its own dtype"),
    ("f32.ckpt", "float64", torch.float64, "float64, the checkpoint rebuilt from float32 weights (exact constants)"),
    ("f32.pt", None, torch.float32, "float32, as exported"),
    ("f64.pt", None, torch.float64, "float64, as exported"),
    ("f64.pt", "float32", torch.float32, "float32, cast from a float64 export"),
])
def test_dtype_policy_for_files(files, name, dtype, expected, note):
    loaded = load_model(files / name, dtype=dtype)
    assert loaded.dtype == expected == loaded.module.potential.energy_scale.dtype
    assert loaded.note == note
    # every deployed path applies the same policy: none has a default of its own
    calculator = eqff.EqffCalculator(files / name, dtype=dtype)
    assert calculator.dtype == expected and calculator.dtype_note == note
    module = eqff.openmm.openmm_module(files / name, topology=[1, 6, 8], dtype=dtype, script=False)
    assert module.model.potential.energy_scale.dtype == expected


def test_a_loaded_model_is_not_loaded_again(files):
    loaded = load_model(files / "f32.ckpt")
    assert load_model(loaded) is loaded and eqff.EqffCalculator(loaded).potential is loaded.module
    assert loaded.example_structure is None  # this checkpoint stores none; trainer checkpoints do
    other = load_model(loaded, dtype="float64")
    assert other.dtype == torch.float64 and loaded.dtype == torch.float32


def test_float32_export_cast_up_warns(files):
    with pytest.warns(UserWarning, match="keeps its float32 constants"):
        loaded = load_model(files / "f32.pt", dtype="float64")
    assert loaded.note == "float64, cast from a float32 export (its constants stay float32)"


def test_callers_models_are_never_changed(files, ethanol):
    model = _model("float32")
    before = _weights(model)
    atoms = ethanol.copy()
    atoms.calc = eqff.EqffCalculator(model, dtype="float64")
    atoms.get_forces()
    assert all(v.dtype == torch.float32 for v in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    scripted = torch.jit.load(str(files / "f32.pt"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the float32-constants warning
        eqff.EqffCalculator(scripted, dtype="float64")
        eqff.openmm.openmm_module(scripted, topology=ethanol, dtype="float64", script=True)
    assert scripted.potential.energy_scale.dtype == torch.float32  # a cast ScriptModule is a private copy
    same = load_model(scripted)  # no cast, no move: used as it is
    assert same.module is scripted and same.note == "float32, as exported"


def test_in_memory_model_is_a_copy_in_its_own_dtype(ethanol):
    model = _model("float64")
    loaded = load_model(model)
    assert loaded.dtype == torch.float64 and loaded.note == "float64, a copy of the given model in its own dtype"
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # later changes to the caller's model do not reach the copy
    assert not torch.equal(next(model.parameters()), next(loaded.module.potential.parameters()))


def test_all_sources_give_the_same_numbers(files, ethanol):
    """A checkpoint, its TorchScript export and the model in memory, through the calculator."""
    results = []
    for source in (files / "f32.ckpt", files / "f32.pt", torch.jit.load(str(files / "f32.pt")), _model("float32")):
        atoms = ethanol.copy()
        atoms.calc = eqff.EqffCalculator(source)
        results.append((atoms.get_potential_energy(), atoms.get_forces()))
    for energy, forces in results[1:]:
        assert energy == pytest.approx(results[0][0], rel=1e-6)
        assert np.abs(forces - results[0][1]).max() < 1e-5


def test_unknown_inputs_are_refused():
    with pytest.raises(ConfigError, match="cannot use a Linear as an eqff model"):
        load_model(torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="dtype must be 'float32' or 'float64'"):
        load_model(_model(), dtype="float16")


def test_system_from_atoms_matches_the_calculator(files, water):
    """The public System builder: masses, box, the eqff force; numbers equal to ASE's."""
    import openmm
    from openmm import unit

    setup = eqff.openmm.system_from_atoms(water, files / "f64.pt", implementation="pythonforce")
    assert setup.system.getNumParticles() == len(water) and setup.system.usesPeriodicBoundaryConditions()
    box = setup.system.getDefaultPeriodicBoxVectors()
    assert np.allclose([v.value_in_unit(unit.angstrom) for v in box], water.cell.array)
    assert np.allclose([setup.system.getParticleMass(k).value_in_unit(unit.dalton) for k in range(len(water))],
                       water.get_masses()[setup.order])
    simulation = setup.simulation(openmm.VerletIntegrator(1e-3), platform="Reference")
    state = simulation.context.getState(getEnergy=True, getForces=True)
    forces = setup.in_atoms_order(state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))
    atoms = water.copy()
    atoms.calc = eqff.EqffCalculator(files / "f64.pt")
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) / units.EV_TO_KJ_PER_MOL
    assert energy == pytest.approx(atoms.get_potential_energy(), rel=1e-9)
    reference = atoms.get_forces() * units.EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM
    assert np.abs(forces - reference).max() < 1e-8 * np.abs(reference).max()


def test_evaluate_cli_uses_the_runtime(files, tmp_path, ethanol):
    """`eqff evaluate --dtype` on an export: a cast (with its warning), not a refusal."""
    import ase.io

    from eqff.cli.main import main

    frame = ethanol.copy()
    frame.calc = eqff.EqffCalculator(files / "f64.pt")
    frame.get_forces()
    ase.io.write(tmp_path / "one.xyz", frame)
    assert main(["evaluate", str(files / "f64.pt"), str(tmp_path / "one.xyz"), "--dtype", "float32"]) == 0

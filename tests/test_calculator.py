"""The ASE calculator: the README snippet, neighbour-list reuse, dtypes and errors."""
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError
from ase.md.verlet import VelocityVerlet
from ase import units

import eqff
from eqff.errors import UnknownElementError
from eqff.predict import predict
from conftest import MODELS


@pytest.mark.parametrize("kind", MODELS)
def test_snippet_on_ethanol_and_water(kind, ethanol, water):
    for atoms, elements in [(ethanol.copy(), ["C", "H", "O"]), (water.copy(), ["H", "O"])]:
        model = eqff.build_model(kind, elements=elements, cutoff=5.0)
        atoms.calc = eqff.EqffCalculator(model, dtype="float64")
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        assert np.isfinite(energy) and forces.shape == (len(atoms), 3)
        assert atoms.get_potential_energies().sum() == pytest.approx(energy, rel=1e-10)
        if atoms.pbc.all():
            assert atoms.get_stress().shape == (6,)
        else:
            with pytest.raises(PropertyNotImplementedError):
                atoms.get_stress()
        reference = predict(atoms.calc.potential, [atoms])[0]
        assert energy == pytest.approx(float(reference["energy"]), rel=1e-12)


def test_calculator_does_not_change_the_users_model():
    model = eqff.build_model("egnn", elements=["H", "O"], cutoff=4.0)
    eqff.EqffCalculator(model, dtype="float64")
    assert next(model.parameters()).dtype == torch.float32


def test_neighbour_list_skin_gives_the_same_trajectory(water):
    trajectories = []
    model = eqff.build_model("schnet", elements=["H", "O"], cutoff=4.0, dtype="float64")
    for skin in (0.0, 1.0):
        atoms = water.copy()
        atoms.calc = eqff.EqffCalculator(model, dtype="float64", skin=skin)
        rng = np.random.default_rng(0)
        atoms.set_velocities(rng.normal(scale=0.05, size=(len(atoms), 3)))
        dyn = VelocityVerlet(atoms, 1.0 * units.fs)
        positions = []
        dyn.attach(lambda: positions.append(atoms.positions.copy()), interval=1)
        dyn.run(20)
        trajectories.append((np.array(positions), atoms.calc.neighbor_list_builds))
    (no_skin, builds_no_skin), (with_skin, builds_skin) = trajectories
    np.testing.assert_allclose(with_skin, no_skin, atol=1e-10)
    assert builds_skin < builds_no_skin


def test_float32_close_to_float64(water):
    model = eqff.build_model("segnn", elements=["H", "O"], cutoff=5.0)
    results = {}
    for dtype in ("float32", "float64"):
        atoms = water.copy()
        atoms.calc = eqff.EqffCalculator(model, dtype=dtype)
        results[dtype] = atoms.get_forces()
    scale = np.abs(results["float64"]).max()
    assert np.abs(results["float32"] - results["float64"]).max() / scale < 1e-4


def test_unknown_element_is_named():
    model = eqff.build_model("schnet", elements=["H", "O"], cutoff=4.0)
    atoms = Atoms("H2OCl", positions=np.random.default_rng(0).normal(size=(4, 3)) * 2)
    atoms.calc = eqff.EqffCalculator(model)
    with pytest.raises(UnknownElementError, match=r"atoms \[3\] are Cl, which this model does not know \(it knows H, O\)"):
        atoms.get_potential_energy()

"""Single-model uncertainty (eqff/runtime/llpr.py): every model's atomic energy is linear in the
last-layer features it reports; the prediction rigidity of the training atoms sums to the
feature rank (leverages); σ is invariant under rotation, larger away from the training data,
carried by a checkpoint through every loader, and the plain numbers do not change."""
import json

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import eqff
from conftest import data_path
from eqff.cli.main import main
from eqff.data import keys
from eqff.data.graph import collate
from eqff.models.io import load_checkpoint, potential_from_state, potential_state
from eqff.models.registry import MODELS
from eqff.runtime import load_model
from eqff.runtime.llpr import fit_llpr, quadratic_form, regularised_inverse, save_with_uncertainty, training_covariances
from eqff.train.evaluation import graphs_of_file


def _model(kind, seed=0):
    torch.manual_seed(seed)
    model = eqff.build_model(kind, elements=["H", "C", "O"], cutoff=4.0, dtype="float64")
    with torch.no_grad():  # a non-trivial energy scale and shift, as after training
        model.energy_scale.copy_(torch.tensor([0.5, 1.5, 2.0], dtype=torch.float64))
        model.energy_shift.copy_(torch.tensor([-13.0, -1030.0, -2040.0], dtype=torch.float64))
    return model


def _last_linear_maps(model):
    if model.kind == "ace":  # every layer reads out
        return [layer.readout[-1] for layer in model.model.layers]
    return [model.model.readout[-1]]


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_atomic_energy_is_linear_in_the_reported_features(kind):
    model = _model(kind)
    batch = collate(graphs_of_file(model, data_path("ethanol_20.xyz"))[:2])
    out = model(batch, compute_forces=False, compute_features=True)
    features = out[keys.NODE_FEATURES]
    species = model.species(batch[keys.ATOMIC_NUMBERS])
    raw = features / model.energy_scale[species].unsqueeze(-1)  # the readouts' own inputs
    start, total = 0, torch.zeros(len(species), dtype=torch.float64)
    for linear in _last_linear_maps(model):  # each readout's last map on its slice of the features
        width = linear.weight.shape[0] if kind == "ace" else linear.in_features  # NormalizedLinear: [in, out]
        total = total + linear(raw[:, start:start + width]).squeeze(-1)
        start += width
    assert start == features.shape[1] > 0
    expected = model.energy_scale[species] * total + model.energy_shift[species]
    assert torch.allclose(out[keys.ATOMIC_ENERGIES], expected, atol=1e-10)


def test_training_leverages_sum_to_the_rank():
    model = load_model(_model("schnet")).module
    graphs = graphs_of_file(model, data_path("ethanol_20.xyz"))
    energy_cov, atom_cov, structures, atoms = training_covariances(model, graphs, batch_size=7)
    assert (structures, atoms) == (20, 180)
    batch = collate(graphs)
    features = model(batch, False, False, False, True)[keys.NODE_FEATURES]
    assert torch.allclose(atom_cov, features.T @ features, rtol=1e-10)
    relative = 1e-6
    leverages = quadratic_form(features, regularised_inverse(atom_cov, relative))
    # Σ_i f_iᵀ (C + εI)⁻¹ f_i = tr(C (C + εI)⁻¹) = Σ_k λ_k / (λ_k + ε): each atom's at most 1
    eigenvalues = torch.linalg.eigvalsh(atom_cov)
    epsilon = relative * float(torch.trace(atom_cov)) / atom_cov.shape[0]
    assert float(leverages.max()) <= 1.0
    assert float(leverages.sum()) == pytest.approx(float((eigenvalues / (eigenvalues + epsilon)).sum()), rel=1e-8)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llpr")
    plain = folder / "plain.pt"
    torch.save(potential_state(_model("schnet", seed=3)), plain)
    model, state = fit_llpr(str(plain), data_path("ethanol_20.xyz"), data_path("ethanol_20.xyz"))
    save_with_uncertainty(state, str(folder / "llpr.pt"))
    return plain, folder / "llpr.pt", state


def test_checkpoint_carries_it_and_plain_numbers_stay(fitted, ethanol):
    plain, with_sigma, state = fitted
    sigma = state["uncertainty"]
    assert sigma["energy_scale"] > 0 and sigma["forces_scale"] > 0 and sigma["info"]["train_structures"] == 20
    assert load_model(str(with_sigma)).has_uncertainty and not load_model(str(with_sigma), uncertainty=False).has_uncertainty
    # the weights are the plain checkpoint's: the state's checksum still holds
    potential_from_state(load_checkpoint(str(with_sigma)), source="with sigma")
    atoms = ethanol.copy()
    atoms.calc = eqff.EqffCalculator(str(plain))
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = eqff.EqffCalculator(str(with_sigma))
    assert atoms.get_potential_energy() == energy and np.array_equal(atoms.get_forces(), forces)
    sigma_e, sigma_f = atoms.calc.results["energy_std"], atoms.calc.results["forces_std"]
    assert sigma_e > 0 and sigma_f.shape == (len(atoms),) and np.all(sigma_f > 0)
    rotation = Rotation.random(random_state=1).as_matrix()
    atoms.positions = atoms.positions @ rotation.T
    atoms.get_forces()
    assert atoms.calc.results["energy_std"] == pytest.approx(sigma_e, rel=1e-8)
    assert np.allclose(atoms.calc.results["forces_std"], sigma_f, rtol=1e-8)


def test_sigma_grows_away_from_the_training_data(fitted, ethanol):
    _, with_sigma, _ = fitted
    calc = eqff.EqffCalculator(str(with_sigma))
    atoms = ethanol.copy()
    atoms.calc = calc
    atoms.get_forces()
    near = calc.results["forces_std"].copy()
    squeezed = ethanol.copy()
    squeezed.positions = squeezed.positions.mean(axis=0) + 0.6 * (squeezed.positions - squeezed.positions.mean(axis=0))
    squeezed.calc = calc
    squeezed.get_forces()
    assert calc.results["forces_std"].mean() > 3 * near.mean()


def test_validation_calibrates_the_force_sigma(fitted):
    _, with_sigma, _ = fitted
    from eqff.runtime.committee import uncertainty_metrics
    from eqff.train.evaluation import evaluate_file

    _, predictions, references = evaluate_file(load_model(str(with_sigma)).module, data_path("ethanol_20.xyz"))
    metrics = uncertainty_metrics(predictions, references)  # calibrated on these same frames: mean σ² = mean error²
    assert metrics["calibration_rms_error_over_rms_sigma"] == pytest.approx(1.0, rel=1e-6)
    assert metrics["calibration_energy_rms_error_over_rms_sigma"] == pytest.approx(1.0, rel=1e-6)


def test_cli(tmp_path, fitted):
    plain, _, _ = fitted
    out = tmp_path / "cli.pt"
    assert main(["uncertainty", str(plain), "--train-file", data_path("ethanol_20.xyz"), "--valid-file",
                 data_path("ethanol_20.xyz"), "-o", str(out), "--test-file", data_path("ethanol_20.xyz")]) == 0
    assert main(["evaluate", str(out), data_path("ethanol_20.xyz"), "-o", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert "spearman_atom_sigma_vs_force_error" in metrics and metrics["forces_std_mean_meV_per_A"] > 0


def test_old_ace_checkpoints_load():
    """Before the readouts all became Sequentials, ace's first readout was saved as a bare map."""
    model = _model("ace")
    state = potential_state(model)
    weights = state["model_state"]
    weights["model.layers.0.readout.weight"] = weights.pop("model.layers.0.readout.0.weight")
    state.pop("model_state_sha256")
    loaded = potential_from_state(state)
    batch = collate(graphs_of_file(model, data_path("ethanol_20.xyz"))[:1])
    assert torch.equal(loaded(batch)[keys.ENERGY], model(batch)[keys.ENERGY])


def test_openmm_reporter_writes_sigma_and_stops(fitted, ethanol, tmp_path):
    import openmm

    import eqff.openmm
    from eqff.calculators.openmm_uncertainty import UncertaintyExceeded, UncertaintyReporter

    plain, with_sigma, _ = fitted
    setup = eqff.openmm.system_from_atoms(ethanol, str(plain), implementation="pythonforce")
    simulation = setup.simulation(openmm.VerletIntegrator(0.0005))
    reporter = UncertaintyReporter(str(with_sigma), setup.topology, str(tmp_path / "sigma.csv"), 5)
    simulation.reporters.append(reporter)
    simulation.step(20)
    assert [r["step"] for r in reporter.rows] == [5, 10, 15, 20]
    lines = (tmp_path / "sigma.csv").read_text().splitlines()
    assert lines[0].startswith("step,time_ps,energy_std_eV") and len(lines) == 5
    atoms = ethanol.copy()
    positions_nm = simulation.context.getState(getPositions=True).getPositions(asNumpy=True)._value
    atoms.positions = 10.0 * setup.in_atoms_order(positions_nm)
    atoms.calc = eqff.EqffCalculator(str(with_sigma))
    atoms.get_forces()
    assert reporter.rows[-1]["energy_std_eV"] == pytest.approx(atoms.calc.results["energy_std"], rel=1e-6)
    assert reporter.rows[-1]["forces_std_max_eV_per_A"] == pytest.approx(atoms.calc.results["forces_std"].max(), rel=1e-6)
    simulation.reporters[0] = UncertaintyReporter(str(with_sigma), setup.topology, None, 5, stop_above=1e-9)
    with pytest.raises(UncertaintyExceeded, match="passed stop_above"):
        simulation.step(5)
    from eqff.errors import ConfigError

    with pytest.raises(ConfigError, match="gives no uncertainty"):
        UncertaintyReporter(str(plain), setup.topology, None, 5)


def test_export_carries_sigma(fitted, ethanol, tmp_path):
    """``eqff export`` of a checkpoint with σ: the TorchScript file's compute() gives the same σ,
    loaded with torch alone; compute_openmm gives the plain energy and forces."""
    import subprocess
    import sys

    _, with_sigma, _ = fitted
    path = tmp_path / "exported.pt"
    assert main(["export", str(with_sigma), "-o", str(path)]) == 0
    atoms = ethanol.copy()
    atoms.calc = eqff.EqffCalculator(str(with_sigma))
    atoms.get_forces()
    expected = atoms.calc.results
    code = f"""
import json, sys, torch
model = torch.jit.load({str(path)!r})
out = model.compute(torch.tensor({atoms.numbers.tolist()}), torch.tensor({atoms.positions.tolist()}, dtype=torch.float64),
                    torch.zeros(3, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.bool))
energy, forces = model.compute_openmm(torch.tensor({atoms.numbers.tolist()}),
                                      torch.tensor({atoms.positions.tolist()}, dtype=torch.float64) / 10)
print(json.dumps({{"energy_std": float(out["energy_std"][0]), "forces_std": out["forces_std"].tolist(),
                  "energy": float(out["energy"][0]), "openmm_energy": float(energy), "keys": sorted(out)}}))
"""
    result = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    assert result["energy_std"] == pytest.approx(expected["energy_std"], rel=1e-9)
    assert np.allclose(result["forces_std"], expected["forces_std"], rtol=1e-9)
    assert result["energy"] == pytest.approx(expected["energy"], rel=1e-12)
    assert result["openmm_energy"] == pytest.approx(expected["energy"] * 96.485332, rel=1e-6)
    assert "node_features" not in result["keys"]
    loaded = load_model(str(path))
    assert loaded.has_uncertainty and load_model(str(fitted[0])).has_uncertainty is False


def test_a_training_run_gets_sigma_from_its_own_split(tmp_path):
    """`eqff uncertainty best.pt -o OUT` with no files: the run's training frames and validation
    split (its config, checked by the data hash); the run's CPU time is kept in its checkpoint."""
    from eqff.train import make_config, train

    config = make_config(None, dict(train_file=data_path("ethanol_20.xyz"), model="schnet",
                                    hyperparameters={"features": 8, "num_layers": 1, "num_basis": 4}, max_epochs=2,
                                    n_valid=4, batch_size=4, output=str(tmp_path / "run"), progress=False))
    train(config)
    last = load_checkpoint(str(tmp_path / "run" / "last.pt"))["trainer"]
    assert last["cpu_s"] > 0 and last["cpu_unrecorded_wall_s"] == 0.0
    out = tmp_path / "sigma.pt"
    assert main(["uncertainty", str(tmp_path / "run" / "best.pt"), "-o", str(out)]) == 0
    info = load_checkpoint(str(out))["uncertainty"]["info"]
    assert (info["train_structures"], info["valid_structures"], info["split"]) == (16, 4, "the training run's own")
    # one file without the other: a clear error (exit 2), not a guess
    assert main(["uncertainty", str(tmp_path / "run" / "best.pt"), "-o", str(out), "--train-file",
                 data_path("ethanol_20.xyz")]) == 2

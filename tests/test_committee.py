"""Committees (eqff.runtime.committee): the mean of the members is the prediction, their
spread the uncertainty; σ of the forces is invariant under rotations (the mean forces rotate),
members with other cutoffs see their own pairs, calibration makes σ match the error."""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import eqff
from eqff.cli.main import main
from eqff.models.io import potential_state
from eqff.runtime import load_model
from eqff.runtime.committee import calibrate, uncertainty_metrics
from eqff.train.evaluation import evaluate_file


def _model(kind, cutoff, seed):
    torch.manual_seed(seed)
    model = eqff.build_model(kind, elements=["H", "C", "O"], cutoff=cutoff, dtype="float64")
    with torch.no_grad():  # not only the initial readout: members that disagree
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _run(calculator, atoms):
    atoms = atoms.copy()
    atoms.calc = calculator
    return atoms.get_potential_energy(), atoms.get_forces(), dict(calculator.results)


def test_mean_spread_and_rotation(ethanol):
    members = [_model("schnet", 4.0, 1), _model("egnn", 5.0, 2), _model("schnet", 5.0, 3)]
    alone = [_run(eqff.EqffCalculator(m), ethanol) for m in members]
    energy, forces, results = _run(eqff.EqffCalculator(members), ethanol)
    assert energy == pytest.approx(np.mean([a[0] for a in alone]), rel=1e-12)  # each member with its own cutoff
    assert np.allclose(forces, np.mean([a[1] for a in alone], axis=0), atol=1e-12)
    assert results["energy_std"] == pytest.approx(np.std([a[0] for a in alone]), rel=1e-10)
    spread = np.sqrt(np.mean([((a[1] - forces) ** 2).sum(axis=1) for a in alone], axis=0))
    assert np.allclose(results["forces_std"], spread, atol=1e-12) and spread.min() > 0
    rotation = Rotation.random(random_state=0).as_matrix()
    turned = ethanol.copy()
    turned.positions = ethanol.positions @ rotation.T
    _, turned_forces, turned_results = _run(eqff.EqffCalculator(members), turned)
    assert np.allclose(turned_forces, forces @ rotation.T, atol=1e-10)
    assert np.allclose(turned_results["forces_std"], results["forces_std"], atol=1e-10)


def test_identical_members_have_no_spread(ethanol):
    model = _model("schnet", 4.0, 1)
    energy, forces, results = _run(eqff.EqffCalculator([model, model]), ethanol)
    reference = _run(eqff.EqffCalculator(model), ethanol)
    assert energy == pytest.approx(reference[0], rel=1e-12) and np.allclose(forces, reference[1], atol=1e-12)
    assert results["energy_std"] == 0.0 and np.all(results["forces_std"] == 0.0)


def test_calibration_and_cli(tmp_path):
    from conftest import data_path

    paths = []
    for k, kind in enumerate(["schnet", "egnn", "schnet"]):
        torch.save(potential_state(_model(kind, 4.0, 10 + k)), tmp_path / f"m{k}.pt")
        paths.append(str(tmp_path / f"m{k}.pt"))
    committee = load_model(paths).module
    _, predictions, references = evaluate_file(committee, data_path("ethanol_20.xyz"))
    scale = calibrate(committee, predictions, references)
    assert scale > 0 and committee.uncertainty_scale == scale
    _, predictions, references = evaluate_file(committee, data_path("ethanol_20.xyz"))
    metrics = uncertainty_metrics(predictions, references)
    assert metrics["calibration_rms_error_over_rms_sigma"] == pytest.approx(1.0, rel=1e-6)
    assert -1.0 <= metrics["spearman_frame_sigma_vs_force_mae"] <= 1.0
    assert main(["evaluate", paths[0], data_path("ethanol_20.xyz"), "--committee", *paths[1:],
                 "--calibrate-on", data_path("ethanol_20.xyz"), "--output", str(tmp_path / "m.json")]) == 0
    import json

    written = json.loads((tmp_path / "m.json").read_text())
    assert written["uncertainty_scale"] == pytest.approx(scale, rel=1e-9)


def test_committee_errors():
    from eqff.errors import ConfigError

    with pytest.raises(ConfigError, match="at least two"):
        load_model([_model("schnet", 4.0, 1)])
    with pytest.raises(ConfigError, match="not as a TorchForce"):
        load_model([_model("schnet", 4.0, 1), _model("schnet", 4.0, 2)], script=True)
    mixed = [_model("schnet", 4.0, 1), eqff.build_model("schnet", elements=["H", "C", "O"], cutoff=4.0, dtype="float32")]
    with pytest.raises(ConfigError, match="float32 and float64"):
        load_model(mixed)
    assert load_model(mixed, dtype="float64").dtype == torch.float64

"""Errors per group of frames (`eqff evaluate --group-by KEY`): each group's metrics are those
of its frames alone; frames without the key give no groups."""
import json
import os

import ase.io
import pytest

from eqff.cli.main import main
from eqff.runtime import load_model
from eqff.train.evaluation import evaluate_file
from conftest import data_path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(REPO, "potentials", "ethanol_egnn", "model.pt")


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    folder = tmp_path_factory.mktemp("groups")
    frames = ase.io.read(data_path("ethanol_20.xyz"), ":")
    for k, atoms in enumerate(frames):
        atoms.info["kind"] = "first" if k < 8 else "rest"
    ase.io.write(folder / "all.xyz", frames)
    ase.io.write(folder / "first.xyz", frames[:8])
    ase.io.write(folder / "rest.xyz", frames[8:])
    return folder


def test_each_group_has_the_metrics_of_its_own_frames(grouped):
    potential = load_model(MODEL, dtype="float64").module
    metrics, _, _ = evaluate_file(potential, str(grouped / "all.xyz"), group_key="kind")
    assert metrics["group_key"] == "kind" and sorted(metrics["by_group"]) == ["first", "rest"]
    for name in ("first", "rest"):
        alone, _, _ = evaluate_file(potential, str(grouped / f"{name}.xyz"))
        for key, value in alone.items():
            assert metrics["by_group"][name][key] == pytest.approx(value, rel=1e-12), (name, key)
    assert metrics["by_group"]["first"]["n_structures"] == 8


def test_no_groups_without_the_key_and_the_table_in_the_cli(grouped, capsys):
    potential = load_model(MODEL, dtype="float64").module
    metrics, _, _ = evaluate_file(potential, str(grouped / "all.xyz"), group_key="no_such_key")
    assert "by_group" not in metrics
    out = grouped / "m.json"
    assert main(["evaluate", MODEL, str(grouped / "all.xyz"), "--group-by", "kind", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "MAE by kind:" in printed and "first" in printed and "rest" in printed
    assert json.loads(out.read_text())["by_group"]["rest"]["n_structures"] == 12


def test_training_reports_the_test_errors_per_config_type(tmp_path):
    from eqff.train import make_config, train

    frames = ase.io.read(data_path("ethanol_20.xyz"), ":")
    for k, atoms in enumerate(frames):
        atoms.info["config_type"] = "low" if k % 2 else "high"
    ase.io.write(tmp_path / "test.xyz", frames)
    config = make_config(None, dict(train_file=data_path("ethanol_20.xyz"), test_file=str(tmp_path / "test.xyz"),
                                    model="schnet", hyperparameters={"features": 8, "num_layers": 1, "num_basis": 4},
                                    max_epochs=1, n_valid=4, batch_size=4, output=str(tmp_path / "run"),
                                    progress=False, e0s=data_path("ethanol_isolated_atoms.xyz")))
    summary = train(config)
    assert sorted(summary["test_metrics"]["by_group"]) == ["high", "low"]
    assert "MAE by config_type:" in (tmp_path / "run" / "train.log").read_text()

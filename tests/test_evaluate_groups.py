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
MODEL = os.path.join(REPO, "tests", "data", "ethanol_egnn.pt")


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


def test_config_type_weights_scale_each_structures_terms():
    """Weights of 1 give the unweighted loss exactly; otherwise each structure's energy and
    stress errors and its atoms' force errors are scaled by its weight inside the mean."""
    import torch

    from eqff.data import keys
    from eqff.data.frames import read_frames
    from eqff.data.graph import collate, frame_to_graph
    from eqff.train.loss import WeightedLoss

    batch = collate([frame_to_graph(f, 5.0) for f in read_frames(data_path("ethanol_20.xyz"))[:3]])
    generator = torch.Generator().manual_seed(0)
    batch[keys.STRESS] = torch.randn(3, 3, 3, generator=generator, dtype=torch.float64)
    batch[keys.HAS_STRESS] = torch.tensor([True, False, True])
    predicted = {keys.ENERGY: batch[keys.ENERGY] + torch.randn(3, generator=generator, dtype=torch.float64),
                 keys.FORCES: batch[keys.FORCES] + torch.randn(27, 3, generator=generator, dtype=torch.float64),
                 keys.STRESS: torch.randn(3, 3, 3, generator=generator, dtype=torch.float64)}
    weight = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    for kind, error in (("mse", lambda a, b: (a - b) ** 2),
                        ("huber", lambda a, b: torch.nn.functional.huber_loss(a, b, delta=0.01, reduction="none"))):
        loss = WeightedLoss(1.0, 100.0, 1.0, kind=kind)
        plain = loss.terms(predicted, batch)
        ones = loss.terms(predicted, dict(batch, **{keys.WEIGHT: torch.ones(3, dtype=torch.float64)}))
        assert all(torch.equal(plain[key], ones[key]) for key in plain), kind
        weighted = loss.terms(predicted, dict(batch, **{keys.WEIGHT: weight}))
        expected = {keys.ENERGY: (weight * error(predicted[keys.ENERGY] / 9, batch[keys.ENERGY] / 9)).mean(),
                    keys.FORCES: (weight.repeat_interleave(9)[:, None]
                                  * error(predicted[keys.FORCES], batch[keys.FORCES])).mean(),
                    keys.STRESS: (weight[[0, 2], None, None]
                                  * error(predicted[keys.STRESS][[0, 2]], batch[keys.STRESS][[0, 2]])).mean()}
        for key, value in expected.items():
            assert torch.allclose(weighted[key], value, rtol=1e-12), (kind, key)
        assert not torch.allclose(weighted[keys.FORCES], plain[keys.FORCES])


def test_config_type_weights_in_training_and_bad_names(tmp_path):
    from eqff.errors import ConfigError
    from eqff.train import make_config, train

    frames = ase.io.read(data_path("ethanol_20.xyz"), ":")
    for k, atoms in enumerate(frames):
        atoms.info["kind"] = "stretched" if k % 4 == 0 else "plain"
    ase.io.write(tmp_path / "train.xyz", frames)
    base = dict(train_file=str(tmp_path / "train.xyz"), model="schnet", max_epochs=1, n_valid=4, batch_size=4,
                hyperparameters={"features": 8, "num_layers": 1, "num_basis": 4}, progress=False,
                e0s=data_path("ethanol_isolated_atoms.xyz"), config_type_key="kind")
    with pytest.raises(ConfigError, match=r"\['Stretched'\].*'kind'.*\['plain', 'stretched'\]"):
        train(make_config(None, dict(base, output=str(tmp_path / "bad"), config_type_weights={"Stretched": 5})))
    summary = {w: train(make_config(None, dict(base, output=str(tmp_path / f"w{w}"), config_type_weights={"stretched": w})))
               for w in (1.0, 10.0)}
    assert summary[10.0]["best_loss"] != summary[1.0]["best_loss"]


def test_predictions_file_and_the_frames_that_carry_the_error(grouped, tmp_path, capsys):
    """`--predictions FILE`: every frame with the reference and the model's numbers (read back,
    they match the ASE calculator's); the printed list names the frame with the largest energy error."""
    from eqff.calculators.ase import EqffCalculator

    path = tmp_path / "predictions.extxyz"
    assert main(["evaluate", MODEL, str(grouped / "all.xyz"), "--dtype", "float64", "--predictions", str(path)]) == 0
    printed = capsys.readouterr().out
    written, original = ase.io.read(path, ":"), ase.io.read(grouped / "all.xyz", ":")
    assert len(written) == len(original) == 20
    calculator = EqffCalculator(MODEL, dtype="float64")
    errors = []
    for k, (atoms, reference) in enumerate(zip(written, original)):
        assert atoms.get_potential_energy() == reference.get_potential_energy()
        assert (atoms.get_forces() == reference.get_forces()).all()
        assert atoms.info["source"].endswith(f"all.xyz: frame {k}")
        probe = reference.copy()
        probe.calc = calculator
        assert atoms.info["eqff_energy"] == pytest.approx(probe.get_potential_energy(), abs=1e-8)
        assert abs(atoms.arrays["eqff_forces"] - probe.get_forces()).max() < 1e-8
        errors.append(1000 * (atoms.info["eqff_energy"] - atoms.get_potential_energy()) / len(atoms))
    worst = max(range(20), key=lambda k: abs(errors[k]))
    first = printed.split("frames with the largest energy error per atom (of 20):\n")[1].splitlines()[0]
    assert f"all.xyz: frame {worst} " in first and f"E {errors[worst]:+9.2f} meV/atom" in first

"""Training: config, E0s, run folder, reproducibility, exact resume (SIGKILL too), NaN safety,
label checks, stress, evaluate, and DDP with 2 gloo processes."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
import ase.io

from eqff.data import read_frames
from eqff.errors import ConfigError, DataError, UnknownElementError
from eqff.models.io import load_checkpoint, load_potential
from eqff.train import make_config, train
from eqff.train.config import TrainConfig
from eqff.train import statistics
from eqff.train.trainer import Trainer, TrainingDiverged
from conftest import data_path

ETHANOL = data_path("ethanol_20.xyz")
TINY = {"features": 8, "num_layers": 1, "num_basis": 4}
ACE_TINY = {"features": 8, "num_layers": 2, "num_basis": 4, "radial_features": 8, "sh_lmax": 2}


def tiny_config(tmp_path, name="run", **overrides):
    values = dict(train_file=ETHANOL, model="schnet", hyperparameters=TINY, max_epochs=3, n_valid=4,
                  batch_size=4, output=str(tmp_path / name), progress=False, e0s=data_path("ethanol_isolated_atoms.xyz"))
    values.update(overrides)
    return make_config(None, values)


def weights(path):
    return load_checkpoint(path)["trainer"]["raw_model_state"]


def test_unknown_config_key_lists_valid_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train_file: x.xyz\nmax_epoch: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) 'max_epoch' \(did you mean 'max_epochs'\?\).*Valid keys: train_file"):
        make_config(str(path))
    with pytest.raises(ConfigError, match="scheduler must be one of"):
        make_config(None, {"train_file": "x", "scheduler": "step"})


def test_example_configs_are_valid():
    folder = os.path.join(os.path.dirname(__file__), "..", "eqff", "configs")
    names = sorted(f for f in os.listdir(folder) if f.endswith(".yaml"))
    assert {"ace.yaml", "schnet.yaml", "egnn.yaml", "segnn.yaml"} <= set(names)
    for name in names:
        config = make_config(os.path.join(folder, name))
        assert config.model == name[:-len(".yaml")]


def test_e0s_from_isolated_atoms_and_least_squares():
    frames = read_frames(ETHANOL)
    isolated = read_frames(data_path("ethanol_isolated_atoms.xyz"))
    e0s = statistics.resolve_e0s("auto", frames, isolated, [1, 6, 8], "energy")
    assert e0s[8] == pytest.approx(-2035.5709809589698)
    fitted = statistics.resolve_e0s("least_squares", frames, [], [1, 6, 8], "energy")
    # one composition (C2H6O): only the sum is determined, and it fits the mean energy
    total = 2 * fitted[6] + 6 * fitted[1] + fitted[8]
    assert total == pytest.approx(np.mean([f.energy for f in frames]), abs=1e-6)
    with pytest.raises(ConfigError, match=r"no reference energy for \['C'\]"):
        statistics.resolve_e0s({"H": -13.6, "O": -2035.0}, frames, [], [1, 6, 8], "energy")


def test_run_folder_contents_and_evaluate(tmp_path):
    config = tiny_config(tmp_path, test_file=ETHANOL)
    summary = train(config)
    run = tmp_path / "run"
    for name in ("best.pt", "last.pt", "config.yaml", "metrics.csv", "learning_curves.png", "parity_valid.png",
                 "parity_test.png", "test_metrics.json"):
        assert (run / name).exists(), name
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["max_epochs"] == 3 and resolved["model"] == "schnet"
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 4 and rows[0].startswith("epoch,")
    assert summary["epochs"] == 3
    # evaluate through the command line, exact keys
    out = tmp_path / "metrics.json"
    subprocess.run(["eqff", "evaluate", str(run / "best.pt"), ETHANOL, "--output", str(out)], check=True,
                   capture_output=True)
    metrics = json.loads(out.read_text())
    assert set(metrics) == {"n_structures", "n_atoms", "energy_mae_meV", "energy_rmse_meV", "energy_mae_meV_per_atom",
                            "energy_rmse_meV_per_atom", "forces_mae_meV_per_A", "forces_rmse_meV_per_A"}
    assert metrics["n_structures"] == 20 and metrics["n_atoms"] == 180
    assert metrics == pytest.approx(json.loads((run / "test_metrics.json").read_text()))


def test_training_reduces_the_error(tmp_path):
    config = tiny_config(tmp_path, max_epochs=12, lr=5e-3, batch_size=2,
                         hyperparameters={"features": 16, "num_layers": 2, "num_basis": 8})
    train(config)
    rows = (tmp_path / "run" / "metrics.csv").read_text().strip().splitlines()
    header = rows[0].split(",")
    column = header.index("valid_forces_mae_meV_per_A")
    first, last = float(rows[1].split(",")[column]), float(rows[-1].split(",")[column])
    assert last < 0.8 * first


def test_seeded_runs_are_reproducible(tmp_path):
    train(tiny_config(tmp_path, "a"))
    train(tiny_config(tmp_path, "b"))
    a, b = weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt")
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_continues_exactly(tmp_path):
    """A run extended with --resume and a larger max_epochs continues exactly. Only for a schedule
    that does not depend on the budget: the cosine one is spread over max_epochs, so extending the
    budget re-spreads it (its exact resume is test_resume_after_sigkill)."""
    plateau = dict(scheduler="plateau")
    train(tiny_config(tmp_path, "straight", max_epochs=4, **plateau))
    train(tiny_config(tmp_path, "split", max_epochs=2, **plateau))
    with pytest.raises(ConfigError, match="--resume"):
        train(tiny_config(tmp_path, "split", max_epochs=4, **plateau))
    train(tiny_config(tmp_path, "split", max_epochs=4, resume=True, **plateau))
    a, b = weights(tmp_path / "straight" / "last.pt"), weights(tmp_path / "split" / "last.pt")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    history = load_checkpoint(tmp_path / "split" / "last.pt")["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]


def test_a_resumed_run_keeps_the_cpus_of_every_session(tmp_path):
    """Model cards say where the minutes were spent: each session's CPU is kept, in order."""
    from eqff.train.checkpoint import save_atomic
    from eqff.threads import allowed_cpus, cpu_description

    train(tiny_config(tmp_path, "run", max_epochs=1))
    path = tmp_path / "run" / "last.pt"
    state = load_checkpoint(path)
    assert state["trainer"]["machines"] == [cpu_description()]
    assert cpu_description().endswith(f", {len(allowed_cpus())} core" + ("s" if len(allowed_cpus()) > 1 else ""))
    state["trainer"]["machines"] = ["Some Older CPU, 2 cores"]  # as if the first session ran elsewhere
    save_atomic(state, str(path))
    train(tiny_config(tmp_path, "run", max_epochs=2, resume=True))
    assert load_checkpoint(path)["trainer"]["machines"] == ["Some Older CPU, 2 cores", cpu_description()]


def test_resume_of_a_run_saved_before_the_readout_rename(tmp_path):
    """A run folder written before ace's first readout became a Sequential (``readout.weight``,
    in the raw weights, the weight average and the saved model) resumes, and goes on exactly as
    the same run saved with today's names."""
    plateau = dict(model="ace", hyperparameters=ACE_TINY, scheduler="plateau")
    train(tiny_config(tmp_path, "new", max_epochs=2, **plateau))
    train(tiny_config(tmp_path, "old", max_epochs=2, **plateau))
    old_path = tmp_path / "old" / "last.pt"
    state = load_checkpoint(old_path)
    old, new = "model.layers.0.readout.weight", "model.layers.0.readout.0.weight"
    for weights_ in (state["trainer"]["raw_model_state"], state["trainer"]["ema"]["shadow"], state["model_state"]):
        weights_[old] = weights_.pop(new)
    state.pop("model_state_sha256", None)
    torch.save(state, old_path)
    for name in ("new", "old"):
        train(tiny_config(tmp_path, name, max_epochs=3, resume=True, **plateau))
    a, b = load_checkpoint(tmp_path / "new" / "last.pt"), load_checkpoint(tmp_path / "old" / "last.pt")
    assert a["history"][-1]["valid_loss"] == b["history"][-1]["valid_loss"]
    for key, value in a["trainer"]["ema"]["shadow"].items():
        assert torch.equal(value, b["trainer"]["ema"]["shadow"][key]), key


def test_resume_after_sigkill(tmp_path):
    """Kill a training process with SIGKILL after its second checkpoint, resume, and end with
    exactly the weights of an uninterrupted run."""
    epochs = 6
    command = [sys.executable, "-m", "eqff", "train", "--train-file", ETHANOL, "--model", "schnet",
               "--hyperparameters", json.dumps(TINY), "--n-valid", "4", "--batch-size", "4", "--no-progress",
               "--e0s", data_path("ethanol_isolated_atoms.xyz"), "--max-epochs", str(epochs)]
    subprocess.run(command + ["--output", str(tmp_path / "straight")], check=True, capture_output=True)
    killed = tmp_path / "killed"
    process = subprocess.Popen(command + ["--output", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (killed / "metrics.csv").exists() and len((killed / "metrics.csv").read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = load_checkpoint(killed / "last.pt")["epoch"]
    assert done_before < epochs, "the run finished before it could be killed"
    subprocess.run(command + ["--output", str(killed), "--resume"], check=True, capture_output=True)
    a, b = weights(tmp_path / "straight" / "last.pt"), weights(killed / "last.pt")
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    trainer = Trainer(tiny_config(tmp_path, max_epochs=4))
    calls = {"n": 0}
    original = trainer.loss.__class__.__call__

    def poisoned(self, predicted, batch):
        calls["n"] += 1
        value = original(self, predicted, batch)
        return value * float("nan") if calls["n"] > 6 else value

    monkeypatch.setattr(trainer.loss.__class__, "__call__", poisoned)
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        trainer.run()
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["epoch"] >= 1
    assert all(torch.isfinite(v).all() for v in state["model_state"].values() if v.is_floating_point())


def test_divergence_rolls_back_to_the_best_weights(tmp_path, monkeypatch):
    """A loss spike that leaves the weights dead (seen on aspirin EGNN at lr 5e-3) must not
    waste the rest of the budget: back to best.pt, fresh Adam moments, half the lr."""
    trainer = Trainer(tiny_config(tmp_path, max_epochs=4, ema_decay=0.0, lr=1e-3, scheduler="cosine", warmup_epochs=0))
    original = trainer.validate
    seen = {"epochs": 0}

    def spiking():
        metrics = original()
        seen["epochs"] += 1
        if seen["epochs"] == 3:
            seen["before"] = {k: v.detach().clone() for k, v in trainer.potential.named_parameters()}
            with torch.no_grad():  # the dead state: weights blown up
                for p in trainer.potential.parameters():
                    p.mul_(1e3)
            metrics = dict(metrics, loss=metrics["loss"] * 1e4)
        return metrics

    monkeypatch.setattr(trainer, "validate", spiking)
    lr_before = trainer.schedule.base_lr
    trainer.run()
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert trainer.rollbacks == 1
    assert trainer.schedule.base_lr == pytest.approx(0.5 * lr_before)
    assert best["best_epoch"] in (1, 2, 4)
    raw = weights(tmp_path / "run" / "last.pt")
    for name, before in seen["before"].items():  # back near the pre-spike weights, not 1000x them
        assert torch.allclose(raw[name], before, rtol=0.1, atol=0.1), name
    log = open(tmp_path / "run" / "train.log").read()
    assert "rolled back to the best weights" in log
    with pytest.raises(ConfigError, match="divergence_factor must be above 1"):
        tiny_config(tmp_path, divergence_factor=0.5)


def test_force_weight_without_forces_is_an_error(tmp_path):
    frames = ase.io.read(ETHANOL, ":6")
    for atoms in frames:
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy())
    path = tmp_path / "energies_only.xyz"
    ase.io.write(path, frames, format="extxyz")
    with pytest.raises(DataError, match="no forces under key 'forces'"):
        train(tiny_config(tmp_path, train_file=str(path), n_valid=2))
    train(tiny_config(tmp_path, "energy_only", train_file=str(path), n_valid=2, forces_weight=0.0, max_epochs=1))


def emt_frames(count, seed):
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 1, 1)
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + rng.normal(0, 0.02, (3, 3))), scale_atoms=True)
        atoms.positions += rng.normal(0, 0.08, atoms.positions.shape)
        atoms.calc = EMT()
        energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
        frames.append(atoms)
    return frames


def test_stress_is_trained_and_reported(tmp_path):
    path = tmp_path / "cu_emt.xyz"
    ase.io.write(path, emt_frames(12, 0), format="extxyz")
    config = tiny_config(tmp_path, train_file=str(path), n_valid=3, e0s="least_squares", cutoff=4.0, max_epochs=2)
    trainer = Trainer(config)
    assert trainer.loss.needs_stress
    trainer.run()
    out = tmp_path / "m.json"
    subprocess.run(["eqff", "evaluate", str(tmp_path / "run" / "best.pt"), str(path), "-o", str(out)], check=True,
                   capture_output=True)
    metrics = json.loads(out.read_text())
    assert "stress_mae_meV_per_A3" in metrics and "stress_rmse_meV_per_A3" in metrics


def test_evaluate_names_unknown_elements(tmp_path):
    train(tiny_config(tmp_path, max_epochs=1))
    path = tmp_path / "cu.xyz"
    ase.io.write(path, emt_frames(2, 1), format="extxyz")
    model = load_potential(tmp_path / "run" / "best.pt")
    from eqff.train.evaluation import evaluate_file

    with pytest.raises(UnknownElementError, match=r"holds Cu, which the model does not know"):
        evaluate_file(model, str(path))
    result = subprocess.run(["eqff", "evaluate", str(tmp_path / "run" / "best.pt"), str(path)], capture_output=True, text=True)
    assert result.returncode == 2 and "holds Cu," in result.stderr


@pytest.mark.parametrize("kind, hyperparameters", [("schnet", TINY), ("ace", ACE_TINY)])
def test_ddp_two_processes_equal_one_process(tmp_path, kind, hyperparameters):
    """torchrun with 2 gloo processes, global batch 4, gives the single-process result."""
    common = ["--train-file", ETHANOL, "--model", kind, "--hyperparameters", json.dumps(hyperparameters), "--n-valid", "4",
              "--batch-size", "4", "--no-progress", "--max-epochs", "2", "--dtype", "float64", "--ema-decay", "0",
              "--e0s", data_path("ethanol_isolated_atoms.xyz")]
    subprocess.run([sys.executable, "-m", "eqff", "train", *common, "--output", str(tmp_path / "one")], check=True,
                   capture_output=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
                             "-m", "eqff", "train", *common, "--output", str(tmp_path / "two")],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = weights(tmp_path / "one" / "last.pt"), weights(tmp_path / "two" / "last.pt")
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-9, atol=1e-10)


def test_cosine_schedule_decays_over_the_time_budget():
    """With a wall-time limit, the cosine schedule runs on the fraction of the budget used
    (steps or time, whichever is further): a short run still ends at min_lr."""
    from eqff.train.schedule import LearningRateSchedule

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = LearningRateSchedule(optimizer, 1e-2, 0, "cosine", total_steps=1_000_000, plateau_factor=0.8,
                                    plateau_patience=10, min_lr=1e-6, time_budget_s=100.0)
    schedule.step_batch(elapsed_s=0.0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-2, rel=1e-4)
    schedule.step_batch(elapsed_s=50.0)
    assert schedule.progress() == pytest.approx(0.5)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5 * (1e-2 + 1e-6), rel=1e-4)
    schedule.step_batch(elapsed_s=100.0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-6)
    state = schedule.state_dict()
    again = LearningRateSchedule(optimizer, 1e-2, 0, "cosine", 1_000_000, 0.8, 10, 1e-6, time_budget_s=100.0)
    again.load_state_dict(state)
    assert again.progress() == 1.0  # a resumed run continues from the elapsed time it saved


def test_stage_two_raises_the_energy_weight_and_survives_resume(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, max_epochs=4, stage_two_at=0.5, stage_two_energy_weight=1000.0,
                                  scheduler="cosine", warmup_epochs=0))
    trainer.run()
    assert trainer.stage == 2
    assert trainer.loss.weights["energy"] == 1000.0
    log = open(tmp_path / "run" / "train.log").read()
    assert "stage two from 50% of the budget: energy weight 1000" in log  # announced at the start
    assert log.count(": stage two") == 1 and "epoch 3: stage two" in log
    assert load_checkpoint(tmp_path / "run" / "best.pt")["best_epoch"] >= 3  # the best record restarted
    resumed = Trainer(tiny_config(tmp_path, max_epochs=6, stage_two_at=0.5, scheduler="cosine", warmup_epochs=0,
                                  resume=True))
    resumed.run()
    assert resumed.stage == 2 and resumed.best_stage == 2
    with pytest.raises(ConfigError, match="stage_two_at"):
        tiny_config(tmp_path, stage_two_at=1.5)
    with pytest.raises(ConfigError, match="stage_two_at"):
        tiny_config(tmp_path, stage_two_at="later")


def test_stage_two_auto_follows_the_data_and_off_or_null_keep_one_stage(tmp_path):
    import argparse

    from eqff.cli.train import add_arguments
    from eqff.train.dataset import prepare_data

    assert TrainConfig().stage_two_at == "auto"
    assert prepare_data(tiny_config(tmp_path)).stage_two_at is None  # molecules: one stage
    assert prepare_data(tiny_config(tmp_path, train_file=data_path("mlearn_mo_elastic.xyz"), n_valid=2,
                                    e0s="least_squares")).stage_two_at == 0.5
    for value in ("off", None):
        assert prepare_data(tiny_config(tmp_path, train_file=data_path("mlearn_mo_elastic.xyz"), n_valid=2,
                                        e0s="least_squares", stage_two_at=value)).stage_two_at is None
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert [parser.parse_args(["--stage-two-at", v]).stage_two_at for v in ("0.25", "auto", "off")] == [0.25, "auto", "off"]


def test_energy_shift_refit_fits_a_constant_offset_exactly_and_leaves_forces(tmp_path):
    """Labels = the model's own energies + a per-element constant: the refit finds it (to the
    minimum-norm split where compositions cannot tell elements apart) and forces do not move."""
    from eqff.data.graph import frame_to_graph
    from eqff.train.evaluation import predict_graphs
    from eqff.train.shift_refit import refit_energy_shift
    import eqff

    frames = read_frames(ETHANOL)[:6] + read_frames(data_path("water_192_3.xyz"))[:2]
    torch.manual_seed(0)
    potential = eqff.build_model("schnet", elements=[1, 6, 8], cutoff=4.0, dtype="float64", **TINY)
    graphs = [frame_to_graph(f, 4.0) for f in frames]
    before = predict_graphs(potential, graphs, 4, False)
    offset = {1: 0.37, 6: -1.2, 8: 2.5}  # eV per atom
    for graph, prediction in zip(graphs, before):
        graph["energy"] = np.asarray(prediction["energy"] + sum(offset[int(z)] for z in graph["atomic_numbers"]))
    result = refit_energy_shift(potential, graphs, batch_size=3)
    assert result["train_energy_mae_before_meV_per_atom"] > 100
    assert result["train_energy_mae_after_meV_per_atom"] < 1e-6
    after = predict_graphs(potential, graphs, 4, False)
    for graph, b, a in zip(graphs, before, after):
        assert a["energy"] == pytest.approx(float(graph["energy"]), abs=1e-8)
        np.testing.assert_array_equal(a["forces"], b["forces"])
    assert refit_energy_shift(potential, graphs)["train_energy_mae_before_meV_per_atom"] < 1e-6  # idempotent


def test_energy_shift_refit_is_not_pulled_by_a_few_frames_far_off():
    """Active learning adds broken-bond frames whose energies the model misses by eV: the refit
    (absolute deviations) keeps the shift the other frames agree on and never raises the MAE,
    where least squares moved it toward the outliers and raised it."""
    from eqff.train.shift_refit import least_absolute_deviations

    rng = np.random.default_rng(0)
    composition = np.array([[0.4, 0.4, 0.2]] * 40 + [[2 / 3, 0.0, 1 / 3]] * 40)  # two compositions
    truth = np.array([0.01, -0.02, 0.03])
    residual = composition @ truth + rng.normal(0.0, 1e-3, len(composition))
    residual[[3, 50]] += [0.8, -0.5]  # two frames far off
    fitted = least_absolute_deviations(composition, residual)
    squares, *_ = np.linalg.lstsq(composition, residual, rcond=None)
    mae = lambda x: np.mean(np.abs(residual - composition @ x))
    assert mae(fitted) < min(mae(squares), mae(np.zeros(3)))  # least squares is worse than no shift here
    for rows in (slice(0, 40), slice(40, 80)):  # each composition's total as the good frames say
        assert composition[rows][0] @ fitted == pytest.approx(composition[rows][0] @ truth, abs=1e-3)
    one = np.full((9, 1), 1.0)  # one composition: the median
    assert least_absolute_deviations(one, np.array([0, 0, 0, 0, 1.0, 1, 1, 1, 50]))[0] == pytest.approx(1.0, abs=1e-6)


def test_a_finished_run_refits_the_shift_of_its_saved_models_only(tmp_path):
    summary = train(tiny_config(tmp_path, test_file=ETHANOL))
    refit = summary["energy_shift_refit"]
    assert set(refit) == {"best.pt", "last.pt"}
    for result in refit.values():
        assert result["train_energy_mae_after_meV_per_atom"] <= result["train_energy_mae_before_meV_per_atom"]
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    exported, raw = state["model_state"]["energy_shift"], state["trainer"]["raw_model_state"]["energy_shift"]
    assert not torch.equal(exported, raw)  # the training state is left as trained (exact --resume)
    off = train(tiny_config(tmp_path, "off", refit_energy_shift=False))
    assert "energy_shift_refit" not in off


@pytest.mark.parametrize("model, hyperparameters", [("schnet", TINY), ("ace", ACE_TINY)])
def test_warm_start_from_an_exported_model(tmp_path, model, hyperparameters):
    """init_from takes a shipped model.pt (TorchScript export) as well as a checkpoint: the same
    weights, the same energies and forces, and the same checks on model, cutoff and prior."""
    from eqff.export import export_checkpoint
    from eqff.predict import predict

    train(tiny_config(tmp_path, model=model, hyperparameters=hyperparameters, max_epochs=1))
    checkpoint = str(tmp_path / "run" / "best.pt")
    exported = str(tmp_path / "model.pt")
    export_checkpoint(checkpoint, exported)
    trainer = Trainer(tiny_config(tmp_path, name="fine", model=model, hyperparameters=hyperparameters,
                                  init_from=exported))
    saved = load_checkpoint(checkpoint)["model_state"]
    state = trainer.potential.state_dict()
    assert saved and all(torch.equal(state[k], v) for k, v in saved.items())
    frames = read_frames(ETHANOL)[:2]
    before, after = predict(load_potential(checkpoint), frames), predict(trainer.potential, frames)
    for b, a in zip(before, after):
        assert a["energy"] == pytest.approx(b["energy"], rel=1e-12)
        np.testing.assert_array_equal(a["forces"], b["forces"])
    with pytest.raises(ConfigError, match="the checkpoint has cutoff 5.0 \\(config: 4.0\\)"):
        Trainer(tiny_config(tmp_path, name="fine2", model=model, hyperparameters=hyperparameters,
                            init_from=exported, cutoff=4.0))

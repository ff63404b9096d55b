"""Training survives SIGKILL at random moments and failed checkpoint writes."""
import json
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from eqff.models.io import load_checkpoint
from eqff.train import make_config
from eqff.train.checkpoint import CheckpointWriteError
from eqff.train.trainer import Trainer
from conftest import count, data_path

TINY = {"features": 8, "num_layers": 1, "num_basis": 4}
COMMAND = [sys.executable, "-m", "eqff", "train", "--train-file", data_path("ethanol_20.xyz"), "--model", "schnet",
           "--hyperparameters", json.dumps(TINY), "--n-valid", "4", "--batch-size", "2", "--no-progress",
           "--e0s", data_path("ethanol_isolated_atoms.xyz"), "--max-epochs", "12"]


def raw_weights(path):
    return load_checkpoint(path)["trainer"]["raw_model_state"]


def test_repeated_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    subprocess.run(COMMAND + ["--output", str(tmp_path / "straight")], check=True, capture_output=True)
    run = tmp_path / "killed"
    rng = random.Random(7)
    kills = 0
    for attempt in range(3):
        process = subprocess.Popen(COMMAND + ["--output", str(run)] + (["--resume"] if (run / "last.pt").exists() else []),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # wait until this attempt has made progress, then kill at a random moment
        start_epochs = load_checkpoint(run / "last.pt")["epoch"] if (run / "last.pt").exists() else 0
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None:
            if (run / "last.pt").exists():
                try:
                    if load_checkpoint(run / "last.pt")["epoch"] > start_epochs:
                        break
                except Exception:  # a reader may race the writer's rename: only a *complete* file counts
                    pass
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.6))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        state = load_checkpoint(run / "last.pt")  # never corrupted
        assert state["epoch"] >= 1
    count("SIGKILLs during training", kills)
    assert kills >= 2
    subprocess.run(COMMAND + ["--output", str(run), "--resume"], check=True, capture_output=True)
    a, b = raw_weights(tmp_path / "straight" / "last.pt"), raw_weights(run / "last.pt")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    history = load_checkpoint(run / "last.pt")["history"]
    assert [row["epoch"] for row in history] == list(range(1, 13))
    lines = (run / "metrics.csv").read_text().strip().splitlines()
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(1, 13))


def test_failed_checkpoint_write_keeps_the_previous_one_and_says_why(tmp_path, monkeypatch):
    config = make_config(None, dict(train_file=data_path("ethanol_20.xyz"), model="schnet", hyperparameters=TINY,
                                    n_valid=4, batch_size=4, max_epochs=5, progress=False, output=str(tmp_path / "run"),
                                    e0s=data_path("ethanol_isolated_atoms.xyz")))
    trainer = Trainer(config)
    import eqff.train.checkpoint as checkpoint

    real_save = torch.save
    calls = {"n": 0}

    def full_disk(obj, stream, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            stream.write(b"partial")
            raise OSError(28, "No space left on device")
        return real_save(obj, stream, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    with pytest.raises(CheckpointWriteError, match="No space left on device.*the previous checkpoint is kept"):
        trainer.run()
    monkeypatch.setattr(checkpoint.torch, "save", real_save)
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["epoch"] >= 1
    leftovers = [p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".tmp")]
    assert not leftovers
    count("failed checkpoint writes", 1)

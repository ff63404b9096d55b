"""Random-rotation augmentation (eqff/train/augment.py) and its trainer hook."""
import numpy as np
import pytest
import torch

import eqff
from eqff.data import keys
from eqff.data.frames import Frame
from eqff.data.graph import collate, frame_to_graph
from eqff.train import make_config, train
from eqff.train.augment import augment_rotations, random_rotations, rotate_batch
from conftest import data_path


def test_random_rotations_are_proper_and_distinct():
    q = random_rotations(64, torch.Generator().manual_seed(0))
    identity = torch.eye(3, dtype=torch.float64).expand(64, 3, 3)
    torch.testing.assert_close(q @ q.transpose(1, 2), identity, rtol=0, atol=1e-14)
    torch.testing.assert_close(torch.linalg.det(q), torch.ones(64, dtype=torch.float64), rtol=0, atol=1e-14)
    assert torch.cdist(q.reshape(64, 9), q.reshape(64, 9)).add(torch.eye(64)).min() > 1e-3
    # uniform (Haar): the rotated z axis averages to zero
    many = random_rotations(20000, torch.Generator().manual_seed(1))
    assert float(many[:, :, 2].mean(0).abs().max()) < 0.03


def _labelled_batch(ethanol, water):
    """ethanol + water_192 with labels from an exactly invariant model (segnn), so the labels
    are consistent with the geometry; returns the model and the batch."""
    model = eqff.build_model("segnn", elements=["H", "C", "O"], cutoff=4.0, dtype="float64",
                             features=8, num_layers=1)
    batch = collate([frame_to_graph(Frame.from_atoms(a), 4.0) for a in (ethanol, water)], dtype=torch.float64)
    out = model(batch, compute_forces=True, compute_stress=True)
    batch[keys.ENERGY] = out[keys.ENERGY].detach()
    batch[keys.FORCES] = out[keys.FORCES].detach()
    batch[keys.STRESS] = out[keys.STRESS].detach()
    return model, batch


def test_rotated_batch_is_consistent(ethanol, water):
    """Predictions on the rotated geometry equal the rotated labels: energy unchanged, forces
    rotated, stress rotated; integer cell shifts and the input batch untouched."""
    model, batch = _labelled_batch(ethanol, water)
    original = {k: v.clone() for k, v in batch.items()}
    rotations = random_rotations(2, torch.Generator().manual_seed(3))
    rotated = rotate_batch(batch, rotations)
    for key, value in original.items():
        assert torch.equal(batch[key], value), f"{key} of the input batch changed"
    assert torch.equal(rotated[keys.CELL_SHIFTS], batch[keys.CELL_SHIFTS])
    assert torch.equal(rotated[keys.ENERGY], batch[keys.ENERGY])
    out = model(rotated, compute_forces=True, compute_stress=True)
    torch.testing.assert_close(out[keys.ENERGY], rotated[keys.ENERGY], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out[keys.FORCES], rotated[keys.FORCES], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out[keys.STRESS], rotated[keys.STRESS], rtol=1e-10, atol=1e-14)
    # and the labels really moved: each structure by its own rotation
    n_ethanol = len(ethanol)
    expected = batch[keys.FORCES][:n_ethanol] @ rotations[0].T
    torch.testing.assert_close(rotated[keys.FORCES][:n_ethanol], expected, rtol=1e-12, atol=1e-14)
    assert not torch.allclose(rotated[keys.FORCES][:n_ethanol], batch[keys.FORCES][:n_ethanol])
    torch.testing.assert_close(rotated[keys.CELL][1], batch[keys.CELL][1] @ rotations[1].T)


def test_float32_batch_stays_float32(ethanol):
    batch = collate([frame_to_graph(Frame.from_atoms(ethanol), 5.0)], dtype=torch.float32)
    rotated = augment_rotations(batch)
    assert rotated[keys.POSITIONS].dtype == rotated[keys.FORCES].dtype == torch.float32
    # distances are unchanged by a rotation
    distances = lambda b: torch.cdist(b[keys.POSITIONS], b[keys.POSITIONS])
    torch.testing.assert_close(distances(rotated), distances(batch), rtol=0, atol=1e-5)


def _config(tmp_path, name, **overrides):
    values = dict(train_file=data_path("ethanol_20.xyz"), model="pointconv", max_epochs=1, n_valid=4, batch_size=4,
                  hyperparameters={"features": 8, "kernel_features": 8, "num_layers": 1}, output=str(tmp_path / name),
                  progress=False, e0s=data_path("ethanol_isolated_atoms.xyz"))
    values.update(overrides)
    return make_config(None, values)


def test_trainer_rotates_every_training_batch(tmp_path, monkeypatch):
    import eqff.train.trainer as trainer_module

    assert make_config(None, {"train_file": "x.xyz"}).augment_rotations is False
    calls = []

    def counting(batch):
        calls.append(int(batch[keys.CELL].shape[0]))
        return augment_rotations(batch)

    monkeypatch.setattr(trainer_module, "augment_rotations", counting)
    train(_config(tmp_path, "off"))
    assert calls == []
    train(_config(tmp_path, "on", augment_rotations=True))
    assert calls == [4, 4, 4, 4]  # 16 training frames in batches of 4; validation is not rotated


def test_augmented_runs_are_reproducible(tmp_path):
    from eqff.models.io import load_checkpoint

    for name in ("a", "b"):
        train(_config(tmp_path, name, augment_rotations=True, max_epochs=2))
    a = load_checkpoint(tmp_path / "a" / "last.pt")["model_state"]
    b = load_checkpoint(tmp_path / "b" / "last.pt")["model_state"]
    for key in a:
        assert torch.equal(a[key], b[key]), key

"""eqff learn: the active-learning loop on Cu with EMT as the labeller (2 rounds, a tiny SchNet
committee), an interruption during labelling and its resume, and the parts alone: config
errors, labeller import errors, the diversity filter, the σ contract of the explorer, PySCF."""
import hashlib
import json
import os

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.data import covalent_radii
from ase.calculators.singlepoint import SinglePointCalculator

from eqff.cli.main import main
from eqff.errors import ConfigError
from eqff.learn import make_learn_config, run_active_learning
from eqff.learn.contacts import ContactFloor
from eqff.learn.explore import run_trajectory
from eqff.learn.labellers import make_labeller
from eqff.learn.select import Candidate, select_diverse

TINY = {"features": 8, "num_layers": 1, "num_basis": 4}
LABELLED = []  # positions handed to the labeller in this process (InterruptingEMT)
INTERRUPTED = []


class InterruptingEMT(EMT):
    """EMT that records every structure it labels and, once per process, stops the run (as a
    Ctrl-C or a killed job would) when asked for its ``stop_at``-th label."""

    def __init__(self, stop_at=None, **kwargs):
        super().__init__(**kwargs)
        self.stop_at = stop_at

    def calculate(self, atoms=None, properties=("energy",), system_changes=("positions",)):
        if self.stop_at is not None and not INTERRUPTED and len(LABELLED) == self.stop_at:
            INTERRUPTED.append(True)
            raise KeyboardInterrupt
        LABELLED.append(np.array(atoms.positions))
        super().calculate(atoms, properties, system_changes)


def emt_factory(asap_cutoff=False):
    return EMT(asap_cutoff=asap_cutoff)


def _cu_frames(path, n=12):
    frames = []
    rng = np.random.default_rng(0)
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.61 * (1 + 0.01 * (k % 3 - 1)), cubic=True)
        atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")


def _config(tmp_path, **overrides):
    data = tmp_path / "cu.extxyz"
    if not data.exists():
        _cu_frames(str(data))
    values = dict(train_file=str(data), valid_fraction=0.25, labeller="test_learn:InterruptingEMT",
                  train={"model": "schnet", "hyperparameters": TINY, "cutoff": 4.0, "max_epochs": 3, "batch_size": 3},
                  train_warm={"max_epochs": 2}, n_starts=1, temperatures=[600.0], md_steps=12, timestep_fs=2.0,
                  sigma_threshold=1e-5, sigma_stop=50.0, max_new_frames=4, min_step_gap=3, max_rounds=2,
                  output=str(tmp_path / "run"))
    values.update(overrides)
    return make_learn_config(None, values)


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_loop_labels_resumes_and_never_labels_twice(tmp_path):
    LABELLED.clear()
    INTERRUPTED.clear()
    config = _config(tmp_path, labeller_kwargs={"stop_at": 2})
    user_file = _digest(config.train_file)
    with pytest.raises(KeyboardInterrupt):  # stopped while labelling round 0's third frame
        run_active_learning(config)
    run = tmp_path / "run"
    state = json.loads((run / "state.json").read_text())
    assert (state["round"], state["stage"], state["status"]) == (0, "label", "running")
    assert sorted(os.listdir(run / "round_000" / "labels")) == ["frame_0000.extxyz", "frame_0001.extxyz"]

    with pytest.raises(ConfigError, match="pass --resume"):
        run_active_learning(config)
    state = run_active_learning(_config(tmp_path, labeller_kwargs={"stop_at": 2}, resume=True))
    assert state["status"] == "max_rounds" and [r["round"] for r in state["rounds"]] == [0, 1]

    selected = ase.io.read(run / "round_000" / "selected.extxyz", ":")
    assert len(selected) == len(LABELLED) >= 3  # each selected frame labelled exactly once, across the two sessions
    assert len({p.tobytes() for p in LABELLED}) == len(LABELLED)
    record = json.loads((run / "round_000" / "round.json").read_text())
    assert record["label"]["frames_added"] == len(selected) and record["label"]["labelled_this_session"] == len(selected) - 2
    assert all(p["force_error_max"] >= 0 and p["sigma"] > config.sigma_threshold for p in record["label"]["errors_vs_sigma"])
    steps = {(f["trajectory"], f["step"]) for f in record["select"]["frames"]}
    assert all(abs(a[1] - b[1]) >= 3 for a in steps for b in steps if a != b and a[0] == b[0])
    for stage in ("train", "calibrate", "explore", "label"):
        assert record["times"][stage]["wall_s"] >= 0 and "cpu_s" in record["times"][stage]
    # training time is the members' own (their last.pt counts every session), summed
    assert all(m["wall_s"] > 0 and m["cpu_s"] > 0 for m in record["members"])
    assert record["times"]["train"]["cpu_s"] == pytest.approx(sum(m["cpu_s"] for m in record["members"]), abs=2e-3)

    # the added frames carry EMT's own numbers, once each; the user's file is untouched
    before = ase.io.read(run / "round_000" / "train.extxyz", ":")
    after = ase.io.read(run / "round_001" / "train.extxyz", ":")
    assert len(after) == len(before) + len(selected)
    for atoms in after[len(before):]:
        reference = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
        reference.calc = EMT()
        assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(), rel=1e-10, abs=1e-10)
        assert np.allclose(atoms.get_forces(), reference.get_forces(), atol=1e-10)
    assert _digest(config.train_file) == user_file

    # round 1: warm started from round 0's members, calibrated, explored; the last round labels nothing
    record = json.loads((run / "round_001" / "round.json").read_text())
    assert [m["warm_start_from"] for m in record["members"]] == [
        str(run / "round_000" / f"model_{m}" / "best.pt") for m in range(3)]
    assert record["calibration"]["uncertainty_scale"] > 0 and "label" not in record
    for name in ("sigma_histogram.png", "selected.extxyz", "model_2/best.pt"):
        assert (run / "round_001" / name).exists(), name
    assert (run / "summary.png").exists() and (run / "round_000" / "error_vs_sigma.png").exists()
    assert state["rounds"][0]["frames_added"] == len(selected) and state["rounds"][1]["frames_explored"] == 13

    # a finished run rerun through the command line: nothing trained or labelled again
    mtimes = {p: os.path.getmtime(p) for p in run.glob("round_*/model_*/last.pt")}
    count = len(LABELLED)
    yaml_path = tmp_path / "learn.yaml"
    import yaml

    yaml_path.write_text(yaml.safe_dump(_config(tmp_path, labeller_kwargs={"stop_at": 2}).to_dict()))
    assert main(["learn", str(yaml_path), "--resume"]) == 0
    assert len(LABELLED) == count and mtimes == {p: os.path.getmtime(p) for p in run.glob("round_*/model_*/last.pt")}

    # more rounds asked for: round 1's selection is labelled, round 2 trains and explores
    assert main(["learn", str(yaml_path), "--resume", "--max-rounds", "3"]) == 0
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "max_rounds" and state["round"] == 2 and len(LABELLED) == count + 4
    assert len(ase.io.read(run / "round_002" / "train.extxyz", ":")) == len(after) + 4

    # the warm start (eqff train's init_from): the checkpoint's weights, and a clear error on another model
    from eqff.models.io import load_checkpoint
    from eqff.train import Trainer, make_config

    checkpoint = str(run / "round_000" / "model_0" / "best.pt")
    values = dict(config.train, train_file=str(run / "round_001" / "train.extxyz"), valid_file=str(run / "valid.extxyz"),
                  init_from=checkpoint, progress=False)
    trainer = Trainer(make_config(None, dict(values, output=str(tmp_path / "warm"))))
    saved = load_checkpoint(checkpoint)["model_state"]
    assert all(torch.equal(trainer.potential.state_dict()[k], v) for k, v in saved.items())
    with pytest.raises(ConfigError, match=r"init_from .*best.pt: the checkpoint has cutoff 4.0 \(config: 5.0\)"):
        Trainer(make_config(None, dict(values, cutoff=5.0, output=str(tmp_path / "warm2"))))


class FailingEMT(EMT):
    """EMT that fails on every structure after the first (as an SCF that does not converge)."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=("positions",)):
        if len(LABELLED) >= 1:
            raise RuntimeError("SCF not converged")
        LABELLED.append(np.array(atoms.positions))
        super().calculate(atoms, properties, system_changes)


def test_loop_with_one_model_and_its_last_layer_uncertainty(tmp_path):
    LABELLED.clear()
    INTERRUPTED.clear()
    state = run_active_learning(_config(tmp_path, uncertainty="llpr", committee_size=1))
    assert state["status"] == "max_rounds"
    run = tmp_path / "run"
    for k in (0, 1):
        assert sorted(p for p in os.listdir(run / f"round_00{k}") if p.startswith("model_")) == ["model_0"]
        assert (run / f"round_00{k}" / "model_0" / "best_llpr.pt").exists()
    record = json.loads((run / "round_000" / "round.json").read_text())
    assert record["calibration"]["llpr"]["train_structures"] == 9  # the round's training frames
    assert record["label"]["frames_added"] == len(LABELLED) >= 1
    assert record["calibration"]["calibration_rms_error_over_rms_sigma"] == pytest.approx(1.0, rel=1e-6)


def test_a_failed_label_stops_the_run_or_is_skipped(tmp_path):
    from eqff.data.frames_io import write_atomic
    from eqff.learn.labellers import LabellingError
    from eqff.learn.stages import label_selected

    LABELLED.clear()
    frames = []
    for k in range(2):
        atoms = bulk("Cu", cubic=True)
        atoms.positions[0, 0] += 0.05 * k
        atoms.info.update(sigma=0.3, trajectory=0, step=k)
        atoms.arrays["predicted_forces"] = np.zeros((len(atoms), 3))
        atoms.arrays["forces_std"] = np.full(len(atoms), 0.3)
        frames.append(atoms)
    write_atomic(frames, str(tmp_path / "selected.extxyz"))
    config = make_learn_config(None, dict(train_file="x.xyz", labeller="test_learn:FailingEMT"))
    with pytest.raises(LabellingError, match=r"selected.extxyz: frame 1: the labeller 'test_learn:FailingEMT' failed "
                                             r"\(RuntimeError: SCF not converged\).*skip_failed_labels: true"):
        label_selected(config, str(tmp_path), 0, log=lambda _: None)
    assert os.listdir(tmp_path / "labels") == ["frame_0000.extxyz"]
    config.skip_failed_labels = True
    added, record = label_selected(config, str(tmp_path), 0, log=lambda _: None)
    assert len(added) == 1 and record["failed_frames"] == [1] and len(LABELLED) == 1  # frame 0 was not labelled again
    assert (tmp_path / "labels" / "frame_0001.failed.json").exists()


def test_resume_refuses_a_changed_labeller(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    config = _config(tmp_path)
    (run / "state.json").write_text(json.dumps({"version": 1, "status": "running", "round": 0, "stage": "train",
                                                "config": config.to_dict(), "rounds": []}))
    with pytest.raises(ConfigError, match="other labeller"):
        run_active_learning(_config(tmp_path, labeller="ase.calculators.emt:EMT", resume=True))


def test_config_errors_name_the_key(tmp_path):
    good = dict(train_file="x.xyz", labeller="ase.calculators.emt:EMT")
    cases = [({}, "train_file is required"), ({"train_file": "x.xyz"}, "labeller is required"),
             ({**good, "md_steps": "100"}, "md_steps must be an integer"),
             ({**good, "sigma_stop": 0.01}, r"sigma_stop \(0.01\) must be above sigma_threshold"),
             ({**good, "min_contact_factor": 1.2}, r"min_contact_factor must be in \[0, 1\)"),
             ({**good, "committee_size": 1}, "committee_size must be at least 2"),
             ({**good, "uncertainty": "ensemble"}, "uncertainty must be one of committee, llpr"),
             ({**good, "sigma_treshold": 0.1}, r"'sigma_treshold' \(did you mean 'sigma_threshold'\?\)"),
             ({**good, "train": {"output": "x"}}, r"train: \['output'\] are set by the active-learning loop"),
             ({**good, "train": {"max_epoch": 3}}, r"'max_epoch' \(did you mean 'max_epochs'\?\)"),
             ({**good, "train": {"lr": -1.0}}, "train: lr must be positive")]
    for values, message in cases:
        with pytest.raises(ConfigError, match=message):
            make_learn_config(None, values)
    path = tmp_path / "learn.yaml"
    path.write_text("train_file: x.xyz\nlabeller: ase.calculators.emt:EMT\ntemperatures: [300, hot]\n")
    with pytest.raises(ConfigError, match=f"{path}: temperatures must be a list of numbers"):
        make_learn_config(str(path))


def test_labeller_errors_name_the_string():
    assert isinstance(make_labeller("ase.calculators.emt:EMT", {}), EMT)
    with pytest.raises(ConfigError, match="labeller 'no_such_module_q:Calc': cannot import module 'no_such_module_q'"):
        make_labeller("no_such_module_q:Calc", {})
    with pytest.raises(ConfigError, match="labeller 'ase.calculators.emt:Nope': module 'ase.calculators.emt' has no callable 'Nope'"):
        make_labeller("ase.calculators.emt:Nope", {})
    with pytest.raises(ConfigError, match="write it as 'module:factory'"):
        make_labeller("EMT", {})
    with pytest.raises(ConfigError, match=r"labeller 'test_learn:emt_factory': emt_factory\(\*\*labeller_kwargs\) failed"):
        make_labeller("test_learn:emt_factory", {"no_such_option": 1})


def _candidate(sigma, trajectory, step):
    return Candidate(Atoms("Cu"), sigma, trajectory, step, np.zeros((1, 3)), np.array([sigma]))


def test_selection_takes_the_most_uncertain_frames_apart():
    candidates = [_candidate(s, 0, step) for step, s in enumerate([0.1, 0.5, 0.45, 0.4, 0.2, 0.3, 0.1, 0.35])]
    candidates.append(_candidate(0.42, 1, 2))  # another trajectory: close steps do not matter there
    picked = [(c.trajectory, c.step) for c in select_diverse(candidates, max_frames=10, min_step_gap=3)]
    # highest σ first; (0, 2), (0, 3) are within 3 steps of (0, 1), (0, 5) of (0, 7); (1, 2) is another trajectory
    assert picked == [(0, 1), (1, 2), (0, 7), (0, 4)]
    assert len(select_diverse(candidates, max_frames=2, min_step_gap=3)) == 2
    assert len(select_diverse(candidates, max_frames=10, min_step_gap=0)) == len(candidates)
    # a lost trajectory's last frame comes first, whatever its σ, and only once
    lost_end = _candidate(0.06, 2, 40)
    picked = select_diverse(candidates + [lost_end], max_frames=3, min_step_gap=0, first=[lost_end])
    assert [(c.trajectory, c.step) for c in picked] == [(2, 40), (0, 1), (1, 2)]
    assert len(select_diverse(candidates + [lost_end], max_frames=20, min_step_gap=0, first=[lost_end])) == 10


def test_one_trajectory_cannot_fill_the_round():
    # trajectory 0 is uncertain everywhere; 1 and 2 less so: each pass takes every trajectory's best
    candidates = [_candidate(0.9 - 0.01 * k, 0, 100 * k) for k in range(10)]
    candidates += [_candidate(0.3, 1, 5), _candidate(0.2, 1, 500), _candidate(0.25, 2, 7)]
    picked = [(c.trajectory, c.step) for c in select_diverse(candidates, max_frames=5, min_step_gap=10)]
    assert picked == [(0, 0), (1, 5), (2, 7), (0, 100), (1, 500)]
    # a lost end counts against its trajectory's gap: (0, 0) is 5 steps from it
    lost_end = _candidate(0.05, 0, 5)
    picked = select_diverse(candidates, max_frames=2, min_step_gap=10, first=[lost_end])
    assert [(c.trajectory, c.step) for c in picked] == [(0, 5), (0, 100)]


def test_explorer_needs_an_uncertainty():
    with pytest.raises(ConfigError, match=r"puts no 'forces_std' in its results"):
        run_trajectory(EMT(), bulk("Cu", cubic=True), 0, 0, 300.0, 2, 1.0, 0.01, 0.01, 1.0, seed=0)


class CertainEMT(EMT):
    """EMT that claims to be sure of every force (σ = 0): only the contact floor can stop its MD."""

    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        self.results["forces_std"] = np.zeros(len(self.atoms))


def test_contact_floor_from_the_training_frames():
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    floor = ContactFloor.from_frames([water, bulk("Cu", cubic=True)], factor=0.5)
    assert floor.floor(1, 8) == pytest.approx(0.48) and floor.floor(8, 1) == floor.floor(1, 8)
    assert floor.floor(29, 29) == pytest.approx(0.5 * 3.61 / np.sqrt(2))  # the periodic images count
    assert floor.floor(1, 1) == pytest.approx(0.5 * np.linalg.norm(water.positions[1] - water.positions[2]))
    assert floor.floor(6, 8) == pytest.approx(0.5 * (covalent_radii[6] + covalent_radii[8]))  # never seen: radii
    assert floor.violation(water) is None
    squeezed = water.copy()
    squeezed.positions[1] = [0.3, 0, 0]
    assert floor.violation(squeezed) == ("atoms 0 (O) and 1 (H) 0.300 Å apart, below 0.480 Å (0.5 x the closest O-H "
                                         "pair of the training frames)")
    assert ContactFloor.from_frames([water], factor=0.0).violation(squeezed) is None


def test_explorer_stops_where_atoms_come_closer_than_the_training_frames():
    crystal = bulk("Cu", cubic=True)
    floor = ContactFloor.from_frames([crystal], factor=0.97)  # thermal motion at 2000 K crosses it within steps
    result = run_trajectory(CertainEMT(), crystal, 0, 0, 2000.0, 200, 2.0, 0.01, -1.0, 1.0, seed=0, contacts=floor)
    assert "Å apart, below 2.476 Å" in result.stop_reason and len(result.sigma) < 201
    assert len(result.candidates) == len(result.sigma) - 2  # neither step 0 nor the frame past the floor
    assert all(floor.violation(c.atoms) is None for c in result.candidates)
    free = run_trajectory(CertainEMT(), crystal, 0, 0, 2000.0, 20, 2.0, 0.01, -1.0, 1.0, seed=0)
    assert free.stop_reason == "completed" and len(free.sigma) == 21
    assert result.lost and not free.lost
    assert result.last_sound is result.candidates[-1] and result.last_sound.step == len(result.sigma) - 2
    # σ below the threshold all along: no candidates, but the frame before the contact is still kept
    quiet = run_trajectory(CertainEMT(), crystal, 0, 0, 2000.0, 200, 2.0, 0.01, 0.5, 1.0, seed=0, contacts=floor)
    assert quiet.lost and quiet.candidates == [] and quiet.last_sound.step == len(quiet.sigma) - 2
    assert floor.violation(quiet.last_sound.atoms) is None


def test_pyscf_labeller_without_pyscf_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyscf", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"labeller 'pyscf': .*pip install eqff\[pyscf\]"):
        make_labeller("pyscf", {"functional": "pbe"})


@pytest.mark.slow
def test_pyscf_labeller_energy_and_forces():
    pytest.importorskip("pyscf", reason="pip install eqff[pyscf]")
    from ase.build import molecule

    from eqff.learn.labellers import label

    water = molecule("H2O")
    water.positions[0, 0] += 0.05
    calculator = make_labeller("pyscf", {"functional": "pbe", "basis": "sto-3g"})
    labelled = label(calculator, water, with_stress=False, where="water")
    forces, delta = labelled.get_forces(), 1e-3
    assert np.allclose(forces.sum(axis=0), 0.0, atol=1e-3)  # no net force on a free molecule
    for atom, axis in ((0, 0), (1, 2)):  # forces are -dE/dx in eV/Å (units and sign)
        energies = []
        for sign in (1, -1):
            moved = water.copy()
            moved.positions[atom, axis] += sign * delta
            energies.append(label(calculator, moved, False, "water").get_potential_energy())
        assert forces[atom, axis] == pytest.approx(-(energies[0] - energies[1]) / (2 * delta), abs=5e-3)


def test_pyscf_labeller_keeps_to_its_threads():
    """PySCF's OpenMP pool defaults to every core; `threads` (eqff learn passes its own) bounds it."""
    pyscf = pytest.importorskip("pyscf", reason="pip install eqff[pyscf]")
    from ase.build import molecule

    before = pyscf.lib.num_threads()
    try:
        pyscf.lib.num_threads(2)
        water = molecule("H2O")
        water.calc = make_labeller("pyscf", {"functional": "hf", "basis": "sto-3g"}, threads=1)  # as eqff learn
        assert np.isfinite(water.get_potential_energy())
        assert pyscf.lib.num_threads() == 1
        user_set = make_labeller("pyscf", {"functional": "hf", "basis": "sto-3g", "threads": 2}, threads=1)
        assert user_set.threads == 2  # the user's labeller_kwargs win over eqff's threads
    finally:
        pyscf.lib.num_threads(before)


def test_warm_rounds_fine_tune_at_a_lower_learning_rate(tmp_path):
    """Round 0 trains at train's lr; warm rounds at WARM_LR_FACTOR of it (round 0's peak lr
    unlearns the warm start), unless train_warm names one; a cold loop keeps train's lr."""
    from eqff.learn.training import WARM_LR_FACTOR, member_config

    def lr(config, round_index):
        return member_config(config, round_index, 0, str(tmp_path / f"round_{round_index}"), str(tmp_path / "round_0"),
                             "train.extxyz", "valid.extxyz").lr

    config = _config(tmp_path, train={**_config(tmp_path).train, "lr": 0.004})
    assert lr(config, 0) == pytest.approx(0.004)
    assert lr(config, 1) == pytest.approx(WARM_LR_FACTOR * 0.004)
    assert lr(_config(tmp_path, train_warm={"lr": 0.003}), 2) == pytest.approx(0.003)
    assert lr(_config(tmp_path, warm_start=False), 1) == pytest.approx(0.01)


def test_pyscf_labeller_converges_where_diis_stops():
    """A stretched bond can defeat DIIS; the labeller then goes on with the second-order solver
    and gives the label of a converged SCF."""
    pytest.importorskip("pyscf", reason="pip install eqff[pyscf]")
    from ase.build import molecule

    from eqff.learn.labellers import label

    stretched = molecule("H2O")
    stretched.positions[1] *= 1.6
    few_cycles = {"functional": "hf", "basis": "sto-3g", "threads": 1, "max_cycle": 3}
    diis = make_labeller("pyscf", few_cycles)._method(stretched)
    diis.kernel()
    assert not diis.converged  # DIIS alone stops short here
    reference = label(make_labeller("pyscf", {"functional": "hf", "basis": "sto-3g", "threads": 1}), stretched,
                      False, "water")
    fallback = label(make_labeller("pyscf", few_cycles), stretched, False, "water")
    assert fallback.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(fallback.get_forces(), reference.get_forces(), atol=1e-4)


def test_a_lost_trajectory_is_not_convergence(tmp_path):
    """σ below the threshold everywhere, but the MD runs atoms together: the loop labels the frames
    before the contacts and goes on instead of calling the run converged."""
    LABELLED.clear()
    config = _config(tmp_path, sigma_threshold=40.0, min_contact_factor=0.999, md_steps=30, temperatures=[2000.0])
    state = run_active_learning(config)
    record = json.loads((tmp_path / "run" / "round_000" / "round.json").read_text())
    assert record["explore"]["frames_above_threshold"] == 0 and record["explore"]["trajectories_lost"] == 1
    assert [f["why"] for f in record["select"]["frames"]] == ["last frame of a lost trajectory"]
    assert state["status"] == "max_rounds" and len(LABELLED) == 1

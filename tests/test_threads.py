"""The thread policy (eqff/threads.py): an explicit choice wins, else the cores free of other work."""
import pytest
import torch

import eqff.threads as threads
from eqff.errors import ConfigError
from eqff.train.config import make_config


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_busy_cores_counts_cpus_busy_over_half_the_interval():
    before = {0: (100.0, 1000.0), 1: (100.0, 1000.0), 2: (0.0, 0.0)}
    after = {0: (190.0, 1100.0), 1: (110.0, 1100.0), 2: (100.0, 100.0)}  # cpu0 90 %, cpu1 10 %, cpu2 100 %
    assert threads.busy_cores(before, after, [0, 1]) == 1
    assert threads.busy_cores(before, after, [0, 1, 2]) == 2
    assert threads.busy_cores(before, after, [5]) == 0  # a cpu /proc/stat does not list


@pytest.mark.parametrize("cores, busy, expected", [(2, 0, 2), (2, 1, 1), (2, 2, 1), (8, 3, 5)])
def test_free_cores_decide_without_an_explicit_choice(monkeypatch, restore_threads, cores, busy, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "free_cores", lambda: (cores, busy))
    chosen, why = threads.choose_threads()
    assert chosen == expected == torch.get_num_threads()
    assert f"{busy} busy" in why


def test_explicit_choices_win(monkeypatch, restore_threads):
    monkeypatch.setattr(threads, "free_cores", lambda: pytest.fail("an explicit choice must not sample the cores"))
    assert threads.choose_threads(3) == (3, "as asked") and torch.get_num_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    torch.set_num_threads(2)
    assert threads.choose_threads() == (2, "OMP_NUM_THREADS=2")
    with pytest.raises(ValueError, match="at least 1"):
        threads.choose_threads(0)


def test_sampling_this_machine_gives_a_sane_count():
    cores, busy = threads.free_cores(sample_s=0.05)
    assert cores >= 1 and 0 <= busy <= cores


def test_config_rejects_zero_threads(tmp_path):
    with pytest.raises(ConfigError, match="threads must be at least 1"):
        make_config(None, dict(train_file="x.xyz", threads=0))


def test_deploy_paths_decide_once_per_process(monkeypatch, restore_threads):
    """The calculator and the OpenMM forces share one choice: the first build samples the cores,
    later builds keep it (threads are the process's), an explicit ``threads`` always applies."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_deploy_choice", None)
    samples = []
    monkeypatch.setattr(threads, "free_cores", lambda: samples.append(1) or (2, 1))
    assert threads.deploy_threads() == (1, "2 cores, 1 busy with other work")
    assert threads.deploy_threads() == (1, "2 cores, 1 busy with other work") and len(samples) == 1
    assert threads.deploy_threads(2) == (2, "as asked") and torch.get_num_threads() == 2
    assert threads.deploy_threads() == (2, "as asked") and len(samples) == 1


def test_calculator_applies_the_policy(monkeypatch, restore_threads):
    from eqff import EqffCalculator
    from eqff.models import build_model

    monkeypatch.setattr(threads, "_deploy_choice", None)
    model = build_model("schnet", elements=[1, 6, 8], cutoff=4.0)
    calculator = EqffCalculator(model, threads=1)
    assert (calculator.threads, calculator.threads_reason) == (1, "as asked") and torch.get_num_threads() == 1
    monkeypatch.setattr(threads, "free_cores", lambda: (2, 0))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_deploy_choice", None)
    assert EqffCalculator(model).threads == 2 == torch.get_num_threads()


def test_openmm_forces_apply_the_policy(monkeypatch, restore_threads, ethanol):
    pytest.importorskip("openmm")
    import eqff.openmm
    from eqff.models import build_model

    model = build_model("schnet", elements=[1, 6, 8], cutoff=4.0)
    monkeypatch.setattr(threads, "_deploy_choice", None)
    eqff.openmm.python_force(model, topology=ethanol, threads=1)
    assert torch.get_num_threads() == 1 and threads._deploy_choice == (1, "as asked")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "free_cores", lambda: (2, 0))
    monkeypatch.setattr(threads, "_deploy_choice", None)
    eqff.openmm.python_force(model, topology=ethanol)
    assert torch.get_num_threads() == 2 and threads._deploy_choice == (2, "2 cores, 0 busy with other work")

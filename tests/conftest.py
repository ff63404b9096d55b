import os
import sys

import ase.io
import pytest
import torch

DATA = os.path.join(os.path.dirname(__file__), "data")
# one thread in every test process and every `eqff` subprocess they start (see _one_thread);
# eqff's own choice of threads (eqff/threads.py) respects it and is tested in test_threads.py
os.environ.setdefault("OMP_NUM_THREADS", "1")
# the `eqff` console script the tests run (test_cli, test_train) is this interpreter's: its bin/ first
# on PATH, also when pytest runs as `.venv/bin/python -m pytest` without activating the venv (.ci/run)
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
MODELS = ["ace", "schnet", "egnn", "segnn"]

# openmmtorch (TorchForce) is the `torchforce` extra: it links torch 2.9.1 and fails to import with
# any other torch. On the newest stack (plain `pip install eqff`, newest torch) the tests marked
# `torchforce` are skipped; PythonForce, ASE, training and export are tested on both stacks.
try:
    from eqff.calculators.openmm_forces import import_openmmtorch

    import_openmmtorch()
    HAS_OPENMMTORCH = True
except ImportError:
    HAS_OPENMMTORCH = False
NEEDS_OPENMMTORCH = "needs openmmtorch (the torchforce extra: torch 2.9.1)"


def data_path(name: str) -> str:
    return os.path.join(DATA, name)


def benchmark_module(name: str):
    """A script of benchmarks/ (not a package) imported by path, for tests of its pure functions."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", name + ".py")
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def ethanol():
    return ase.io.read(data_path("ethanol_20.xyz"), 0)


@pytest.fixture(scope="session")
def water():
    return ase.io.read(data_path("water_192_3.xyz"), 0)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """One torch thread: the tests evaluate small systems, where a second thread only waits (and
    on a busy machine makes tiny kernels ~100x slower, DEVELOPERS.md)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_configure(config):
    config.addinivalue_line("markers", "torchforce: needs openmmtorch.TorchForce (the torchforce extra, torch 2.9.1); "
                                       "skipped where openmmtorch does not import")


def pytest_collection_modifyitems(config, items):
    if HAS_OPENMMTORCH:
        return
    skip = pytest.mark.skip(reason=NEEDS_OPENMMTORCH)
    for item in items:
        if item.get_closest_marker("torchforce") is not None:
            item.add_marker(skip)


# What the hardening tests tried (inputs, kills, MD steps), printed at the end of the run.
HARDENING_COUNTS = {}


def count(what: str, n: int = 1) -> None:
    HARDENING_COUNTS[what] = HARDENING_COUNTS.get(what, 0) + n


def pytest_terminal_summary(terminalreporter):
    if HARDENING_COUNTS:
        terminalreporter.write_sep("-", "hardening: what was tried")
        for what, n in sorted(HARDENING_COUNTS.items()):
            terminalreporter.write_line(f"{what}: {n}")

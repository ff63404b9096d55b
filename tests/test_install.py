"""A regular (not editable) install works outside the checkout: build the wheel, install it
into a folder of its own, and run ``eqff demo`` from another folder with the shipped potential.

The wheel is built from a copy of the source tree, not in place: an in-tree build writes
build/ and *.egg-info into the checkout and may carry stale files from an earlier build."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                    ".hypothesis", "runs", "demo", ".whl", ".gl")  # .whl: the GPU suite's archives
# the wheel holds the package and its metadata, nothing of tests/, benchmarks/, md_scripts/, potentials/data
ALLOWED_TOP = ("eqff/", "eqff-")


def _pip(*args, timeout=600):
    result = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _setuptools_version() -> tuple:
    try:
        from importlib.metadata import version

        return tuple(int(part) for part in version("setuptools").split(".")[:2])
    except Exception:  # not installed (Python >= 3.12 venvs), or an odd version string
        return (0,)


def _build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    # offline and faster with this environment's setuptools when it can build this wheel by itself
    # (the SPDX license string needs setuptools 77); else pip's isolated build fetches the
    # build requirements of pyproject.toml
    isolation = ["--no-build-isolation"] if _setuptools_version() >= (77, 0) else []
    _pip("wheel", "--no-deps", *isolation, "-q", "-w", str(tmp_path / "wheel"), str(source))
    (wheel,) = (tmp_path / "wheel").glob("eqff-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel and the folder of its own it is installed into (built once for the tests below)."""
    tmp_path = tmp_path_factory.mktemp("install")
    wheel = _build_wheel(tmp_path)
    target = tmp_path / "site"
    _pip("install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel))
    return wheel, target


def _elsewhere(tmp_path: Path, target: Path):
    """A folder with no eqff and no potentials/ in it or above (tmp_path is outside the checkout),
    and an environment that finds eqff in the installed folder only."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return elsewhere, dict(os.environ, PYTHONPATH=str(target), OMP_NUM_THREADS="1")


def test_wheel_installs_outside_the_checkout(installed, tmp_path):
    wheel, target = installed
    names = zipfile.ZipFile(wheel).namelist()
    junk = [n for n in names if not n.startswith(ALLOWED_TOP)]
    assert not junk, junk[:20]
    # the package list and the potentials are spelled out in pyproject.toml: nothing may be left behind
    modules = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "eqff").rglob("*.py") if "__pycache__" not in p.parts)
    assert not [m for m in modules if m not in names], "eqff modules missing from the wheel (pyproject.toml packages)"
    shipped = [n for n in names if n.startswith("eqff/_potentials/")]
    missing = [p.parent.name for p in sorted(REPO.glob("potentials/*/model.pt"))
               if f"eqff/_potentials/{p.parent.name}/model.pt" not in names]
    assert not missing, f"shipped potentials not in the wheel (pyproject.toml package-dir): {missing}"
    assert not [n for n in shipped if n.endswith((".png", ".py", ".gz"))], "figures, scripts or training data shipped"
    assert "eqff/_potentials/ethanol_ace/MODEL_CARD.md" in shipped

    elsewhere, env = _elsewhere(tmp_path, target)
    origin = subprocess.run([sys.executable, "-c", "import importlib.util; print(importlib.util.find_spec('eqff').origin)"],
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert origin.returncode == 0, origin.stderr
    assert Path(origin.stdout.strip()).resolve() == (target / "eqff" / "__init__.py").resolve(), origin.stdout


# the installed demo with OpenMM (TorchForce or PythonForce, whichever the stack has) and without
# (shipped potential, ASE only)
@pytest.mark.parametrize("openmm", [pytest.param(True, id="openmm"),
                                    pytest.param(False, id="no-openmm")])
def test_demo_runs_outside_the_checkout(openmm, installed, tmp_path):
    _, target = installed
    elsewhere, env = _elsewhere(tmp_path, target)
    result = subprocess.run([sys.executable, "-m", "eqff", "demo", "--ase-steps", "10", "--openmm-steps", "10",
                             "-o", "out"] + ([] if openmm else ["--no-openmm"]),
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    summary = json.loads((elsewhere / "out" / "summary.json").read_text())
    model = Path(summary["model"]).resolve()
    assert model == (target / "eqff" / "_potentials" / "ethanol_ace" / "model.pt").resolve(), model
    assert summary["ase_nve"]["steps"] == 10
    if openmm:
        assert summary["openmm_nvt"]["steps"] == 10

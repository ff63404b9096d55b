"""eqff demo --train end to end (tiny budget) and the missing-model message."""
import json
import subprocess
import sys

import pytest


# the demo runs OpenMM with a TorchForce (torchforce extra) or a PythonForce (newest torch), and
# with --no-openmm only training and ASE
@pytest.mark.parametrize("openmm", [pytest.param(True, id="openmm"),
                                    pytest.param(False, id="no-openmm")])
def test_demo_trains_then_runs_ase_and_openmm(openmm, tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "eqff", "demo", "--train", "--train-minutes", "0.1", "--ase-steps", "40",
                             "--openmm-steps", "40", "-o", str(out)] + ([] if openmm else ["--no-openmm"]),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ase_nve"]["steps"] == 40 and summary["ase_nve"]["steps_per_second"] > 0
    for name in ("ase_nve.traj", "summary.png", "train/model.pt", "train/best.pt"):
        assert (out / name).exists(), name
    assert "ASE NVE" in result.stdout
    if openmm:
        assert summary["openmm_nvt"]["steps"] == 40 and summary["openmm_nvt"]["mean_temperature_K"] > 0
        for name in ("openmm_nvt.dcd", "openmm_topology.pdb"):
            assert (out / name).exists(), name
        assert "OpenMM NVT" in result.stdout
    else:
        assert "openmm_nvt" not in summary


def test_demo_with_a_missing_model_says_what_to_do(tmp_path):
    result = subprocess.run([sys.executable, "-m", "eqff", "demo", "--model", str(tmp_path / "absent.pt"), "-o",
                             str(tmp_path / "d")], capture_output=True, text=True)
    assert result.returncode == 2 and "no such file" in result.stderr

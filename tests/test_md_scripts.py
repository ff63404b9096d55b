"""md_scripts: each answers --help, runs on the shipped data (short here, the defaults in the
slow suite), takes any checkpoint or exported file, and says loudly when its model is untrained."""
import json
import os
import subprocess
import sys

import pytest
import torch

import eqff
from eqff.export import export_potential
from eqff.models.io import potential_state

SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "md_scripts")
NAMES = ["ase_md.py", "openmm_md.py", "openmm_mlmm.py", "nve_check.py"]


def _run(script, *args, cwd, timeout=300):
    result = subprocess.run([sys.executable, os.path.join(SCRIPTS, script), *map(str, args)], cwd=cwd,
                            capture_output=True, text=True, timeout=timeout)
    return result


@pytest.mark.parametrize("script", NAMES)
def test_help(script, tmp_path):
    result = _run(script, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--model" in result.stdout and "usage" in result.stdout


def test_ase_md_runs_on_shipped_data_with_the_shipped_potential(tmp_path):
    result = _run("ase_md.py", "--steps", 6, "--interval", 2, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "UNTRAINED" not in result.stderr
    assert os.path.join("potentials", "ethanol_ace", "model.pt") in result.stdout
    import ase.io

    frames = ase.io.read(tmp_path / "ase_md.traj", ":")
    assert len(frames) == 4 and len(frames[0]) == 9
    assert len((tmp_path / "ase_md.log").read_text().splitlines()) == 5  # header + 4 lines


def test_ase_md_warns_loudly_when_no_potential_fits(tmp_path):
    import ase.io

    molecule = tmp_path / "molecule.xyz"  # no potentials/molecule*/: an untrained model runs
    ase.io.write(molecule, ase.io.read(os.path.join(SCRIPTS, "data", "ethanol.xyz")))
    result = _run("ase_md.py", molecule, "--steps", 4, "--interval", 2, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "UNTRAINED" in result.stderr


def test_scripts_take_checkpoints_and_exported_files(tmp_path):
    model = eqff.build_model("schnet", elements=["C", "H", "O"], cutoff=4.0)
    torch.save(potential_state(model), tmp_path / "best.pt")
    export_potential(model, tmp_path / "ethanol.pt")
    for path in ("best.pt", "ethanol.pt"):
        result = _run("ase_md.py", "--model", tmp_path / path, "--ensemble", "nve", "--steps", 2, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "UNTRAINED" not in result.stderr and f"model: {tmp_path / path}" in result.stdout
    result = _run("ase_md.py", "--model", tmp_path / "nothing.pt", cwd=tmp_path)
    assert result.returncode != 0 and "no such file" in result.stderr
    export_potential(eqff.build_model("schnet", elements=["C", "H"], cutoff=4.0), tmp_path / "ch.pt")
    result = _run("ase_md.py", "--model", tmp_path / "ch.pt", "--steps", 2, cwd=tmp_path)
    assert result.returncode == 2 and "error: atoms [2] are O," in result.stderr
    assert "Traceback" not in result.stderr


def test_openmm_md_npt_writes_dcd_and_log(tmp_path):
    result = _run("openmm_md.py", "--steps", 4, "--interval", 2, "--ensemble", "npt", "--barostat-interval", 2,
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "openmm_md.dcd").stat().st_size > 0
    log = (tmp_path / "openmm_md.log").read_text().splitlines()
    assert log[0].startswith("#") and len(log) == 3 and "100.0%" in log[-1]


def test_openmm_mlmm_runs_ethanol_in_water(tmp_path):
    result = _run("openmm_mlmm.py", "--steps", 4, "--interval", 2, "--minimize", 5,
                  "--implementation", "pythonforce", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "9 ML atoms (ETH)" in result.stdout and "TIP3P waters" in result.stdout
    assert (tmp_path / "openmm_mlmm.dcd").stat().st_size > 0


def test_nve_check_reports_drift_and_fails_above_the_limit(tmp_path):
    # one untrained float64 model for both engines: the comparison is of the engines, not the model
    model = eqff.build_model("schnet", elements=["C", "H", "O"], cutoff=4.0, dtype="float64")
    torch.save(potential_state(model), tmp_path / "model.pt")
    for engine in ("ase", "openmm"):
        result = _run("nve_check.py", "--engine", engine, "--steps", 20, "--dtype", "float64", "--model",
                      tmp_path / "model.pt", "--output", tmp_path / f"{engine}.json", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "meV/atom/ps" in result.stdout
    ase_run, openmm_run = (json.loads((tmp_path / f"{e}.json").read_text()) for e in ("ase", "openmm"))
    assert len(ase_run["total_energy_eV"]) == len(openmm_run["total_energy_eV"]) == 5
    # the same start, one model: the two engines follow the same trajectory (masses differ slightly)
    assert abs(ase_run["total_energy_eV"][-1] - openmm_run["total_energy_eV"][-1]) < 1e-3
    result = _run("nve_check.py", "--steps", 20, "--max-drift", 0, cwd=tmp_path)
    assert result.returncode == 1 and "FAIL" in result.stdout


def test_default_model_is_found_under_potentials(tmp_path, monkeypatch):
    sys.path.insert(0, SCRIPTS)
    try:
        import _common
    finally:
        sys.path.remove(SCRIPTS)
    monkeypatch.setattr(_common, "POTENTIALS", str(tmp_path))
    assert _common.find_potential(["ethanol", "rmd17_ethanol"]) is None
    model = eqff.build_model("schnet", elements=["C", "H", "O"], cutoff=4.0)
    (tmp_path / "rmd17_ethanol").mkdir()
    torch.save(potential_state(model), tmp_path / "rmd17_ethanol" / "last.pt")
    torch.save(potential_state(model), tmp_path / "rmd17_ethanol" / "best.pt")
    assert _common.find_potential(["ethanol", "rmd17_ethanol"]).endswith("best.pt")
    export_potential(model, tmp_path / "rmd17_ethanol" / "model.pt")
    assert _common.find_potential(["ethanol", "rmd17_ethanol"]).endswith("model.pt")


@pytest.mark.slow
@pytest.mark.parametrize("script", NAMES)
def test_defaults(script, tmp_path):
    result = _run(script, cwd=tmp_path, timeout=1200)
    assert result.returncode == 0, result.stderr

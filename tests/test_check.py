"""eqff check: the MD checks on a physical potential (EMT) and on a broken one, and the report."""
import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from eqff.check import md


def test_nve_drift_is_small_for_a_smooth_potential():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    result = md.nve_drift(atoms, EMT(), picoseconds=0.2, timestep_fs=1.0)
    assert result.drift_meV_per_atom_per_ps < 0.5
    assert len(result.times_ps) == len(result.total_energy_eV) > 10


def test_nve_drift_sees_a_too_large_timestep():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    small = md.nve_drift(atoms, EMT(), picoseconds=0.3, timestep_fs=1.0, temperature=1500)
    large = md.nve_drift(atoms, EMT(), picoseconds=0.3, timestep_fs=12.0, temperature=1500)
    assert large.drift_meV_per_atom_per_ps + large.fluctuation_meV_per_atom > 10 * (
        small.drift_meV_per_atom_per_ps + small.fluctuation_meV_per_atom)


def test_nvt_stability_completes_for_emt_and_stops_on_a_blowup():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    ok = md.nvt_stability(atoms, EMT(), 600.0, picoseconds=0.1)
    assert ok.completed and ok.max_bond_stretch < 1.3

    class Exploding(EMT):
        def calculate(self, *args, **kwargs):
            super().calculate(*args, **kwargs)
            self.results["forces"] = self.results["forces"] * 1e4

    bad = md.nvt_stability(atoms, Exploding(), 300.0, picoseconds=0.1)
    assert not bad.completed and "force" in bad.reason


def test_bonds_of_a_molecule():
    i, j, d = md.bonds_of(molecule("CH3CH2OH"))
    assert len(i) == 8  # 2 C-C/C-O... : C-C, C-O, O-H, 5 C-H


def test_check_command_writes_a_report_and_fails_an_untrained_model(tmp_path):
    """An untrained model passes the exactness checks but breaks bonds in NVT: exit status 1."""
    import subprocess
    import sys

    from conftest import data_path

    run = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "eqff", "train", "--train-file", data_path("ethanol_20.xyz"), "--model", "schnet",
                    "--hyperparameters", '{"features": 8, "num_layers": 1}', "--max-epochs", "1", "--n-valid", "4",
                    "--batch-size", "4", "--no-progress", "--output", str(run)], check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-m", "eqff", "check", str(run / "best.pt"), "-o", str(tmp_path / "check"),
                             "--nve-ps", "0.1", "--nvt-ps", "0.2"], capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "thresholds:" in result.stdout and "PASS  rotation" in result.stdout and "FAIL  NVT" in result.stdout
    report = (tmp_path / "check" / "report.md").read_text()
    assert "**FAIL**" in report
    for name in ("cutoff.png", "nve.png", "nvt.png"):
        assert (tmp_path / "check" / name).exists()


def test_the_closest_pair_of_a_metal_is_reported():
    """No pair of a bcc crystal comes within twice the 0.5 Å limit: the watch still reports its
    real closest pair (the nearest-neighbour distance), not nan."""
    from types import SimpleNamespace

    atoms = bulk("Mo", "bcc", a=3.16, cubic=True) * (2, 2, 2)
    extremes = SimpleNamespace(max_force_eV_per_A=0.0, max_bond_stretch=1.0, min_distance_A=np.inf)
    broken = md.watch_step(atoms, np.zeros((len(atoms), 3)), md.bonds_of(atoms), extremes, 50.0, 1.6, 0.5)
    assert broken is None
    assert extremes.min_distance_A == pytest.approx(3.16 * np.sqrt(3) / 2)


def test_a_broken_bond_is_named_with_where_its_light_atom_went():
    """Two waters, the proton of one moved onto the other's oxygen: the watch names the broken
    O-H pair and the oxygen the hydrogen is now bonded to."""
    from types import SimpleNamespace

    water = molecule("H2O")
    pair = water + water
    pair.positions[3:] += (2.8, 0.0, 0.0)  # a second water 2.8 Å away
    bonds = md.bonds_of(pair)
    hydrogen = 1
    pair.positions[hydrogen] = pair.positions[3] + (-0.98, 0.0, 0.0)  # now 0.98 Å from O3, 1.82 Å from O0
    extremes = SimpleNamespace(max_force_eV_per_A=0.0, max_bond_stretch=1.0, min_distance_A=np.inf)
    reason = md.watch_step(pair, np.zeros((6, 3)), bonds, extremes, 50.0, 1.6, 0.5)
    assert reason.startswith("a bond stretched to")
    assert f"(O0-H{hydrogen} at 1.82 Å; H{hydrogen} is now 0.98 Å from O3)" in reason

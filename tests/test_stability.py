"""The MD stability protocol (Fu et al. 2023) of `eqff check --protocol stability`: the bond
criterion on a working and on a force-free potential, g(r) against reference frames, the CLI."""
import json
import os

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from conftest import data_path
from eqff.check.stability import average_rdf, element_pairs, rdf_rmax, stability_run
from eqff.cli.main import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ETHANOL = os.path.join(REPO, "tests", "data", "ethanol_egnn.pt")


class FreeFlight(Calculator):
    """No forces at all: at 500 K the hydrogens fly off within tens of femtoseconds."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": 0.0, "forces": np.zeros((len(self.atoms), 3))}


def test_a_trained_molecule_stays_and_a_force_free_one_falls_apart(ethanol):
    import eqff

    stable = stability_run(ethanol, eqff.EqffCalculator(ETHANOL), temperature=500.0, picoseconds=0.3)
    assert stable.stable and stable.stability_time_ps == 0.3 and stable.bonds == 8
    assert 0.02 < stable.max_bond_deviation_A < 0.5
    broken = stability_run(ethanol, FreeFlight(), temperature=500.0, picoseconds=0.3)
    assert not broken.stable and broken.stability_time_ps < 0.1
    assert "deviated by" in broken.reason and broken.deviations_A[-1] > 0.5
    assert " is now " in broken.reason  # where the bond's lighter atom went


def test_rdf_of_reference_against_itself_is_zero_and_md_is_compared():
    water = ase.io.read(data_path("water_192_3.xyz"), ":")
    assert element_pairs(water[0].numbers) == [("O", "O"), ("O", "H"), ("H", "H")]
    rmax = rdf_rmax(water[0])
    assert 5.0 < rmax < 0.5 * min(water[0].cell.lengths())
    r, g = average_rdf(water, ("O", "H"), rmax, 100)
    assert abs(r[np.argmax(g)] - 1.0) < 0.1  # the covalent O-H peak
    # EMT copper: a run against frames of another run at the same temperature agrees closely;
    # against the perfect lattice (delta peaks) it does not
    from ase import units
    from ase.md.langevin import Langevin

    copper = bulk("Cu", "fcc", a=3.6, cubic=True) * (3, 3, 3)
    reference, hot = [], copper.copy()
    hot.calc = EMT()
    hot.rattle(0.05, seed=5)
    dynamics = Langevin(hot, 2.0 * units.fs, temperature_K=300.0, friction=0.02, rng=np.random.default_rng(5),
                        fixcm=False)
    dynamics.attach(lambda: reference.append(hot.copy()), interval=5)
    dynamics.run(100)
    result = stability_run(copper, EMT(), temperature=300.0, picoseconds=0.2, timestep_fs=2.0,
                           reference_frames=reference[5:], rdf_every_fs=10.0)
    assert result.stable and list(result.rdf) == ["Cu-Cu"]
    lattice = stability_run(copper, EMT(), temperature=300.0, picoseconds=0.2, timestep_fs=2.0,
                            reference_frames=[copper], rdf_every_fs=10.0)
    assert result.rdf["Cu-Cu"].mae < 0.3 < lattice.rdf["Cu-Cu"].mae


def test_cli_writes_the_report(tmp_path):
    out = tmp_path / "stability"
    assert main(["check", ETHANOL, "--protocol", "stability", "--stability-ps", "0.1", "--output", str(out)]) == 0
    report = (out / "stability.md").read_text()
    assert "| 0.1 | yes | 0.100 |" in report and "500 K" in report
    # the command that repeats the run names the temperature and time step it used
    assert "--protocol stability --stability-ps 0.1 --stability-temperature 500 --timestep 0.5`" in report
    assert json.loads((out / "stability.json").read_text())["stable"] is True
    assert (out / "stability.png").exists()


@pytest.mark.filterwarnings("ignore:.*float32 export cast to float64")
def test_a_resumed_run_continues_exactly_where_the_saved_state_stopped(ethanol):
    import copy

    import eqff

    # float64: float32 sums depend on when the neighbour list was last rebuilt, and MD amplifies that

    saved = []
    whole = stability_run(ethanol, eqff.EqffCalculator(ETHANOL, dtype="float64"), picoseconds=0.2,
                          save_state=saved.append, save_every_ps=0.1)
    assert [state["engine"]["nsteps"] for state in saved] == [200, 400, 400]  # every 0.1 ps and at the end
    halfway = copy.deepcopy(saved[0])
    resumed = stability_run(ethanol, eqff.EqffCalculator(ETHANOL, dtype="float64"), picoseconds=0.2, saved=halfway)
    # the thermostat's random numbers continue too: the same trajectory, look by look
    assert resumed.times_ps == whole.times_ps
    np.testing.assert_allclose(resumed.deviations_A, whole.deviations_A, rtol=0, atol=1e-9)
    np.testing.assert_allclose(resumed.temperatures_K, whole.temperatures_K, rtol=0, atol=1e-6)


def test_cli_resumes_extends_and_refuses_to_lose_or_mix_runs(tmp_path, capsys):
    out = tmp_path / "stability"
    base = ["check", ETHANOL, "--protocol", "stability", "--output", str(out)]
    assert main(base + ["--stability-ps", "0.05"]) == 0
    state_file = out / "stability_state.json"
    assert json.loads(state_file.read_text())["run"]["engine"]["nsteps"] == 100
    # extend the finished run to 0.1 ps: the looks go on from 0.05 ps instead of restarting
    assert main(base + ["--stability-ps", "0.1", "--resume"]) == 0
    result = json.loads((out / "stability.json").read_text())
    assert result["times_ps"][-1] == pytest.approx(0.1) and result["times_ps"].count(0.0) == 1
    assert len(result["times_ps"]) == 11  # t = 0 and every 10 fs
    # a run killed before its end (its state says 0.1 of 1 ps) is not overwritten by a new one
    state = json.loads(state_file.read_text())
    state["asked_ps"] = 1.0
    state_file.write_text(json.dumps(state))
    assert main(base + ["--stability-ps", "0.05"]) == 2
    assert "unfinished stability run (0.1 of 1 ps)" in capsys.readouterr().err
    # resuming with another time step would mix two runs
    assert main(base + ["--stability-ps", "1", "--timestep", "0.25", "--resume"]) == 2
    assert "timestep_fs: saved 0.5, now 0.25" in capsys.readouterr().err


def test_the_openmm_engine_runs_the_protocol_and_resumes(tmp_path):
    pytest.importorskip("openmm")
    out = tmp_path / "openmm"
    base = ["check", ETHANOL, "--protocol", "stability", "--engine", "openmm", "--output", str(out)]
    assert main(base + ["--stability-ps", "0.1"]) == 0
    report = (out / "stability.md").read_text()
    assert "OpenMM (CPU platform" in report and "--engine openmm" in report
    assert main(base + ["--stability-ps", "0.2", "--resume"]) == 0
    result = json.loads((out / "stability.json").read_text())
    assert result["stable"] and result["times_ps"][-1] == pytest.approx(0.2) and len(result["times_ps"]) == 21
    assert 0.02 < result["max_bond_deviation_A"] < 0.5
    assert 250 < np.mean(result["temperatures_K"][5:]) < 800  # thermalised near 500 K (9 atoms fluctuate a lot)


def test_bonds_are_measured_from_their_mean_length_over_the_reference_frames(ethanol):
    from eqff.check.stability import bond_lengths

    frames = ase.io.read(data_path("ethanol_20.xyz"), ":")
    i, j, start, described = bond_lengths(frames[0])
    assert described == "its length in the start structure" and len(i) == 8
    i2, j2, mean, described = bond_lengths(frames[0], frames)
    assert described == "its mean length over 20 reference frames"
    assert np.array_equal(i, i2) and np.array_equal(j, j2)
    expected = np.mean([[f.get_distance(a, b) for a, b in zip(i, j)] for f in frames], axis=0)
    np.testing.assert_allclose(mean, expected, atol=1e-12)
    assert np.abs(mean - start).max() > 1e-3  # a single frame is not the mean
    # frames of another molecule (or atom order) are not used
    shuffled = [f[::-1] for f in frames]
    assert bond_lengths(frames[0], shuffled)[3] == "its length in the start structure"

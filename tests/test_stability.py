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
ETHANOL = os.path.join(REPO, "potentials", "ethanol_egnn", "model.pt")


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

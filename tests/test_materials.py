"""Materials checks (eqff check --protocol materials) on EMT copper: the bulk modulus of the
energy fit equals (C11 + 2 C12)/3 from stresses (two independent routes), a vacancy costs
energy and relaxation lowers it, NPT keeps the crystal at 300 K and not at 3000 K."""
import json

import ase.io
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from eqff.check import materials


@pytest.fixture(scope="module")
def copper():
    eos = materials.equation_of_state(bulk("Cu", "fcc", a=3.6, cubic=True), EMT())
    return bulk("Cu", "fcc", a=eos.v0_A3 ** (1 / 3), cubic=True), eos


def test_eos_and_elastic_constants_agree(copper):
    atoms, eos = copper
    assert 40 < eos.v0_A3 < 50
    elastic = materials.cubic_elastic_constants(atoms, EMT())
    assert eos.bulk_modulus_GPa == pytest.approx((elastic["C11"] + 2 * elastic["C12"]) / 3, rel=0.01)
    assert elastic["C11"] > elastic["C12"] > 0 and elastic["C44"] > 0  # Born stability of a cubic crystal


def test_vacancy_and_npt(copper):
    atoms, _ = copper
    vacancy = materials.vacancy_formation_energy(atoms * (2, 2, 2), EMT())
    assert vacancy["converged"] and 0.5 < vacancy["relaxed_eV"] <= vacancy["unrelaxed_eV"] < 2.0
    cold = materials.npt_keeps_crystal(atoms * (2, 2, 2), EMT(), 300.0, picoseconds=0.3)
    hot = materials.npt_keeps_crystal(atoms * (2, 2, 2), EMT(), 4000.0, picoseconds=0.3)
    assert cold.kept_crystal and not hot.kept_crystal


def test_report(copper, tmp_path):
    atoms, _ = copper
    ase.io.write(tmp_path / "cu.xyz", atoms)
    summary = materials.run_materials(EMT(), str(tmp_path / "cu.xyz"), str(tmp_path / "out"), dft=[176.2, 124.9, 81.8],
                                      supercell=2, npt_ps=0.1)
    report = (tmp_path / "out" / "materials.md").read_text()
    assert "| C11 (GPa, clamped-ion) |" in report and "176.200" in report
    assert json.loads((tmp_path / "out" / "materials.json").read_text())["npt"]["kept_crystal"] == summary["npt"]["kept_crystal"]
    with pytest.raises(ValueError, match="three numbers"):
        materials.run_materials(EMT(), str(tmp_path / "cu.xyz"), str(tmp_path / "out"), dft=[1.0, 2.0])

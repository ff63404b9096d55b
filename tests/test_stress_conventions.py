"""mlearn's raw VASP stress (kBar, pressure sign, xx yy zz xy zx yz) becomes ASE's stress when
frames are read; the order and the sign are checked against the data itself: the geometry of
the sheared cells and finite differences of the DFT energies of the strained ones."""
import numpy as np
import pytest
from ase import units

from conftest import data_path
from eqff.data.frames import read_frames
from eqff.data.stress_conventions import from_mlearn_virial
from eqff.errors import DataError

FILE = data_path("mlearn_mo_elastic.xyz")


def _frames():
    import ase.io

    return ase.io.read(FILE, ":"), read_frames(FILE)  # the default key "stress" falls back to the raw key


def test_shear_lands_in_the_sheared_component_with_the_strain_sign():
    images, frames = _frames()
    reference = next(a for a in images if a.info["description"] == "Ground state crystal").cell.array
    sheared = 0
    for atoms, frame in zip(images, frames):
        strain = np.linalg.solve(reference, atoms.cell.array) - np.eye(3)
        strain = 0.5 * (strain + strain.T)
        shear = np.abs(np.triu(strain, 1))
        i, j = np.unravel_index(np.argmax(shear), (3, 3))
        if shear[i, j] < 0.005:  # the unsheared cells
            continue
        sheared += 1
        off = np.abs(np.triu(frame.stress, 1))
        assert np.unravel_index(np.argmax(off), (3, 3)) == (i, j)
        assert np.sign(frame.stress[i, j]) == np.sign(strain[i, j])  # tension-positive, as ASE
    assert sheared == 4


def test_axial_stress_is_the_energy_derivative():
    """σ_xx = (1/V) ∂E/∂ε' with ε' the strain of the current cell, from a polynomial fit of the
    DFT energies of the uniaxially strained cells."""
    images, frames = _frames()
    rows = [(float(a.info["description"].split("strain")[1]) if "mode 1" in a.info["description"] else 0.0, a, f)
            for a, f in zip(images, frames) if "mode 1" in a.info["description"] or "Ground" in a.info["description"]]
    strains = np.array([r[0] for r in rows])
    energies = np.array([r[2].energy for r in rows])
    assert len(strains) == 11
    fit = np.polynomial.Polynomial.fit(strains, energies, 5)
    for strain, atoms, frame in rows:
        if abs(strain) > 0.06 or strain == 0.0:
            continue
        expected = fit.deriv()(strain) * (1 + strain) / atoms.get_volume()
        assert frame.stress[0, 0] == pytest.approx(expected, rel=0.05), strain
        assert abs(frame.stress[0, 0]) > 1.0 * units.GPa  # 1 GPa or more: a test that can fail on the sign


def test_units_and_shape_errors():
    stress = from_mlearn_virial(np.array([10.0, 20.0, 30.0, 1.0, 2.0, 3.0]), "x")
    assert stress[0, 0] == pytest.approx(-1.0 * units.GPa)  # 10 kBar compressive = -1 GPa in ASE's sign
    assert stress[0, 2] == stress[2, 0] == pytest.approx(-0.2 * units.GPa)  # zx fifth
    assert stress[1, 2] == pytest.approx(-0.3 * units.GPa)  # yz sixth
    with pytest.raises(DataError, match="has 5 numbers; expected 6"):
        from_mlearn_virial(np.zeros(5), "frame 3")

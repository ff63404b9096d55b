"""Reading frames: keys, units, isolated atoms, and errors that name file, frame and key."""
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
import ase.io

from eqff.data import read_frames, read_md17_npz
from eqff.data.graph import frames_to_batch
from eqff.errors import DataError
from eqff.units import KCAL_PER_MOL_TO_EV
from conftest import data_path


def test_reads_extxyz_energy_and_forces_from_single_point_calculator():
    frames = read_frames(data_path("ethanol_20.xyz"))
    atoms = ase.io.read(data_path("ethanol_20.xyz"), 3)
    assert len(frames) == 20
    assert frames[3].energy == pytest.approx(atoms.get_potential_energy())
    np.testing.assert_allclose(frames[3].forces, atoms.get_forces())
    assert frames[3].stress is None and not frames[3].is_isolated_atom


def test_isolated_atoms_are_recognised_and_need_no_forces():
    frames = read_frames(data_path("ethanol_isolated_atoms.xyz"))
    assert all(f.is_isolated_atom for f in frames)
    assert [f.numbers[0] for f in frames] == [1, 6, 8, 7]


def test_custom_keys_in_info_and_arrays(tmp_path):
    atoms = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    atoms.info["REF_energy"] = -14.2
    atoms.arrays["REF_forces"] = np.arange(9.0).reshape(3, 3)
    atoms.info["REF_stress"] = np.arange(6.0)
    path = tmp_path / "custom.xyz"
    ase.io.write(path, atoms, format="extxyz")
    frame = read_frames(path, energy_key="REF_energy", forces_key="REF_forces", stress_key="REF_stress")[0]
    assert frame.energy == -14.2
    np.testing.assert_array_equal(frame.forces, np.arange(9.0).reshape(3, 3))
    assert frame.stress.shape == (3, 3) and frame.stress[1, 2] == 3.0  # Voigt yz -> [1,2]


def test_missing_key_names_file_frame_and_key(tmp_path):
    frames = [Atoms("H2", positions=[[0, 0, 0], [0.7, 0, 0]]) for _ in range(3)]
    for k, atoms in enumerate(frames):
        if k != 2:
            atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((2, 3)))
    path = tmp_path / "missing.xyz"
    ase.io.write(path, frames, format="extxyz")
    with pytest.raises(DataError, match=r"missing.xyz: frame 2: no energy under key 'energy'"):
        read_frames(path)
    with pytest.raises(DataError, match=r"frame 0: no forces under key 'force'"):
        read_frames(path, forces_key="force")


def test_non_finite_values_name_the_atom(tmp_path):
    atoms = Atoms("H2", positions=[[0, 0, 0], [0.7, 0, 0]])
    forces = np.zeros((2, 3))
    forces[1, 2] = np.nan
    atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=forces)
    path = tmp_path / "nan.xyz"
    ase.io.write(path, atoms, format="extxyz")
    with pytest.raises(DataError, match=r"nan.xyz: frame 0: key 'forces' has a non-finite value at atom 1"):
        read_frames(path)


def test_unreadable_file_is_a_data_error(tmp_path):
    path = tmp_path / "broken.xyz"
    path.write_text("3\nnot an xyz header\nH 0 0\n")
    with pytest.raises(DataError, match="broken.xyz"):
        read_frames(path)
    with pytest.raises(DataError, match="no such file"):
        read_frames(tmp_path / "absent.xyz")


def test_md17_npz_is_converted_from_kcal_per_mol(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "rmd17_test.npz"
    np.savez(path, nuclear_charges=np.array([6, 1, 1]), coords=rng.normal(size=(4, 3, 3)),
             energies=np.array([-100.0, -101.0, -102.0, -103.0]), forces=np.ones((4, 3, 3)))
    frames = read_md17_npz(str(path))
    assert len(frames) == 4
    assert frames[1].energy == pytest.approx(-101.0 * KCAL_PER_MOL_TO_EV)
    assert frames[0].forces[0, 0] == pytest.approx(KCAL_PER_MOL_TO_EV)
    assert KCAL_PER_MOL_TO_EV == pytest.approx(0.0433641, rel=1e-5)
    assert len(read_frames(path)) == 4
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(DataError, match="not an MD17"):
        read_frames(tmp_path / "other.npz")


def test_batch_offsets_edges_and_keeps_labels():
    frames = read_frames(data_path("ethanol_20.xyz"), index=":3")
    batch = frames_to_batch(frames, cutoff=5.0)
    assert batch["positions"].shape == (27, 3)
    assert batch["edge_index"].max() == 26 and batch["edge_index"][:, -1].min() >= 18
    assert batch["energy"].shape == (3,) and bool(batch["has_forces"].all())
    assert not bool(batch["has_stress"].any())

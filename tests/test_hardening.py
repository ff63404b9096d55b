"""Bad input never gives a wrong number: fuzzed files, structures and model files either give
the right answer or an eqff error that names the file, frame, atom or key."""
import os
import zipfile

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eqff
from eqff.data import read_frames
from eqff.errors import DataError, EqffError, ModelFileError
from eqff.export import export_potential, load_exported
from eqff.models.io import load_potential, potential_state
from conftest import count, data_path

ETHANOL = data_path("ethanol_20.xyz")
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def reference_frames():
    return read_frames(ETHANOL)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return eqff.build_model("schnet", elements=["H", "C", "O"], cutoff=4.0, dtype="float64")


def same_frames(got, expected):
    return all(np.array_equal(a.positions, b.positions) and a.energy == b.energy and np.array_equal(a.forces, b.forces)
               for a, b in zip(got, expected))


@FUZZ
@given(cut=st.floats(0.0, 1.0))
def test_truncated_file_reads_correct_prefix_or_fails_clearly(tmp_path_factory, reference_frames, cut):
    data = open(ETHANOL, "rb").read()
    path = tmp_path_factory.mktemp("cut") / "cut.xyz"
    path.write_bytes(data[: int(cut * len(data))])
    count("truncated files read")
    try:
        frames = read_frames(path)
    except DataError as error:
        assert "cut.xyz" in str(error)
        return
    assert len(frames) <= len(reference_frames) and same_frames(frames, reference_frames)


@pytest.mark.parametrize("frame", [0, 7, 19])
def test_file_cut_inside_a_number_is_refused(tmp_path, frame):
    """The dangerous truncation: the last line of a frame cut inside its last number still
    parses, with a shorter (wrong) number."""
    lines = open(ETHANOL).read().splitlines(keepends=True)
    keep = "".join(lines[: frame * 11 + 11])[:-4]  # drop the newline and 3 digits
    path = tmp_path / "cut.xyz"
    path.write_text(keep)
    count("truncated files read")
    with pytest.raises(DataError, match="cut.xyz: does not end with a newline"):
        read_frames(path)


@FUZZ
@given(frame=st.integers(0, 19), atom=st.integers(0, 8), column=st.integers(1, 6),
       value=st.sampled_from(["nan", "inf", "-inf", "NaN"]))
def test_non_finite_value_anywhere_is_named(tmp_path_factory, frame, atom, column, value):
    lines = open(ETHANOL).read().splitlines(keepends=True)
    row = frame * 11 + 2 + atom
    fields = lines[row].split()
    fields[column] = value
    lines[row] = " ".join(fields) + "\n"
    path = tmp_path_factory.mktemp("nan") / "nan.xyz"
    path.write_text("".join(lines))
    count("non-finite values injected")
    key = "positions" if column <= 3 else "forces"
    with pytest.raises(DataError, match=rf"nan.xyz: frame {frame}: key '{key}' has a non-finite value at atom {atom}"):
        read_frames(path)


@FUZZ
@given(line=st.integers(0, 219), junk=st.sampled_from(["", "garbage here\n", "7\n", "C 0 0\n", "\x00\x01\x02\n"]))
def test_damaged_line_gives_data_error_or_correct_frames(tmp_path_factory, reference_frames, line, junk):
    lines = open(ETHANOL).read().splitlines(keepends=True)
    lines[line] = junk
    path = tmp_path_factory.mktemp("damaged") / "damaged.xyz"
    path.write_text("".join(lines))
    count("damaged files read")
    try:
        frames = read_frames(path)
    except DataError as error:
        assert "damaged.xyz" in str(error)
        return
    # a damaged comment line can leave a readable file: its numbers must still be the true ones
    by_energy = {f.energy: f for f in reference_frames}
    for got in frames:
        if got.energy in by_energy:
            assert np.array_equal(got.positions, by_energy[got.energy].positions)


def random_structure(draw):
    n = draw(st.integers(0, 6))
    numbers = draw(st.lists(st.sampled_from([1, 6, 8, 8, 17]), min_size=n, max_size=n))
    positions = np.array(draw(st.lists(st.lists(st.floats(-3, 3), min_size=3, max_size=3), min_size=n, max_size=n))).reshape(n, 3)
    if n and draw(st.booleans()):
        positions[draw(st.integers(0, n - 1))] = positions[0]  # a coincident pair
    if n and draw(st.integers(0, 9)) == 0:
        positions[0, draw(st.integers(0, 2))] = draw(st.sampled_from([np.nan, np.inf]))
    cell = np.array(draw(st.lists(st.floats(-4, 4), min_size=9, max_size=9))).reshape(3, 3)
    if draw(st.booleans()):
        cell = np.diag(draw(st.lists(st.floats(0.5, 8), min_size=3, max_size=3)))
    pbc = draw(st.lists(st.booleans(), min_size=3, max_size=3))
    return Atoms(numbers=numbers, positions=positions, cell=cell, pbc=pbc)


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_calculator_gives_finite_numbers_or_an_eqff_error(model, data):
    atoms = random_structure(data.draw)
    atoms.calc = eqff.EqffCalculator(model, dtype="float64")
    count("random structures through the ASE calculator")
    try:
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
    except EqffError as error:
        assert str(error)
        return
    assert np.isfinite(energy) and np.all(np.isfinite(forces))
    if atoms.pbc.all():
        assert np.all(np.isfinite(atoms.get_stress()))


def test_specific_bad_structures_name_what_is_wrong(model):
    cases = [
        (Atoms(), "has no atoms"),
        (Atoms("OH", positions=[[0, 0, 0], [np.nan, 0, 0]]), "key 'positions' has a non-finite value at atom 1"),
        (Atoms("OH", positions=[[0, 0, 0], [0.5, 0, 0]], cell=[[2, 0, 0], [0, 2, 0], [2, 2, 0]], pbc=True), "zero volume"),
        (Atoms("OH", positions=[[0, 0, 0], [0.5, 0, 0]], cell=[2, 2, 0], pbc=True), "lattice vector(s) [2] are zero"),
        (Atoms("OHH", positions=[[0, 0, 0], [0.7, 0, 0], [0.7, 0, 0]]), "atoms 1 and 2 are 0 Å apart"),
        (Atoms("OCl", positions=[[0, 0, 0], [1.5, 0, 0]]), "are Cl,"),
    ]
    for atoms, message in cases:
        atoms.calc = eqff.EqffCalculator(model, dtype="float64")
        count("named bad structures")
        with pytest.raises(EqffError) as error:
            atoms.get_potential_energy()
        assert message in str(error.value), (message, str(error.value))


def test_cutoff_larger_than_the_cell_is_exact(model):
    """Not an error: a cell thinner than the cutoff sees many images, and equals its supercell."""
    small = Atoms("OH", positions=[[0, 0, 0], [0.97, 0.1, 0.2]], cell=np.diag([2.5, 2.6, 2.7]), pbc=True)
    big = small.repeat((2, 2, 2))
    small.calc = eqff.EqffCalculator(model, dtype="float64")
    big.calc = eqff.EqffCalculator(model, dtype="float64")
    assert big.get_potential_energy() == pytest.approx(8 * small.get_potential_energy(), rel=1e-10)


def test_overlapping_atoms_in_training_data_name_file_and_frame(tmp_path):
    from eqff.data.graph import frame_to_graph

    frames = ase.io.read(ETHANOL, ":3")
    frames[2].positions[4] = frames[2].positions[3]
    path = tmp_path / "overlap.xyz"
    ase.io.write(path, frames, format="extxyz")
    with pytest.raises(DataError, match=r"overlap.xyz: frame 2: atoms (3 and 4|4 and 3) are 0 Å apart"):
        [frame_to_graph(f, 5.0) for f in read_frames(path)]


# ----- model files -----

@pytest.fixture(scope="module")
def model_files(tmp_path_factory, model):
    folder = tmp_path_factory.mktemp("models")
    export_potential(model, folder / "model.pt")
    torch.save(potential_state(model), folder / "checkpoint.pt")
    return folder


@FUZZ
@given(fraction=st.floats(0.0, 0.999), which=st.sampled_from(["model.pt", "checkpoint.pt"]))
def test_truncated_model_files_are_rejected(tmp_path_factory, model_files, fraction, which):
    data = (model_files / which).read_bytes()
    path = tmp_path_factory.mktemp("t") / which
    path.write_bytes(data[: int(fraction * len(data))])
    count("truncated model files")
    with pytest.raises(ModelFileError, match=which):
        load_potential(path)


@FUZZ
@given(entry=st.integers(0, 1000), offset=st.integers(0, 10_000), which=st.sampled_from(["model.pt", "checkpoint.pt"]))
def test_tampered_weights_are_rejected(tmp_path_factory, model_files, entry, offset, which):
    source = zipfile.ZipFile(model_files / which)
    members = [i for i in source.infolist() if "/data/" in i.filename and i.file_size > 0]
    target = members[entry % len(members)]
    path = tmp_path_factory.mktemp("tampered") / which
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == target.filename:
                data = bytearray(data)
                data[offset % len(data)] ^= 0x10
                data = bytes(data)
            out.writestr(item, data)
    count("tampered model files")
    with pytest.raises(ModelFileError, match="(checksum|cannot read)"):
        load_potential(path)


def test_foreign_and_future_files_say_what_they_are(tmp_path, model):
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 1)), tmp_path / "foreign.pt")
    with pytest.raises(ModelFileError, match="not an eqff checkpoint|not an eqff export"):
        load_potential(tmp_path / "foreign.pt")
    state = potential_state(model)
    state.update(format="eqff-checkpoint-v9", eqff_version="9.0.0")
    torch.save(state, tmp_path / "future.pt")
    with pytest.raises(ModelFileError, match=r"written by eqff 9.0.0 in format 'eqff-checkpoint-v9'.*use eqff 9.0.0"):
        load_potential(tmp_path / "future.pt")
    count("foreign/future model files", 2)


def test_pickled_objects_are_not_executed(tmp_path):
    """weights_only loading refuses arbitrary pickled objects (nothing smuggled in runs)."""
    class Smuggled:
        def __reduce__(self):
            return (os.system, ("echo SMUGGLED > " + str(tmp_path / "ran"),))

    torch.save({"format": "eqff-checkpoint-v1", "payload": Smuggled()}, tmp_path / "evil.pt")
    with pytest.raises(ModelFileError):
        load_potential(tmp_path / "evil.pt")
    assert not (tmp_path / "ran").exists()


def test_exported_compute_refuses_bad_inputs(model_files):
    module = load_exported(model_files / "model.pt")
    numbers = torch.tensor([8, 1, 1])
    positions = torch.tensor([[0.0, 0, 0], [0.96, 0, 0], [-0.2, 0.9, 0]], dtype=torch.float64)
    cell, pbc = torch.zeros(3, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.bool)
    good = module.compute(numbers, positions, cell, pbc)
    assert torch.isfinite(good["energy"]).all()
    for bad, message in [
        (positions.clone().fill_(float("nan")), "finite"),
        (torch.tensor([[0.0, 0, 0], [0.96, 0, 0], [0.96, 0, 0]], dtype=torch.float64), "coincident"),
    ]:
        with pytest.raises(Exception, match=message):
            module.compute(numbers, bad, cell, pbc)
    with pytest.raises(Exception, match="not elements of this model"):
        module.compute(torch.tensor([8, 1, 17]), positions, cell, pbc)
    count("bad inputs to exported models", 3)

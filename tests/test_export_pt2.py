"""The TorchScript-free export (torch.export + AOTInductor, ``.pt2``): the eager model's numbers
for structures of different sizes from one compiled package, the ASE calculator and
openmm.PythonForce on it, its metadata, a fresh process with torch alone, clear errors.

One schnet package is compiled per module (via ``eqff export --format pt2``, ~30 s); ace and
egnn (minutes of C++ compilation each) are in the slow tests."""
import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase import Atoms

import eqff
import eqff.openmm
from eqff import units
from eqff.cli.main import main
from eqff.check.report import run_check
from eqff.errors import ConfigError, EqffError, ModelFileError
from eqff.export import (PT2_FORMAT, Pt2Potential, export_potential, export_pt2, is_exported, is_pt2, load_exported,
                         read_metadata)
from eqff.models.io import potential_state
from eqff.predict import predict

TOLERANCE = 1e-6  # float64, relative (seen: ~1e-14)


def _model(kind, elements=("C", "H", "O"), dtype="float64"):
    torch.manual_seed(2)
    model = eqff.build_model(kind, elements=list(elements), cutoff=4.0, dtype=dtype)
    with torch.no_grad():
        model.energy_shift.copy_(torch.linspace(-3.0, -1.0, len(model.energy_shift)))
    return model


def _water_box(water, n_molecules=16):
    """The first molecules of water_192 (each O with its two nearest H) in its full 12.44 Å box,
    a few atoms outside it."""
    oxygens = np.flatnonzero(water.numbers == 8)[:n_molecules]
    hydrogens = np.flatnonzero(water.numbers == 1)
    order = []
    for o in oxygens:
        distances = water.get_distances(o, hydrogens, mic=True)
        order += [o, *hydrogens[np.argsort(distances)[:2]]]
    atoms = water[order]
    atoms.positions[:4] += atoms.cell.array[0] - 2 * atoms.cell.array[2]
    return atoms


def _relative(got, want):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    return float(np.abs(got - want).max()) / max(float(np.abs(want).max()), 1e-12)


def _compare(exported, model, structures, tolerance=TOLERANCE, stress=False):
    """Largest relative error of energy, forces (and stress) of ``exported`` vs eager ``model``."""
    got = predict(exported, structures, compute_stress=stress)
    want = predict(model, structures, compute_stress=stress)
    worst = 0.0
    for atoms, g, w in zip(structures, got, want):
        errors = {"energy": abs(float(g["energy"]) - float(w["energy"])) / max(abs(float(w["energy"])), 1.0),
                  "forces": _relative(g["forces"], w["forces"]),
                  "atomic_energies": _relative(g["atomic_energies"], w["atomic_energies"])}
        if stress and atoms.pbc.all():
            errors["stress"] = _relative(g["stress"], w["stress"])
        assert max(errors.values()) < tolerance, f"{len(atoms)} atoms: {errors}"
        worst = max(worst, *errors.values())
    return worst


@pytest.fixture(scope="module")
def schnet_pt2(tmp_path_factory):
    """(eager model, .pt2 path, trainer-like checkpoint path), the package written by the CLI."""
    folder = tmp_path_factory.mktemp("pt2")
    model = _model("schnet")
    state = potential_state(model)
    state.update({"data_hash": "0123456789abcdef", "train_config": {"train_file": "/data/train.xyz", "seed": 3},
                  "epoch": 7})
    torch.save(state, folder / "best.pt")
    assert main(["export", str(folder / "best.pt"), "-o", str(folder / "model.pt2")]) == 0  # *.pt2: pt2 format
    return model, str(folder / "model.pt2"), str(folder / "best.pt")


def test_metadata_round_trip(schnet_pt2, tmp_path):
    model, path, _ = schnet_pt2
    assert is_pt2(path) and is_exported(path)
    info = read_metadata(path)
    assert info["format"] == PT2_FORMAT and info["kind"] == "schnet"
    assert info["elements"] == [1, 6, 8] and info["element_symbols"] == ["H", "C", "O"]
    assert info["cutoff"] == 4.0 and info["dtype"] == "float64"
    assert info["model_config"] == model.config()
    assert info["training_data_hash"] == "0123456789abcdef" and info["training"]["epoch"] == 7
    assert info["units"]["forces"] == "eV/angstrom" and info["inputs"][0] == "positions"
    assert info["weights_sha256"] == potential_state(model)["model_state_sha256"]
    loaded = load_exported(path)
    assert isinstance(loaded, Pt2Potential) and loaded.eqff_metadata == info
    # the same JSON inside the compiled library, for programs that load the package with torch alone
    assert json.loads(loaded.runner.get_metadata()["eqff_metadata.json"]) == info
    export_potential(model, tmp_path / "model.pt")  # a TorchScript export is not a .pt2
    assert is_exported(tmp_path / "model.pt") and not is_pt2(tmp_path / "model.pt")


def test_numbers_of_two_sizes_from_one_package(schnet_pt2, ethanol, water):
    """One package: a 9-atom molecule, a 48-atom periodic box (atoms outside it), 1 and 2 atoms."""
    model, path, _ = schnet_pt2
    exported = load_exported(path)
    lone = Atoms("O", positions=[[0.0, 0.0, 0.0]])
    apart = Atoms("CO", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 9.0]])  # no edges: padded with ghost atoms
    _compare(exported, model, [ethanol, _water_box(water), lone, apart, ethanol[:2]], stress=True)


def test_program_runs_with_torch_alone(schnet_pt2, ethanol):
    """The package in a fresh process that imports torch only (no eqff, e3nn, ase)."""
    model, path, _ = schnet_pt2
    from eqff.data.neighbors import neighbor_list

    edge_index, shifts = neighbor_list(ethanol.positions, ethanol.cell.array, ethanol.pbc, model.cutoff)
    inputs = {"positions": ethanol.positions.tolist(), "numbers": ethanol.numbers.tolist(),
              "edge_index": edge_index.tolist(), "shifts": shifts.tolist()}
    script = f"""
import json, sys, torch
d = json.loads(sys.stdin.read())
runner = torch._inductor.aoti_load_package({path!r})
energy, atomic, forces, virial = runner(torch.tensor(d["positions"], dtype=torch.float64),
    torch.tensor(d["numbers"]), torch.tensor(d["edge_index"]), torch.tensor(d["shifts"], dtype=torch.float64),
    torch.zeros(3, 3, dtype=torch.float64))
assert not [m for m in sys.modules if m.split(".")[0] in ("eqff", "e3nn", "ase")]
print(json.dumps({{"energy": float(energy), "forces": forces.tolist(),
                  "meta": json.loads(runner.get_metadata()["eqff_metadata.json"])["kind"]}}))
"""
    result = subprocess.run([sys.executable, "-c", script], input=json.dumps(inputs), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    reference = predict(model, [ethanol])[0]
    assert out["meta"] == "schnet"
    assert abs(out["energy"] - float(reference["energy"])) < TOLERANCE * abs(float(reference["energy"]))
    assert _relative(out["forces"], reference["forces"]) < TOLERANCE


def test_ase_calculator_on_pt2(schnet_pt2, ethanol, water):
    model, path, _ = schnet_pt2
    for atoms in (ethanol.copy(), _water_box(water)):
        atoms.calc = eqff.EqffCalculator(path)  # default dtype float32: the package computes in its float64
        reference = atoms.copy()
        reference.calc = eqff.EqffCalculator(model, dtype="float64")
        assert atoms.calc.dtype == torch.float64
        assert abs(atoms.get_potential_energy() - reference.get_potential_energy()) < \
            TOLERANCE * abs(reference.get_potential_energy())
        assert _relative(atoms.get_forces(), reference.get_forces()) < TOLERANCE
        assert _relative(atoms.get_potential_energies(), reference.get_potential_energies()) < TOLERANCE
        if atoms.pbc.all():
            assert _relative(atoms.get_stress(), reference.get_stress()) < TOLERANCE


def _system(atoms):
    """The System eqff.openmm.system_from_atoms builds (masses, box), no force yet, in the
    order of ``atoms`` (the tests give positions in that order)."""
    return eqff.openmm.system_from_atoms(atoms, molecules=False).system


def _evaluate(system, positions_nm):
    import openmm
    from openmm import unit

    context = openmm.Context(system, openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions_nm)
    state = context.getState(getEnergy=True, getForces=True)
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            np.asarray(state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)))


def test_python_force_on_pt2(schnet_pt2, ethanol, water):
    """PythonForce on the package: the eager model's numbers, periodic and a subset; it survives
    copying and XML serialisation (the package travels as bytes)."""
    openmm = pytest.importorskip("openmm")
    model, path, _ = schnet_pt2
    box = _water_box(water)
    for atoms, subset in ((ethanol, None), (box, list(range(3, 12)))):
        system = _system(atoms)
        system.addForce(eqff.openmm.python_force(path, atoms=subset, topology=atoms))
        energy, forces = _evaluate(system, atoms.positions * units.ANGSTROM_TO_NM)
        ml = atoms if subset is None else atoms[subset]
        if subset is not None:
            ml.pbc = True  # the ML region of a periodic system is periodic
        reference = predict(model, [ml])[0]
        assert abs(energy - float(reference["energy"]) * units.EV_TO_KJ_PER_MOL) < TOLERANCE * abs(energy)
        want = np.zeros((len(atoms), 3))
        want[subset if subset is not None else slice(None)] = reference["forces"] * units.EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM
        assert _relative(forces, want) < TOLERANCE
    for other in (copy.deepcopy(system), openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))):
        assert _relative(_evaluate(other, box.positions * units.ANGSTROM_TO_NM)[1], forces) < 1e-12


def test_clear_errors(schnet_pt2, ethanol, tmp_path):
    openmm = pytest.importorskip("openmm")
    model, path, checkpoint = schnet_pt2
    with pytest.raises(ConfigError, match="TorchForce needs.*python_force"):
        eqff.openmm.torch_force(path, topology=ethanol)
    with pytest.raises(ConfigError, match="TorchForce needs"):
        eqff.openmm.torch_force(load_exported(path), topology=ethanol)
    assert isinstance(eqff.openmm.ml_force(path, topology=ethanol), openmm.PythonForce)  # auto: PythonForce
    with pytest.raises(ConfigError, match="compiled for.*float64"):
        eqff.openmm.python_force(path, topology=ethanol, dtype="float32")
    with pytest.raises(ModelFileError, match="compiled for the CPU"):
        load_exported(path, map_location="meta")
    with pytest.raises(ValueError, match=r"atomic numbers \[7\] are not elements"):
        load_exported(path).compute(torch.tensor([6, 7]), torch.tensor([[0.0, 0, 0], [1.2, 0, 0]], dtype=torch.float64),
                                    torch.zeros(3, 3), torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="coincident"):
        load_exported(path).compute(torch.tensor([6, 8]), torch.zeros(2, 3, dtype=torch.float64),
                                    torch.zeros(3, 3), torch.zeros(3, dtype=torch.bool))
    assert main(["export", checkpoint, "-o", str(tmp_path / "model.pt"), "--format", "pt2"]) != 0  # name it .pt2
    with pytest.raises(ModelFileError, match="already an exported"):
        eqff.export.export_checkpoint(path, tmp_path / "again.pt2", format="pt2")
    # `eqff check` compares the eager model with its export: a .pt2 has no eager model; say which file to check
    with pytest.raises(EqffError, match=r"a \.pt2 package holds compiled code.*run `eqff check` on"):
        run_check(str(path), output=str(tmp_path / "check"))


@pytest.mark.slow
@pytest.mark.parametrize("kind,dtype,tolerance", [("ace", "float64", TOLERANCE), ("ace", "float32", 1e-4),
                                                  ("egnn", "float64", TOLERANCE)])
def test_other_kinds(kind, dtype, tolerance, ethanol, water, tmp_path):
    """ace (the default model: its neighbour table becomes a data-dependent size) and egnn
    (coordinate updates); minutes of compilation each."""
    model = _model(kind, dtype=dtype)
    info = export_pt2(model, tmp_path / f"{kind}.pt2")
    assert info["check_error"] < tolerance
    _compare(load_exported(tmp_path / f"{kind}.pt2"), model, [ethanol, _water_box(water), ethanol[:1]],
             tolerance=tolerance, stress=True)

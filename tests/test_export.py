"""Export: `eqff export`, metadata, loading with torch alone, the ASE calculator from a file,
and clear errors for bad model files and inputs."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.filters import FrechetCellFilter
from ase.md.langevin import Langevin
from ase.md.verlet import VelocityVerlet
from ase.mep import NEB
from ase.optimize import BFGS, FIRE
from ase import units as ase_units

import eqff
import eqff.openmm
from eqff.cli.main import main
from eqff.errors import ModelFileError, UnknownElementError
from eqff.export import METADATA_FILE, export_checkpoint, export_potential, load_exported, read_metadata
from eqff.models.io import load_potential, potential_state
from eqff.predict import predict
from conftest import MODELS


def _model(kind, elements, dtype="float64", cutoff=4.0):
    torch.manual_seed(2)
    model = eqff.build_model(kind, elements=elements, cutoff=cutoff, dtype=dtype)
    with torch.no_grad():
        model.energy_shift.copy_(torch.linspace(-3.0, -1.0, len(model.energy_shift)))
    return model


def _small_water_box(water, n_molecules=8):
    """The first molecules of water_192 in the full 12.44 Å box, some atoms outside it."""
    _, _, order = eqff.openmm.topology_from_atoms(water)
    atoms = water[order[: 3 * n_molecules]]
    atoms.positions[:4] += atoms.cell.array[0] - 2 * atoms.cell.array[2]
    return atoms


def _trainer_like_checkpoint(model, path):
    state = potential_state(model)
    state.update({"data_hash": "0123456789abcdef", "train_config": {"train_file": "/data/rmd17/train.xyz", "seed": 3},
                  "epoch": 7, "best_loss": 0.25, "trainer": {"optimizer": {"state": {}}},
                  "e0s": {"1": -13.6}, "example_structure": {"numbers": [1, 1], "positions": [[0, 0, 0], [0.74, 0, 0]],
                                                             "cell": [[0] * 3] * 3, "pbc": [False] * 3}})
    torch.save(state, path)
    return path


def test_cli_export_writes_metadata(ethanol, tmp_path, capsys):
    model = _model("schnet", ["C", "H", "O"])
    checkpoint = _trainer_like_checkpoint(model, tmp_path / "best.pt")
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "ethanol.pt")]) == 0
    assert "wrote" in capsys.readouterr().out
    info = read_metadata(tmp_path / "ethanol.pt")
    assert info["elements"] == [1, 6, 8] and info["element_symbols"] == ["H", "C", "O"]
    assert info["cutoff"] == 4.0 and info["kind"] == "schnet" and info["dtype"] == "float64"
    assert info["eqff_version"] == eqff.__version__
    assert info["training_data_hash"] == "0123456789abcdef"
    assert info["training"] == {"train_file": "train.xyz", "seed": 3, "epoch": 7, "best_loss": 0.25}
    assert info["units"]["energy"] == "eV" and info["units"]["compute_openmm"]["energy"] == "kJ/mol"
    assert info["e0s"] == {"1": -13.6} and info["example_structure"]["numbers"] == [1, 1]
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "f32.pt"), "--dtype", "float32"]) == 0
    assert read_metadata(tmp_path / "f32.pt")["dtype"] == "float32"
    # the file is a potential for load_potential and for the ASE calculator
    atoms = ethanol.copy()
    atoms.calc = eqff.EqffCalculator(str(tmp_path / "ethanol.pt"), dtype="float64")
    assert atoms.get_potential_energy() == pytest.approx(float(predict(model, [ethanol])[0]["energy"]), rel=1e-12)
    assert isinstance(load_potential(tmp_path / "ethanol.pt"), torch.jit.ScriptModule)


def test_export_loads_with_torch_alone(water, tmp_path):
    """A fresh process that never imports eqff (nor e3nn, vesin, ase) runs the file."""
    atoms = _small_water_box(water)
    model = _model("segnn", ["H", "O"])
    path = tmp_path / "water.pt"
    export_potential(model, path)
    inputs = {"numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(), "cell": atoms.cell.array.tolist()}
    (tmp_path / "inputs.json").write_text(json.dumps(inputs))
    program = f"""
import json, sys, torch
extra = {{"{METADATA_FILE}": ""}}
model = torch.jit.load({str(path)!r}, _extra_files=extra)
x = json.load(open({str(tmp_path / "inputs.json")!r}))
out = model.compute(torch.tensor(x["numbers"]), torch.tensor(x["positions"], dtype=torch.float64),
                    torch.tensor(x["cell"], dtype=torch.float64), torch.tensor([True, True, True]), True)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("eqff", "e3nn", "vesin", "ase", "opt_einsum_fx"))
print(json.dumps({{"energy": out["energy"].item(), "forces": out["forces"].tolist(), "stress": out["stress"].tolist(),
                  "metadata": json.loads(extra["{METADATA_FILE}"]), "loaded": loaded}}))
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []
    assert out["metadata"]["kind"] == "segnn"
    reference = predict(model, [atoms], compute_stress=True)[0]
    assert out["energy"] == pytest.approx(float(reference["energy"]), rel=1e-12)
    np.testing.assert_allclose(out["forces"], reference["forces"], rtol=0, atol=1e-10 * np.abs(reference["forces"]).max())
    np.testing.assert_allclose(out["stress"][0], reference["stress"], rtol=0, atol=1e-10 * np.abs(reference["stress"]).max())


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-10), ("float32", 1e-4)])
def test_exported_equals_eager(kind, dtype, tolerance, water, ethanol, tmp_path):
    for atoms, elements in [(_small_water_box(water), ["H", "O"]), (ethanol, ["C", "H", "O"])]:
        model = _model(kind, elements, dtype=dtype)
        export_potential(model, tmp_path / "m.pt")
        module = load_exported(tmp_path / "m.pt")
        assert module.eqff_metadata["dtype"] == dtype
        torch_dtype = getattr(torch, dtype)
        periodic = bool(atoms.pbc.all())
        out = module.compute(torch.tensor(atoms.numbers), torch.tensor(atoms.positions, dtype=torch_dtype),
                             torch.tensor(atoms.cell.array, dtype=torch_dtype), torch.tensor(atoms.pbc), periodic)
        reference = predict(model, [atoms], compute_stress=periodic)[0]
        assert float(out["energy"][0].detach()) == pytest.approx(float(reference["energy"]), rel=tolerance)
        scale = np.abs(reference["forces"]).max()
        assert np.abs(out["forces"].detach().numpy() - reference["forces"]).max() < tolerance * scale
        if periodic:
            scale = np.abs(reference["stress"]).max()
            assert np.abs(out["stress"][0].detach().numpy() - reference["stress"]).max() < tolerance * scale


def test_ase_dynamics_optimisers_and_neb_from_a_file(ethanol, water, tmp_path):
    export_potential(_model("schnet", ["C", "H", "O"], dtype="float32"), tmp_path / "ethanol.pt")
    export_potential(_model("schnet", ["H", "O"], dtype="float32"), tmp_path / "water.pt")
    rng = np.random.default_rng(0)
    for dynamics in ("langevin", "verlet"):
        atoms = ethanol.copy()
        atoms.calc = eqff.EqffCalculator(str(tmp_path / "ethanol.pt"))
        atoms.set_velocities(rng.normal(scale=0.01, size=(len(atoms), 3)))
        if dynamics == "langevin":
            dyn = Langevin(atoms, 0.5 * ase_units.fs, temperature_K=300, friction=0.01 / ase_units.fs, rng=rng,
                           fixcm=False)
        else:
            dyn = VelocityVerlet(atoms, 0.5 * ase_units.fs)
        dyn.run(5)
        assert np.isfinite(atoms.get_potential_energy())
    atoms = ethanol.copy()
    atoms.calc = eqff.EqffCalculator(str(tmp_path / "ethanol.pt"))
    start = atoms.get_potential_energy()
    BFGS(atoms, logfile=None).run(fmax=1e-3, steps=5)
    assert atoms.get_potential_energy() < start
    box = _small_water_box(water)
    box.calc = eqff.EqffCalculator(str(tmp_path / "water.pt"))
    start = box.get_potential_energy()
    FIRE(FrechetCellFilter(box), logfile=None).run(fmax=1e-3, steps=5)
    assert box.get_potential_energy() < start
    assert box.get_stress().shape == (6,)
    initial, final = ethanol.copy(), ethanol.copy()
    final.positions[8] += [0.3, 0.2, -0.1]
    images = [initial] + [initial.copy() for _ in range(3)] + [final]
    for image in images:
        image.calc = eqff.EqffCalculator(str(tmp_path / "ethanol.pt"))
    neb = NEB(images, method="improvedtangent")
    neb.interpolate()
    FIRE(neb, logfile=None).run(fmax=1e-3, steps=3)
    assert all(np.isfinite(image.get_potential_energy()) for image in images)


def _bad_files(tmp_path, model):
    good = tmp_path / "good.pt"
    export_potential(model, good)
    files = {}
    files["random bytes"] = tmp_path / "random.pt"
    files["random bytes"].write_bytes(np.random.default_rng(0).bytes(5000))
    files["truncated export"] = tmp_path / "truncated.pt"
    files["truncated export"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    files["foreign TorchScript"] = tmp_path / "foreign_script.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 1)), files["foreign TorchScript"])
    files["foreign pickle"] = tmp_path / "foreign_pickle.pt"
    torch.save({"weights": torch.zeros(3)}, files["foreign pickle"])
    files["other export format"] = tmp_path / "other_format.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 1)), files["other export format"],
                   _extra_files={METADATA_FILE: json.dumps({"format": "eqff-torchscript-v9", "eqff_version": "9.0"})})
    files["missing"] = tmp_path / "missing.pt"
    return files


BAD_FILE_ERRORS = {"random bytes": "not an eqff file|cannot read", "truncated export": "cannot read|corrupt|truncated",
                   "foreign TorchScript": "not an eqff export", "foreign pickle": "not an eqff checkpoint",
                   "other export format": "eqff-torchscript-v9", "missing": "no such file"}


def test_bad_model_files_give_clear_errors(tmp_path, capsys):
    """(Through eqff.openmm.torch_force: test_bad_model_files_give_clear_errors_in_torch_force.)"""
    model = _model("schnet", ["C", "H", "O"])
    expected = BAD_FILE_ERRORS
    for label, path in _bad_files(tmp_path, model).items():
        with pytest.raises(ModelFileError, match=expected[label]):
            load_potential(path)
        with pytest.raises(ModelFileError, match=expected[label]):
            eqff.EqffCalculator(str(path))
        if label != "foreign TorchScript" and label != "other export format":  # those are TorchScript: refused as exports
            assert main(["export", str(path), "-o", str(tmp_path / "out.pt")]) == 2
            assert "eqff export: error:" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "good.pt"), "-o", str(tmp_path / "out.pt")]) == 2
    assert "already an exported" in capsys.readouterr().err


@pytest.mark.torchforce
def test_bad_model_files_give_clear_errors_in_torch_force(ethanol, tmp_path):
    for label, path in _bad_files(tmp_path, _model("schnet", ["C", "H", "O"])).items():
        with pytest.raises(ModelFileError, match=BAD_FILE_ERRORS[label]):
            eqff.openmm.torch_force(str(path), topology=ethanol)


def test_elements_the_model_lacks_and_broken_inputs(tmp_path):
    export_potential(_model("schnet", ["H", "O"]), tmp_path / "water.pt")
    module = load_exported(tmp_path / "water.pt")
    atoms = Atoms("H2OCl", positions=[[0, 0, 0], [0.96, 0, 0], [-0.2, 0.9, 0], [2.5, 0, 0]])
    positions = torch.tensor(atoms.positions)
    with pytest.raises(torch.jit.Error, match=r"atomic numbers \[17\] are not elements of this model"):
        module.compute(torch.tensor(atoms.numbers), positions, torch.zeros(3, 3, dtype=torch.float64),
                       torch.zeros(3, dtype=torch.bool))
    atoms.calc = eqff.EqffCalculator(str(tmp_path / "water.pt"))
    with pytest.raises(UnknownElementError, match=r"atoms \[3\] are Cl, which this model does not know \(it knows H, O\)"):
        atoms.get_potential_energy()
    water = atoms[:3]
    with pytest.raises(torch.jit.Error, match="not finite"):
        module.compute(torch.tensor(water.numbers), torch.tensor([[0, 0, 0], [1, 0, 0], [0, float("inf"), 0]],
                       dtype=torch.float64), torch.zeros(3, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.bool))
    with pytest.raises(torch.jit.Error, match="singular"):
        module.compute(torch.tensor(water.numbers), torch.tensor(water.positions),
                       torch.tensor([[3.0, 0, 0], [0, 3.0, 0], [3.0, 3.0, 0]], dtype=torch.float64),
                       torch.ones(3, dtype=torch.bool))


def test_export_checkpoint_keeps_the_dtype_exact(tmp_path):
    """float32 checkpoint exported in float64: constants rebuilt in float64, not cast up."""
    model32 = _model("segnn", ["H", "O"], dtype="float32")
    torch.save(potential_state(model32), tmp_path / "f32.pt")
    export_checkpoint(tmp_path / "f32.pt", tmp_path / "f64.pt", dtype=torch.float64)
    assert read_metadata(tmp_path / "f64.pt")["dtype"] == "float64"
    module = load_exported(tmp_path / "f64.pt")
    w3j = [b for name, b in module.named_buffers() if "_w3j_" in name]
    assert w3j and all(b.dtype == torch.float64 for b in w3j)

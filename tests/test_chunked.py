"""Memory-bounded evaluation (eqff/models/chunking.py): every model kind gives the numbers of
the one-piece evaluation to round-off with chunks of any size, its peak memory stays bounded,
and the runtime accepts the setting for eager models and refuses it for exports."""
import numpy as np
import pytest
import torch
from e3nn.util.jit import script

import eqff
from eqff.data.frames import Frame
from eqff.data.graph import frames_to_batch
from eqff.errors import ConfigError
from eqff.export import ExportedPotential
from eqff.memory import peak_bytes
from eqff.models.chunking import max_edges_per_chunk, set_max_edges_per_chunk
from eqff.models.registry import MODELS
from eqff.runtime import load_model

# small widths: the test is about the chunking, not the model size
SMALL = {"ace": {"features": 8, "radial_features": 16}, "schnet": {"features": 16}, "egnn": {"features": 16},
         "segnn": {"features": 8, "radial_features": 16}, "pointconv": {"features": 16, "kernel_features": 16},
         "lifted": {"features": 8, "num_orientations": 14}}


def small_model(kind, elements, cutoff=4.0):
    return eqff.build_model(kind, elements=elements, cutoff=cutoff, dtype="float64", **SMALL[kind])


def evaluate(model, atoms, cutoff, stress):
    batch = frames_to_batch([Frame.from_atoms(atoms, source="test")], cutoff, dtype=torch.float64)
    out = model(batch, compute_forces=True, compute_stress=stress)
    return {k: v.detach() for k, v in out.items()}, batch["edge_index"].shape[1]


def assert_round_off(chunked, whole, keys):
    for key in keys:
        scale = float(whole[key].abs().max())
        assert float((chunked[key] - whole[key]).abs().max()) <= 1e-12 * max(scale, 1.0), key


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_chunked_equals_whole_for_every_model(kind, ethanol, water):
    """Chunks of 1 and 7 edges on a molecule (ace: one atom per chunk), and 41 edges on a
    periodic box with stress (a last chunk shorter than the rest), against one piece."""
    molecule_model = small_model(kind, ["H", "C", "O"])
    whole, edges = evaluate(molecule_model, ethanol, 4.0, stress=False)
    for size in (1, 7):
        set_max_edges_per_chunk(molecule_model, size)
        chunked, _ = evaluate(molecule_model, ethanol, 4.0, stress=False)
        assert_round_off(chunked, whole, ("energy", "forces", "atomic_energies"))
    box = water[:48]  # 16 molecules of the first frame, in its periodic 12.4 Å cell
    box_model = small_model(kind, ["H", "O"], cutoff=3.5)
    whole, edges = evaluate(box_model, box, 3.5, stress=True)
    assert edges % 41 != 0 and edges > 3 * 41
    set_max_edges_per_chunk(box_model, 41)
    chunked, _ = evaluate(box_model, box, 3.5, stress=True)
    assert_round_off(chunked, whole, ("energy", "forces", "stress"))


def test_chunked_features_and_isolated_atom(ethanol):
    """The last-layer features (LLPR) come out the same, and a structure without edges (three
    atoms far apart, more atoms than a chunk holds) evaluates with chunking on."""
    model = small_model("ace", ["H", "C", "O"])
    batch = frames_to_batch([Frame.from_atoms(ethanol, source="test")], 4.0, dtype=torch.float64)
    whole = model(batch, compute_features=True)["node_features"]
    set_max_edges_per_chunk(model, 5)
    chunked = model(batch, compute_features=True)["node_features"]
    assert float((chunked - whole).abs().max()) <= 1e-12 * float(whole.abs().max())
    apart = ethanol[:3]
    apart.positions = [[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0]]
    set_max_edges_per_chunk(model, 1)
    alone, edges = evaluate(model, apart, 4.0, stress=False)
    assert edges == 0 and torch.isfinite(alone["energy"]).all()


@pytest.mark.parametrize("kind", ["ace", "egnn"])
def test_force_training_gradients_equal(kind, ethanol):
    """The double backward of a force loss (create_graph=True) runs through the chunks and
    gives the parameters the same gradients."""
    model = small_model(kind, ["H", "C", "O"])
    batch = frames_to_batch([Frame.from_atoms(ethanol, source="test")], 4.0, dtype=torch.float64)
    gradients = []
    for size in (0, 7):
        set_max_edges_per_chunk(model, size)
        model.zero_grad()
        out = model(batch, compute_forces=True, create_graph=True)
        (out["energy"].sum() + out["forces"].pow(2).sum()).backward()
        gradients.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert float((gradients[1] - gradients[0]).abs().max()) <= 1e-12 * float(gradients[0].abs().max())


@pytest.mark.parametrize("kind, hyperparameters", [("segnn", {"features": 16}), ("ace", {"features": 16}),
                                                   ("schnet", {})])
def test_chunked_peak_memory_is_bounded(kind, hyperparameters, water):
    """Peak tensor memory of energy + forces (allocator events, not a timing): with chunks of
    500 edges it is a fraction of the one-piece peak, and doubling the box adds a fraction of
    what it adds in one piece (what still grows is the edge geometry, a few tens of numbers
    per edge, against hundreds to thousands in the layers)."""
    model = eqff.build_model(kind, elements=["H", "O"], cutoff=4.0, dtype="float64", **hyperparameters)
    peaks = {}
    for copies in (1, 2):
        atoms = water.repeat((copies, 1, 1))
        batch = frames_to_batch([Frame.from_atoms(atoms, source="test")], 4.0, dtype=torch.float64)
        for size in (0, 500):
            set_max_edges_per_chunk(model, size)
            peaks[copies, size], _ = peak_bytes(lambda: model(batch, compute_forces=True))
    assert peaks[1, 500] < 0.3 * peaks[1, 0], peaks
    assert peaks[2, 500] - peaks[1, 500] < 0.2 * (peaks[2, 0] - peaks[1, 0]), peaks


def test_calculator_setting_equal_numbers_and_private_copy(water):
    from eqff.calculators.ase import EqffCalculator

    model = small_model("egnn", ["H", "O"], cutoff=3.5)
    atoms = water[:48].copy()
    atoms.calc = EqffCalculator(model)
    whole = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(), "stress": atoms.get_stress()}
    chunked_atoms = atoms.copy()
    chunked_atoms.calc = EqffCalculator(model, max_edges_per_chunk=50)
    assert max_edges_per_chunk(chunked_atoms.calc.potential) == 50
    assert max_edges_per_chunk(model) == 0  # the caller's model is not changed
    np.testing.assert_allclose(chunked_atoms.get_potential_energy(), whole["energy"], rtol=1e-12)
    np.testing.assert_allclose(chunked_atoms.get_forces(), whole["forces"], rtol=0, atol=1e-12 * np.abs(whole["forces"]).max())
    np.testing.assert_allclose(chunked_atoms.get_stress(), whole["stress"], rtol=0, atol=1e-12 * np.abs(whole["stress"]).max())


def test_loader_keeps_or_changes_the_setting_on_copies(tmp_path):
    model = small_model("schnet", ["H", "O"])
    loaded = load_model(model, max_edges_per_chunk=64)
    assert max_edges_per_chunk(loaded.module) == 64 and max_edges_per_chunk(model) == 0
    again = load_model(loaded, max_edges_per_chunk=8)  # a LoadedModel given: changed on a copy
    assert max_edges_per_chunk(again.module) == 8 and max_edges_per_chunk(loaded.module) == 64
    assert load_model(loaded) is loaded  # None keeps it as it is
    set_max_edges_per_chunk(model, 32)
    assert max_edges_per_chunk(load_model(model).module) == 32  # a model in memory keeps its setting
    committee = load_model([small_model("schnet", ["H", "O"]), small_model("egnn", ["H", "O"])], max_edges_per_chunk=16)
    assert max_edges_per_chunk(committee.module) == 16


def test_exports_and_bad_values_are_refused(tmp_path, ethanol):
    from eqff.export import export_potential

    model = small_model("schnet", ["H", "C", "O"])
    path = tmp_path / "model.pt"
    export_potential(model, path)
    with pytest.raises(ConfigError, match="eager models only.*checkpoint"):
        load_model(path, max_edges_per_chunk=100)
    assert load_model(path, max_edges_per_chunk=0).format == "torchscript"
    with pytest.raises(ConfigError, match="eager models only"):
        load_model(model, script=True, max_edges_per_chunk=100)
    for bad in (-1, 2.5, True, "100"):
        with pytest.raises(ConfigError, match="max_edges_per_chunk must be a whole number"):
            load_model(model, max_edges_per_chunk=bad)


@pytest.mark.parametrize("kind", ["ace", "egnn", "segnn"])
def test_a_chunked_model_still_scripts(kind, ethanol):
    """TorchScript compiles the layers with chunking set (it runs them in one piece)."""
    model = small_model(kind, ["H", "C", "O"])
    whole, _ = evaluate(model, ethanol, 4.0, stress=False)
    set_max_edges_per_chunk(model, 10)
    scripted = script(ExportedPotential(model))
    out = scripted(frames_to_batch([Frame.from_atoms(ethanol, source="test")], 4.0, dtype=torch.float64))
    assert_round_off({k: v.detach() for k, v in out.items()}, whole, ("energy", "forces"))

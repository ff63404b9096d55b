"""Building models: the registry, hyperparameter errors, checkpoints and TorchScript."""
import numpy as np
import pytest
import torch
from e3nn.util.jit import script

import eqff
from eqff.errors import ConfigError, ModelFileError
from eqff.models.io import copy_potential, load_potential, potential_state
from eqff.predict import predict
from conftest import MODELS


def test_unknown_model_and_hyperparameter_are_errors():
    with pytest.raises(ConfigError, match="choose one of"):
        eqff.build_model("mace", elements=["H"], cutoff=5.0)
    with pytest.raises(ConfigError, match=r"unknown hyperparameter\(s\) \['width'\].*valid: \["):
        eqff.build_model("schnet", elements=["H"], cutoff=5.0, width=3)


def test_elements_as_symbols_or_numbers():
    a = eqff.build_model("schnet", elements=["O", "H"], cutoff=5.0)
    b = eqff.build_model("schnet", elements=[8, 1], cutoff=5.0)
    assert a.atomic_numbers.tolist() == b.atomic_numbers.tolist() == [1, 8]


@pytest.mark.parametrize("kind", MODELS)
def test_checkpoint_round_trip_is_exact(kind, tmp_path, ethanol):
    model = eqff.build_model(kind, elements=["H", "C", "O"], cutoff=5.0)
    path = tmp_path / "model.pt"
    torch.save(potential_state(model), path)
    loaded = load_potential(path)
    for name, tensor in model.state_dict().items():  # the weights come back bit for bit
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    # the numbers to float32 round-off: MKL's matrix products may round the last bit differently
    # from call to call with the memory alignment of their operands (seen for ace)
    a, b = predict(model, [ethanol])[0], predict(loaded, [ethanol])[0]
    np.testing.assert_allclose(b["energy"], a["energy"], rtol=1e-6)
    np.testing.assert_allclose(b["forces"], a["forces"], rtol=1e-5, atol=1e-6 * np.abs(a["forces"]).max())


@pytest.mark.parametrize("kind", MODELS)
def test_every_parameter_learns_from_the_force_loss(kind, ethanol):
    """Each parameter gets a gradient from an energy + force loss: none is dead weight, and
    DistributedDataParallel (which refuses unused parameters) can train every model."""
    from eqff.data.frames import Frame
    from eqff.data.graph import frames_to_batch

    model = eqff.build_model(kind, elements=["H", "C", "O"], cutoff=5.0)
    batch = frames_to_batch([Frame.from_atoms(ethanol, source="ethanol")], 5.0, dtype=torch.float32)
    out = model(batch, compute_forces=True, create_graph=True)
    (out["energy"].sum() + out["forces"].pow(2).sum()).backward()
    assert [name for name, p in model.named_parameters() if p.grad is None] == []


def test_egnn_checkpoint_with_the_old_unused_coordinate_mlp_loads(ethanol):
    """EGNN checkpoints written before its last layer dropped the coordinate MLP (whose output fed
    nothing) load into the current model and give the same numbers."""
    from eqff.models.io import load_weights

    model = eqff.build_model("egnn", elements=["H", "C", "O"], cutoff=5.0, num_layers=2)
    old = dict(model.state_dict())
    old.update({f"model.layers.1.coordinate_mlp.{k}": v for k, v in
                ((k, torch.randn_like(v)) for k, v in model.model.layers[0].coordinate_mlp.state_dict().items())})
    loaded = eqff.build_model("egnn", elements=["H", "C", "O"], cutoff=5.0, num_layers=2)
    load_weights(loaded, old)
    np.testing.assert_allclose(predict(loaded, [ethanol])[0]["forces"], predict(model, [ethanol])[0]["forces"],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", MODELS)
def test_model_scripts_and_matches_eager(kind, water):
    model = eqff.build_model(kind, elements=["H", "O"], cutoff=5.0, dtype="float64")
    scripted = script(copy_potential(model))
    a = predict(model, [water], compute_stress=True)[0]
    b = predict(scripted, [water], compute_stress=True)[0]
    for key in ("energy", "forces", "stress"):
        np.testing.assert_allclose(b[key], a[key], rtol=1e-12, atol=1e-12)


def test_float64_copy_keeps_equivariance_exact(ethanol):
    """A float32 model copied to float64 rebuilds the Clebsch-Gordan constants in float64."""
    from eqff.testing import check_euclidean_symmetry

    model32 = eqff.build_model("segnn", elements=["H", "C", "O"], cutoff=5.0)
    assert check_euclidean_symmetry(copy_potential(model32, dtype="float64"), ethanol, tolerance=1e-13).passed


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelFileError, match="junk.pt"):
        load_potential(path)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(ModelFileError, match="not an eqff checkpoint"):
        load_potential(tmp_path / "foreign.pt")


def test_unknown_atomic_number_in_model_forward(ethanol):
    model = eqff.build_model("schnet", elements=["H", "O"], cutoff=5.0)
    with pytest.raises(ValueError, match=r"atomic numbers \[6\] are not elements of this model"):
        predict(model, [ethanol])


def test_zbl_prior_repels_at_short_range_and_vanishes_beyond_covalent_radii(tmp_path):
    from ase import Atoms
    from eqff.testing import check_forces_finite_difference

    plain = eqff.build_model("schnet", elements=["H", "O"], cutoff=5.0, dtype="float64")
    with_zbl = eqff.build_model("schnet", elements=["H", "O"], cutoff=5.0, dtype="float64", prior="zbl")
    with_zbl.load_state_dict(plain.state_dict())
    dimer = lambda r: Atoms("OH", positions=[[0, 0, 0], [r, 0, 0]])
    difference = [float(predict(with_zbl, [dimer(r)])[0]["energy"] - predict(plain, [dimer(r)])[0]["energy"])
                  for r in (0.2, 0.5, 0.8, 1.0, 2.0)]
    assert difference[0] > difference[1] > difference[2] > 0  # repulsive, growing as atoms approach
    assert difference[3] == difference[4] == 0.0  # off beyond r_cov(O) + r_cov(H) = 0.97 Å
    assert check_forces_finite_difference(with_zbl, Atoms("OH2", positions=[[0, 0, 0], [0.5, 0, 0], [0, 0.6, 0]])).passed
    torch.save(potential_state(with_zbl), tmp_path / "zbl.pt")
    assert load_potential(tmp_path / "zbl.pt").use_zbl
    with pytest.raises(ConfigError, match="unknown prior"):
        eqff.build_model("schnet", elements=["H"], cutoff=5.0, prior="lj")


@pytest.mark.parametrize("kind", MODELS)
def test_coincident_atoms_are_refused_not_nan(kind):
    """Refused on the host (DataError naming the structure) and, for batches built elsewhere
    (exported models, OpenMM), inside the model itself."""
    from ase import Atoms

    from eqff.data.graph import collate
    from eqff.data.neighbors import neighbor_list
    from eqff.errors import DataError

    model = eqff.build_model(kind, elements=["H", "O"], cutoff=5.0)
    atoms = Atoms("OH2", positions=[[0, 0, 0], [1, 0, 0], [1, 0, 0]])
    with pytest.raises(DataError, match=r"structure 0: atoms 1 and 2 are 0 Å apart \(coincident"):
        predict(model, [atoms])
    edge_index, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, 5.0)
    batch = collate([{"positions": atoms.positions, "atomic_numbers": atoms.numbers, "cell": atoms.cell.array,
                      "pbc": atoms.pbc, "edge_index": edge_index, "cell_shifts": shifts}], dtype=torch.float32)
    with pytest.raises(ValueError, match=r"atoms 1 and 2 are 0.0 Å apart \(coincident\)"):
        model(batch)


def test_every_model_uses_the_frame_and_declared_graph_keys():
    """One frame (MessagePassingModel owns embedding, geometry, layer loop, readout) and every
    key the layers exchange declared in eqff/data/keys.py: no string literal indexes a graph."""
    import inspect
    import re

    from eqff.data import keys
    from eqff.models.mpnn import MessagePassingModel
    from eqff.models.registry import MODELS as KINDS

    declared = {value for name, value in vars(keys).items() if name.isupper()}
    for kind, cls in KINDS.items():
        assert issubclass(cls, MessagePassingModel), kind
        assert "forward" not in vars(cls), f"{kind} restates the frame's forward"
        source = inspect.getsource(inspect.getmodule(cls))
        assert not re.findall(r'graph\[\s*["\']', source), f"{kind}: graph indexed by a string literal"
        used = set(re.findall(r"graph\[keys\.([A-Z_]+)\]", source))
        assert used and all(getattr(keys, name) in declared for name in used), kind

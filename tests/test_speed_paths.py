"""Correctness of the fast paths (benchmarks/speed.py measures their speed; no timing here).

* the pure-torch neighbour list (half search, sparse bin table) finds exactly ASE's pairs, in
  both directions, also for atoms spread over thousands of Å in open directions;
* OpenMMModule's neighbour list with a skin gives the numbers of a fresh list every step, and
  rebuilds on large moves, box changes and atoms jumping by a box vector, not on small moves;
* SEGNN's fused depthwise product gives e3nn's numbers (energies, forces, stress, training
  gradients) to float64 round-off, adds nothing to checkpoints, exports, and handles no edges.
"""
import numpy as np
import pytest
import torch
from ase.neighborlist import primitive_neighbor_list

import eqff
from eqff.calculators.openmm_forces import openmm_module
from eqff.nn.neighborlist import neighbor_list_torch
from eqff.runtime.skin import pairs_within, skin_is_stale


def _pairs(edge_index, shifts):
    shifts = np.rint(np.asarray(shifts)).astype(int)
    return set(zip(np.asarray(edge_index[0]).tolist(), np.asarray(edge_index[1]).tolist(), *shifts.T.tolist()))


def _reference(positions, cell, pbc, cutoff):
    i, j, S = primitive_neighbor_list("ijS", pbc, cell, positions, cutoff, self_interaction=False)
    return _pairs(np.stack([i, j]), S)


def test_far_apart_atoms_need_no_dense_grid():
    # three atoms over 3000 Å used to allocate a dense grid of ~2e8 bins (27 s)
    positions = torch.tensor([[0.0, 0.0, 0.0], [3000.0, 0.0, 0.0], [0.0, 3000.0, 3000.0]], dtype=torch.float64)
    edge_index, shifts = neighbor_list_torch(positions, torch.zeros(3, 3, dtype=torch.float64),
                                             torch.zeros(3, dtype=torch.bool), 5.0)
    assert edge_index.shape == (2, 0) and shifts.shape == (0, 3)


@pytest.mark.parametrize("pbc", [[False] * 3, [True, False, False], [True, True, False]])
def test_clusters_far_apart_match_ase(pbc):
    rng = np.random.default_rng(4)
    clusters = [rng.uniform(0, 6, (15, 3)) + centre for centre in ([0, 0, 0], [2500, 10, -3], [4, 1800, 900])]
    positions = np.concatenate(clusters)
    cell = np.diag([9.0, 11.0, 10.0])
    expected = _reference(positions, cell, pbc, 3.5)
    edge_index, shifts = neighbor_list_torch(torch.tensor(positions), torch.tensor(cell), torch.tensor(pbc), 3.5)
    assert _pairs(edge_index.numpy(), shifts.numpy()) == expected


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_replicated_water_matches_ase_in_both_directions(water, dtype):
    atoms = water.repeat((2, 1, 1))
    positions = atoms.positions + np.random.default_rng(0).normal(0, 3.0, atoms.positions.shape)  # some outside
    edge_index, shifts = neighbor_list_torch(torch.tensor(positions, dtype=dtype), torch.tensor(atoms.cell.array, dtype=dtype),
                                             torch.tensor(atoms.pbc), 5.0, chunk_size=100)
    found = _pairs(edge_index.numpy(), shifts.numpy())
    assert len(found) == edge_index.shape[1]  # no duplicates
    assert found == {(j, i, -a, -b, -c) for i, j, a, b, c in found}
    if dtype == torch.float64:
        assert found == _reference(positions, atoms.cell.array, atoms.pbc, 5.0)


def _energy_forces(module, positions_nm, box_nm):
    energy, forces = module(torch.tensor(positions_nm), None if box_nm is None else torch.tensor(box_nm))
    return float(energy), forces.numpy()


@pytest.mark.parametrize("periodic", [True, False])
def test_openmm_skin_gives_fresh_list_numbers(water, periodic):
    atoms = water.copy()
    if not periodic:
        atoms.pbc = False
        atoms.cell = np.zeros((3, 3))
    torch.manual_seed(3)
    model = eqff.build_model("schnet", elements=["H", "O"], cutoff=4.0, dtype="float64")
    cached = openmm_module(model, topology=atoms, periodic=periodic, skin=1.0)
    fresh = openmm_module(model, topology=atoms, periodic=periodic, skin=0.0)
    rng = np.random.default_rng(1)
    positions = atoms.positions * 0.1
    box = atoms.cell.array * 0.1 if periodic else None
    builds = []
    moves = ["none", "small", "small", "small", "large", "small", "wrap", "box", "small"]
    for move in moves:
        if move == "small":  # each atom moves < skin/2 from its reference: no rebuild
            positions = positions + rng.uniform(-0.004, 0.004, positions.shape)
        elif move == "large":
            positions = positions.copy()
            positions[5] += [0.06, 0.0, 0.0]  # 0.6 Å > skin/2
        elif move == "wrap" and periodic:
            positions = positions.copy()
            positions[7] += box[0]  # the same physics, but the cached shifts would be wrong
        elif move == "box" and periodic:
            box = box * 1.01
            positions = positions * 1.01
        energy, forces = _energy_forces(cached, positions, box)
        ref_energy, ref_forces = _energy_forces(fresh, positions, box)
        assert energy == pytest.approx(ref_energy, rel=1e-12, abs=1e-9)
        np.testing.assert_allclose(forces, ref_forces, rtol=1e-10, atol=1e-9)
        builds.append(cached.neighbor_list_builds)
    expected = [1, 1, 1, 1, 2, 2, 3 if periodic else 2, 4 if periodic else 2, 4 if periodic else 2]
    assert builds == expected


def test_skin_pairs_equal_a_fresh_list(water):
    """The skin cache both deploy paths use (eqff.runtime.skin): after moves below skin/2 the
    list from the old positions, filtered to the cutoff, holds exactly the pairs of a fresh list;
    a move beyond skin/2 or a changed cell asks for a rebuild."""
    torch.manual_seed(0)
    cell = torch.tensor(water.cell.array)
    pbc = torch.ones(3, dtype=torch.bool)
    x = torch.tensor(water.positions)
    empty = torch.zeros((0, 3), dtype=torch.float64)
    assert skin_is_stale(x, cell, empty, torch.zeros((3, 3), dtype=torch.float64), 1.0)
    full_edges, full_shifts = neighbor_list_torch(x, cell, pbc, 6.0)
    moved = x + torch.empty_like(x).uniform_(-0.25, 0.25)
    assert not skin_is_stale(moved, cell, x, cell, 1.0)
    edge_index, shifts, distance_sq = pairs_within(moved, cell, full_edges, full_shifts, 5.0)
    assert _pairs(edge_index.numpy(), shifts.numpy()) == _pairs(*[t.numpy() for t in neighbor_list_torch(moved, cell, pbc, 5.0)])
    assert float(distance_sq.max()) < 25.0
    far = x.clone()
    far[3] += torch.tensor([0.0, 0.0, 0.51], dtype=torch.float64)
    assert skin_is_stale(far, cell, x, cell, 1.0)
    assert skin_is_stale(x, cell * 1.001, x, cell, 1.0)


def _segnn_pair(dtype="float64", **hyperparameters):
    torch.manual_seed(2)
    model = eqff.build_model("segnn", elements=["H", "C", "O"], cutoff=4.0, dtype=dtype, **hyperparameters)
    with torch.no_grad():
        for p in model.parameters():  # not the initial weights only: random readout, shifts
            p.add_(0.1 * torch.randn_like(p))
    return model


def _use_fused(model, value):
    for layer in model.model.layers:
        layer.use_fused_product = value


@pytest.mark.parametrize("hyperparameters", [{}, {"lmax": 1, "sh_lmax": 3, "features": 16}, {"lmax": 3, "features": 8}])
def test_fused_depthwise_product_gives_e3nn_numbers(ethanol, water, hyperparameters):
    """Energies, forces, stress and the training gradient (double backward) of SEGNN with the
    fused product equal e3nn's TensorProduct to float64 round-off."""
    from eqff.data.frames import Frame
    from eqff.data.graph import frames_to_batch

    model = _segnn_pair(**hyperparameters)
    water_hc = water.copy()
    water_hc.numbers[::3] = 6  # give the periodic structure all three elements
    batch = frames_to_batch([Frame.from_atoms(ethanol), Frame.from_atoms(water_hc)], 4.0)
    results = {}
    for fused in (False, True):
        _use_fused(model, fused)
        model.zero_grad()
        out = model(batch, compute_forces=True, compute_stress=True, create_graph=True)
        loss = (out["forces"] ** 2).sum() + out["energy"].sum()
        loss.backward()
        gradient = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        results[fused] = (out["energy"].detach(), out["forces"].detach(), out["stress"].detach(), gradient)
    for reference, value in zip(results[False], results[True]):
        scale = reference.abs().max()
        assert (value - reference).abs().max() <= 1e-12 * scale


def test_fused_product_keeps_the_checkpoint_format_and_exports(ethanol, tmp_path):
    from eqff.export import export_potential, load_exported
    from eqff.models.io import potential_from_state, potential_state

    model = _segnn_pair()
    state = potential_state(model)
    assert not any("fused_product" in key for key in model.state_dict())
    _use_fused(model, False)
    reference = eqff.EqffCalculator(model, dtype="float64")
    atoms = ethanol.copy()
    atoms.calc = reference
    e_ref, f_ref = atoms.get_potential_energy(), atoms.get_forces()
    reloaded = potential_from_state(state)  # fused by default
    assert all(layer.use_fused_product for layer in reloaded.model.layers)
    atoms.calc = eqff.EqffCalculator(reloaded, dtype="float64")
    assert atoms.get_potential_energy() == pytest.approx(e_ref, rel=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), f_ref, rtol=0, atol=1e-12 * np.abs(f_ref).max())
    export_potential(reloaded, tmp_path / "segnn.pt")
    exported = load_exported(str(tmp_path / "segnn.pt"))
    out = exported.compute(torch.tensor(atoms.numbers), torch.tensor(atoms.positions), torch.zeros(3, 3),
                           torch.zeros(3, dtype=torch.bool))
    assert float(out["energy"].detach().sum()) == pytest.approx(e_ref, rel=1e-12)
    np.testing.assert_allclose(out["forces"].detach().numpy(), f_ref, rtol=0, atol=1e-12 * np.abs(f_ref).max())


def test_fused_product_without_edges():
    model = _segnn_pair()
    data = {"positions": torch.zeros((1, 3), dtype=torch.float64), "atomic_numbers": torch.tensor([8]),
            "batch": torch.zeros(1, dtype=torch.long), "cell": torch.zeros((1, 3, 3), dtype=torch.float64),
            "pbc": torch.zeros((1, 3), dtype=torch.bool), "edge_index": torch.zeros((2, 0), dtype=torch.long),
            "cell_shifts": torch.zeros((0, 3), dtype=torch.float64)}
    energies = []
    for fused in (False, True):
        _use_fused(model, fused)
        out = model(data)
        assert out["forces"].abs().max() == 0
        energies.append(float(out["energy"].detach()[0]))
    assert energies[0] == energies[1]

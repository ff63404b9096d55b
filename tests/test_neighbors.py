"""Neighbour lists: vesin (host) and the pure-torch cell list (exported models) give the exact
pair sets of ASE's reference implementation on open, periodic, mixed, triclinic and small cells."""
import numpy as np
import pytest
import torch
from ase.neighborlist import primitive_neighbor_list

from eqff.data.neighbors import neighbor_list
from eqff.errors import NeighborListError
from eqff.nn.neighborlist import neighbor_list_torch


def pair_set(edge_index, shifts):
    shifts = np.rint(np.asarray(shifts)).astype(int)
    return set(zip(np.asarray(edge_index[0]).tolist(), np.asarray(edge_index[1]).tolist(), *shifts.T.tolist()))


def reference(positions, cell, pbc, cutoff):
    i, j, S = primitive_neighbor_list("ijS", pbc, cell, positions, cutoff, self_interaction=False)
    return pair_set(np.stack([i, j]), S)


def random_system(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 50))
    cell = np.diag(rng.uniform(2.0, 11.0, 3)) + (rng.normal(0, 1.2, (3, 3)) if seed % 2 else 0)
    pbc = rng.random(3) < 0.6
    if seed % 5 == 0:
        pbc[:] = True
    if seed % 7 == 0:
        pbc[:] = False
    positions = rng.uniform(-0.6, 1.6, (n, 3)) @ cell  # some atoms outside the cell
    cutoff = float(rng.uniform(1.0, 6.0))
    return positions, cell, pbc, cutoff


SEEDS = [s for s in range(60) if abs(np.linalg.det(random_system(s)[1])) > 1.0]


@pytest.mark.parametrize("seed", SEEDS)
def test_vesin_and_torch_cell_list_match_ase(seed):
    positions, cell, pbc, cutoff = random_system(seed)
    expected = reference(positions, cell, pbc, cutoff)
    assert pair_set(*neighbor_list(positions, cell, pbc, cutoff)) == expected
    edge_index, shifts = neighbor_list_torch(torch.tensor(positions), torch.tensor(cell), torch.tensor(pbc), cutoff)
    assert pair_set(edge_index.numpy(), shifts.numpy()) == expected


def test_cell_smaller_than_cutoff_has_many_images():
    cell = np.eye(3) * 2.0
    positions = np.array([[0.1, 0.2, 0.3], [1.0, 1.1, 0.9]])
    edge_index, shifts = neighbor_list_torch(torch.tensor(positions), torch.tensor(cell), torch.ones(3, dtype=torch.bool), 5.0)
    expected = reference(positions, cell, [True] * 3, 5.0)
    assert pair_set(edge_index.numpy(), shifts.numpy()) == expected
    # an atom sees its own periodic images, and each neighbour many times
    assert sum(1 for i, j, *_ in expected if i == j == 0) > 20


def test_shifts_reproduce_vectors_for_unwrapped_positions():
    rng = np.random.default_rng(3)
    cell = np.array([[6.0, 0.0, 0.0], [1.5, 5.5, 0.0], [0.7, -1.1, 7.0]])
    positions = rng.uniform(-2, 3, (30, 3)) @ cell
    edge_index, shifts = neighbor_list_torch(torch.tensor(positions), torch.tensor(cell), torch.ones(3, dtype=torch.bool), 4.0)
    vectors = positions[edge_index[1]] - positions[edge_index[0]] + shifts.numpy() @ cell
    assert np.linalg.norm(vectors, axis=1).max() < 4.0


def test_torch_neighbor_list_scripts():
    scripted = torch.jit.script(neighbor_list_torch)
    positions, cell, pbc, cutoff = random_system(5)
    a = scripted(torch.tensor(positions), torch.tensor(cell), torch.tensor(pbc), cutoff, 4096)
    assert pair_set(a[0].numpy(), a[1].numpy()) == reference(positions, cell, pbc, cutoff)


def test_chunking_does_not_change_the_list():
    positions, cell, pbc, cutoff = random_system(10)
    args = (torch.tensor(positions), torch.tensor(cell), torch.tensor(pbc), cutoff)
    full = neighbor_list_torch(*args)
    chunked = neighbor_list_torch(*args, chunk_size=7)
    assert pair_set(full[0].numpy(), full[1].numpy()) == pair_set(chunked[0].numpy(), chunked[1].numpy())


def test_singular_periodic_cell_is_an_error():
    positions = np.zeros((2, 3))
    positions[1, 0] = 1.0
    cell = np.array([[3.0, 0, 0], [0, 3.0, 0], [3.0, 3.0, 0]])
    with pytest.raises(NeighborListError, match="singular"):
        neighbor_list(positions, cell, [True] * 3, 2.0)
    with pytest.raises(Exception, match="singular"):
        neighbor_list_torch(torch.tensor(positions), torch.tensor(cell), torch.ones(3, dtype=torch.bool), 2.0)


def test_zero_cell_vector_along_periodic_direction_is_an_error():
    with pytest.raises(NeighborListError, match="zero"):
        neighbor_list(np.zeros((1, 3)), np.diag([3.0, 3.0, 0.0]), [True, True, True], 2.0)


def test_empty_structure():
    edge_index, shifts = neighbor_list(np.zeros((0, 3)), np.eye(3), [False] * 3, 3.0)
    assert edge_index.shape == (2, 0) and shifts.shape == (0, 3)

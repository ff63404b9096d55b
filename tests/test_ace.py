"""The message-passing ACE model (eqff/models/ace.py): its pieces against plain references, and
the physics of its variants (steerable hidden features, lower correlation orders)."""
import numpy as np
import pytest
import torch
from e3nn import o3

import eqff
from eqff import testing
from eqff.models.ace import EdgeMessages, NeighbourSlots, PairProduct, natural_coupling


def test_neighbour_slots_hold_every_edge_once():
    receivers = torch.tensor([2, 0, 2, 1, 2, 0, 4])
    table, filled, width = NeighbourSlots()(receivers, num_nodes=5)
    assert width == 3
    rows, used = table.view(5, width), filled.view(5, width)
    for atom in range(5):
        edges = sorted(e for e, u in zip(rows[atom].tolist(), used[atom].tolist()) if u)
        assert edges == sorted(int(e) for e in torch.nonzero(receivers == atom).flatten())
    assert int(filled.sum()) == len(receivers)
    assert NeighbourSlots()(torch.zeros(0, dtype=torch.long), 3)[2] == 0


@pytest.mark.parametrize("in_ls", [[0], [0, 1]])
def test_edge_messages_equal_a_per_edge_sum(in_ls):
    """A_i,p = sum_j R_p (Y (x) x_j)_p, written out with e3nn's Wigner 3j and a scatter."""
    torch.set_default_dtype(torch.float64)
    try:
        rng = torch.Generator().manual_seed(0)
        n, k, sh_lmax = 6, 3, 3
        messages = EdgeMessages(in_ls, sh_lmax, sh_lmax, k)
        receivers = torch.tensor([0, 0, 1, 3, 3, 3, 5, 2])
        senders = torch.tensor([1, 2, 0, 0, 4, 5, 3, 4])
        vectors = torch.randn(len(receivers), 3, generator=rng)
        harmonics = o3.spherical_harmonics(list(range(sh_lmax + 1)), vectors, normalize=True, normalization="component")
        radial = torch.randn(len(receivers), messages.num_paths, k, generator=rng)
        x = torch.randn(n, sum(2 * l + 1 for l in in_ls), k, generator=rng)
        table, filled, width = NeighbourSlots()(receivers, n)
        out = messages(x, harmonics, radial, senders, table, filled, width)
        expected = [[] for _ in range(sh_lmax + 1)]
        for p, (block, l_sh, big_l) in enumerate(messages.paths):
            l_in = in_ls[block]
            cg = o3.wigner_3j(l_in, l_sh, big_l) * (2 * big_l + 1) ** 0.5
            x_in = x[senders][:, l_in * l_in:(l_in + 1) ** 2, :]  # [E, d_in, K]
            y = harmonics[:, l_sh * l_sh:(l_sh + 1) ** 2]
            if l_in == 0:  # 0 (x) L -> L is Y_L itself: e3nn's coefficient 1/sqrt(2L+1) times sqrt(2L+1)
                per_edge = torch.einsum("eM,ek->eMk", y, x_in[:, 0, :])
            else:
                per_edge = torch.einsum("mnM,emk,en->eMk", cg, x_in, y)
            per_edge = per_edge * radial[:, p, :].unsqueeze(1)
            expected[big_l].append(torch.zeros(n, 2 * big_l + 1, k).index_add(0, receivers, per_edge))
        for big_l in range(sh_lmax + 1):
            torch.testing.assert_close(out[big_l], torch.cat(expected[big_l], dim=-1), rtol=1e-12, atol=1e-12)
    finally:
        torch.set_default_dtype(torch.float32)


def test_pair_product_is_the_clebsch_gordan_product():
    torch.set_default_dtype(torch.float64)
    try:
        product = PairProduct([1, 2], [1, 2], [0, 1, 2, 3], symmetric=True)
        x = torch.randn(4, 3 + 5, 2)
        out = product(x, x)
        blocks = {1: x[:, 0:3], 2: x[:, 3:8]}
        expected = []
        for la, lb in ((1, 1), (1, 2), (2, 2)):
            for big_l in natural_coupling(la, lb, 3):
                cg = o3.wigner_3j(la, lb, big_l) * (2 * big_l + 1) ** 0.5
                expected.append(torch.einsum("abM,nak,nbk->nMk", cg, blocks[la], blocks[lb]))
        torch.testing.assert_close(out, torch.cat(expected, dim=1), rtol=1e-12, atol=1e-12)
        assert [l for l, _ in product.paths] == [0, 2, 1, 3, 0, 2]
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("hyperparameters", [{"hidden_lmax": 1, "num_layers": 3}, {"correlation": 2, "sh_lmax": 2},
                                             {"correlation": 1}])
def test_variants_pass_the_physics_checks(hyperparameters, ethanol, water):
    torch.manual_seed(2)
    model = eqff.build_model("ace", elements=["H", "C", "O"], cutoff=5.0, dtype="float64", features=8,
                             **hyperparameters)
    failed = [str(r) for r in testing.run_all_checks(model, ethanol, water) if not r.passed]
    assert not failed, "\n".join(failed)


def test_isolated_atom_and_bad_correlation():
    from ase import Atoms

    model = eqff.build_model("ace", elements=["H", "O"], cutoff=5.0, dtype="float64", features=8)
    from eqff.predict import predict

    result = predict(model, [Atoms("O", positions=[[0, 0, 0]])])[0]
    assert np.isfinite(result["energy"]) and np.all(result["forces"] == 0)
    with pytest.raises(ValueError, match="correlation must be 1, 2 or 3"):
        eqff.build_model("ace", elements=["H"], cutoff=5.0, correlation=4)

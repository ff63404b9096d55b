"""The shipped physics checks (a)-(f) on every model, in float64, on an rMD17 ethanol frame and
a periodic water_192 frame; and proof that the checks can fail."""
import numpy as np
import pytest
import torch

import eqff
from eqff import testing
from eqff.models.potential import Potential
from conftest import MODELS


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    torch.manual_seed(1)
    return eqff.build_model(request.param, elements=["H", "C", "O"], cutoff=5.0, dtype="float64")


def test_all_physics_checks_pass(model, ethanol, water):
    results = testing.run_all_checks(model, ethanol, water)
    failed = [str(r) for r in results if not r.passed]
    assert not failed, "\n".join(failed)
    assert len(results) == 10


class _PositionDependent(torch.nn.Module):
    """A deliberately broken model: energy depends on absolute x (not translation invariant)."""

    def forward(self, species, edge_index, edge_vector):
        raise NotImplementedError


def test_checks_detect_a_broken_model(ethanol):
    good = eqff.build_model("schnet", elements=["H", "C", "O"], cutoff=5.0, dtype="float64")

    class Broken(torch.nn.Module):
        cutoff = good.cutoff

        def parameters(self, recurse=True):
            return good.parameters(recurse)

        def __call__(self, data, compute_forces=True, compute_stress=False):
            data = dict(data)
            out = good(data, compute_forces, compute_stress)
            # adds an energy term in absolute position without the matching force
            out["energy"] = out["energy"] + 0.1 * torch.zeros_like(out["energy"]).index_add(
                0, data["batch"], data["positions"][:, 0])
            return out

    broken = Broken()
    assert not testing.check_euclidean_symmetry(broken, ethanol).passed
    assert not testing.check_forces_finite_difference(broken, ethanol).passed


def test_hard_cutoff_fails_the_smoothness_check():
    model = eqff.build_model("schnet", elements=["H", "O"], cutoff=4.0, dtype="float64")
    # replace the smooth envelope by a step: the energy jumps at the cutoff
    model.model.geometry.envelope.forward = lambda r: (r < 4.0).to(r.dtype)
    assert not testing.check_cutoff_smoothness(model, [1, 8]).passed

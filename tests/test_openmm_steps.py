"""eqff.openmm.fast_steps: TorchScript's executor optimisation off on CPU platforms only, for the block only."""
import openmm
import pytest
import torch

import eqff.openmm
from eqff.calculators.openmm_steps import platform_name


def _optimising() -> bool:
    return torch._C._get_graph_executor_optimize()


pytestmark = pytest.mark.skipif(not hasattr(torch._C, "_get_graph_executor_optimize"),
                                reason="this torch has no TorchScript graph executor")


@pytest.mark.parametrize("name", ["CPU", "Reference"])
def test_cpu_platforms_step_without_the_executor_optimisation(name):
    context = openmm.Context(_one_particle(), openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName(name))
    assert platform_name(context) == name
    assert _optimising()
    with eqff.openmm.fast_steps(context):
        assert not _optimising()
    assert _optimising()  # the rest of the thread keeps its setting


def test_other_platforms_change_nothing():
    with eqff.openmm.fast_steps("CUDA"):
        assert _optimising()


def test_simulations_and_platforms_are_understood_and_anything_else_is_refused():
    platform = openmm.Platform.getPlatformByName("Reference")
    assert platform_name(platform) == "Reference"
    simulation = openmm.app.Simulation(openmm.app.Topology(), _one_particle(), openmm.VerletIntegrator(1e-3), platform)
    assert platform_name(simulation) == "Reference"
    with pytest.raises(TypeError, match="Simulation, Context, Platform or platform name"):
        eqff.openmm.fast_steps(3)


def _one_particle() -> openmm.System:
    system = openmm.System()
    system.addParticle(1.0)
    return system

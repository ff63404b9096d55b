"""eqff: equivariant message-passing force fields.

    model = eqff.build_model("segnn", elements=["H", "O"], cutoff=5.0)
    atoms.calc = eqff.EqffCalculator(model, dtype="float64")
"""
from eqff._version import __version__
from eqff.calculators.ase import EqffCalculator
from eqff.models import Potential, build_model
from eqff.models.io import load_potential

__all__ = ["EqffCalculator", "Potential", "__version__", "build_model", "load_potential"]


def __getattr__(name):
    # ``eqff.openmm`` after a plain ``import eqff``, without importing OpenMM at ``import eqff``
    if name == "openmm":
        import importlib

        return importlib.import_module("eqff.openmm")
    raise AttributeError(f"module 'eqff' has no attribute {name!r}")

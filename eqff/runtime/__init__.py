"""The deploy runtime: the one path every user-facing adapter runs a potential through.

    loaded = eqff.runtime.load_model("best.pt")         # checkpoint, TorchScript export, .pt2 or a model
    loaded.module(batch)                                # the potential (ExportedPotential interface)
    loaded.note                                         # what was done about the dtype, e.g. "float32, as saved"

* ``loading``: one loader and one dtype/device policy (``dtype=None`` keeps the model's own;
  another dtype works on a private copy and says so; the caller's object is never changed).
* ``inputs``: input validation, unit conversion (Å/eV inside, nm/kJ/mol for OpenMM) and the
  periodic setup, as free functions the TorchScript and eager paths share.
* ``skin``: the neighbour-list skin cache (rebuild test and cutoff filter), shared by the ASE
  calculator (vesin builds the list) and the OpenMM module (pure torch, inside TorchScript).

Adapters over it: ``eqff.calculators.ase.EqffCalculator``, ``eqff.openmm`` (TorchForce,
PythonForce, openmm-ml, ``system_from_atoms``), ``eqff check``, ``eqff evaluate``, ``eqff demo``
and the md_scripts.
"""
from eqff.runtime.loading import DTYPES, LoadedModel, load_model, resolve_dtype

__all__ = ["DTYPES", "LoadedModel", "load_model", "resolve_dtype"]

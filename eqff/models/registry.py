"""One table from model name to class; ``build_model`` checks hyperparameters against it."""
import inspect
from typing import Any, Dict, Iterable, Optional, Union

import ase.data
import torch

from eqff.dtypes import resolve_dtype
from eqff.errors import ConfigError
from eqff.models.ace import MessagePassingACE
from eqff.models.egnn import EGNN
from eqff.models.lifted import LiftedGroupConv
from eqff.models.pointconv import PointConv
from eqff.models.potential import Potential
from eqff.models.schnet import SchNet
from eqff.models.segnn import SEGNN

MODELS: Dict[str, type] = {"ace": MessagePassingACE, "schnet": SchNet, "egnn": EGNN, "segnn": SEGNN, "pointconv": PointConv, "lifted": LiftedGroupConv}


def atomic_number(element: Union[str, int]) -> int:
    if isinstance(element, str):
        if element not in ase.data.atomic_numbers:
            raise ConfigError(f"unknown element symbol {element!r}")
        return int(ase.data.atomic_numbers[element])
    z = int(element)
    if not 1 <= z <= 118:
        raise ConfigError(f"atomic number {z} is out of range 1..118")
    return z


def hyperparameter_defaults(kind: str) -> Dict[str, Any]:
    """The hyperparameters of model ``kind`` with their defaults."""
    cls = _model_class(kind)
    params = inspect.signature(cls.__init__).parameters
    return {name: p.default for name, p in params.items() if name not in ("self", "num_elements", "cutoff")}


PRIORS = (None, "zbl")


def build_model(kind: str, elements: Iterable[Union[str, int]], cutoff: float,
                dtype: Union[str, torch.dtype, None] = None, prior: Optional[str] = None,
                **hyperparameters: Any) -> Potential:
    """A new (untrained) potential. ``elements``: symbols or atomic numbers; ``cutoff`` in Å;
    ``dtype`` float32 or float64 (default: torch's default dtype); ``prior``: None or "zbl"
    (a short-range nuclear repulsion added to the learned energy, eqff/models/priors.py).

    The model is built in float64 and then cast, so that constants such as e3nn's
    Clebsch-Gordan coefficients are exact in float64 (casting a float32 model up would keep
    their float32 rounding, and equivariance errors of ~1e-10 instead of ~1e-15)."""
    defaults = hyperparameter_defaults(kind)
    unknown = sorted(set(hyperparameters) - set(defaults))
    if unknown:
        raise ConfigError(f"unknown hyperparameter(s) {unknown} for model {kind!r}; valid: {sorted(defaults)}")
    numbers = sorted({atomic_number(e) for e in elements})
    if not numbers:
        raise ConfigError("elements is empty: name the elements the model must know, e.g. ['H', 'O']")
    if not float(cutoff) > 0:
        raise ConfigError(f"cutoff must be positive (Å), got {cutoff}")
    if prior not in PRIORS:
        raise ConfigError(f"unknown prior {prior!r}; choose one of {list(PRIORS)}")
    resolved = {**defaults, **hyperparameters}
    config = {"kind": kind, "elements": numbers, "cutoff": float(cutoff), "hyperparameters": resolved, "prior": prior}
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        potential = Potential(_model_class(kind)(num_elements=len(numbers), cutoff=float(cutoff), **resolved), config)
    finally:
        torch.set_default_dtype(previous)
    return potential.to(resolve_dtype(dtype) if dtype is not None else previous)


def build_from_config(config: Dict[str, Any], dtype: Union[str, torch.dtype, None] = None) -> Potential:
    """Rebuild a potential from ``Potential.config()`` (e.g. read back from a checkpoint)."""
    return build_model(config["kind"], config["elements"], config["cutoff"], dtype=dtype,
                       prior=config.get("prior"), **config.get("hyperparameters", {}))


def _model_class(kind: str) -> type:
    if kind not in MODELS:
        raise ConfigError(f"unknown model {kind!r}; choose one of {sorted(MODELS)}")
    return MODELS[kind]

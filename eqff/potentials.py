"""Where the shipped potentials are: ``shipped_potential("ethanol_ace")`` -> its model.pt.

They live in the repository's ``potentials/<name>/`` folders. A clone or an editable install
(``pip install -e .``) reads them there; a regular install (``pip install .``, a wheel) carries
each one's model.pt, MODEL_CARD.md, config.yaml and metrics.json as ``eqff/_potentials/<name>/``
(the mapping is in pyproject.toml; figures, check reports and the training data stay in the
repository).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Union

_PACKAGE = Path(__file__).resolve().parent
INSTALLED = _PACKAGE / "_potentials"  # a regular install
CHECKOUT = _PACKAGE.parent / "potentials"  # a clone, or an editable install of one


def potential_roots() -> List[Path]:
    """The folders searched for ``<name>/``, in order."""
    return [INSTALLED, CHECKOUT]


def shipped_potential(names: Union[str, Sequence[str]], filename: str = "model.pt") -> Path:
    """``<root>/<name>/<filename>`` for the first of ``names`` (best first) that exists in one of
    :func:`potential_roots`. Raises :class:`eqff.errors.ModelFileError` naming every place looked in."""
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        for root in potential_roots():
            path = root / name / filename
            if path.is_file():
                return path
    from eqff.errors import ModelFileError

    wanted = names[0] if len(names) == 1 else "{" + ",".join(names) + "}"
    looked = ", ".join(f"{root}/{wanted}/{filename}" for root in potential_roots())
    raise ModelFileError(f"no shipped potential {wanted}: looked for {looked}. The shipped potentials come with a "
                         "clone of the eqff repository (potentials/) and with a regular install of it (pip install "
                         "CLONE or WHEEL: eqff/_potentials/); reinstall eqff from one, or pass a model file of your own")

"""The dtypes eqff computes in, and their names: one table for the models, training and the runtime."""
from __future__ import annotations

from typing import Optional, Union

import torch

from eqff.errors import ConfigError

DTYPES = {"float32": torch.float32, "float64": torch.float64, "single": torch.float32, "double": torch.float64,
          torch.float32: torch.float32, torch.float64: torch.float64}


def resolve_dtype(dtype: Union[str, torch.dtype, None]) -> Optional[torch.dtype]:
    """A torch dtype from "float32"/"float64"/"single"/"double"/a torch dtype; None stays None."""
    if dtype is None:
        return None
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be 'float32' or 'float64' (or 'single'/'double'), got {dtype!r}")
    return DTYPES[dtype]


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")

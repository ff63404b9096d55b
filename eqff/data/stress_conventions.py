"""Stress labels stored in another convention than ASE's, converted once when frames are read.

ASE (and eqff) use the stress σ = (1/V) ∂E/∂ε in eV/Å³, positive under tension. DFT sets often
keep the code's own numbers:

* ``virial_stress_kB_mlearn`` (the mlearn sets, Zuo et al. 2020): VASP's stress in kBar with
  VASP's sign (positive under compression, as a pressure), six numbers in the order
  xx yy zz xy zx yz. The order was read off the data, not from a document: in the strained
  "Elastic" frames of mlearn Mo a cell sheared in x–z has its large component fifth and one
  sheared in y–z sixth (tests/test_data.py checks this and the sign against finite
  differences of the DFT energies).

``read_frames`` uses these when the stress key is one of them, or when the default key
``stress`` is missing and a frame carries one of them.
"""
from __future__ import annotations

import numpy as np
from ase import units

from eqff.errors import DataError

MLEARN_VIRIAL_KEY = "virial_stress_kB_mlearn"
KBAR = 0.1 * units.GPa  # eV/Å³


def from_mlearn_virial(values: np.ndarray, where: str) -> np.ndarray:
    """ASE stress [3,3] (eV/Å³) from mlearn's six VASP numbers (kBar, xx yy zz xy zx yz, pressure sign)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.shape != (6,):
        raise DataError(f"{where}: key '{MLEARN_VIRIAL_KEY}' has {values.size} numbers; expected 6 "
                        "(kBar, xx yy zz xy zx yz)")
    xx, yy, zz, xy, zx, yz = values
    return -KBAR * np.array([[xx, xy, zx], [xy, yy, yz], [zx, yz, zz]])


CONVERTERS = {MLEARN_VIRIAL_KEY: from_mlearn_virial}

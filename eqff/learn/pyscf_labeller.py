"""A labeller for molecules: energy and forces from PySCF (Kohn-Sham DFT or Hartree-Fock with
density fitting), as an ASE calculator.

    labeller: pyscf
    labeller_kwargs: {functional: pbe, basis: def2-svp, charge: 0, spin: 0}

``spin`` is PySCF's: 2S, the number of unpaired electrons (0: restricted, else unrestricted).
``functional``: any PySCF ``xc`` string, or ``hf``. Density fitting (RI-J, and RI-K for hybrids)
makes the SCF and its gradient several times faster at a ~1e-5 Hartree error; ``auxbasis=None``
lets PySCF choose the fitting basis that matches ``basis``. ``grid_level`` 4: PySCF's default
3 leaves force errors up to 3 meV/Å against ORCA's rMD17 labels, level 4 reproduces them
(benchmarks/RESULTS.md, "PySCF as the labeller"). ``threads``: PySCF's OpenMP threads (default:
all cores; `eqff learn` passes its ``threads``). Energies in eV, forces in eV/Å.
PySCF is an optional dependency: ``pip install eqff[pyscf]``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from eqff.learn.labellers import LabellingError
from eqff.units import BOHR_TO_ANGSTROM, HARTREE_TO_EV


class PySCFCalculator(Calculator):
    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, functional: str = "pbe", basis: str = "def2-svp", charge: int = 0, spin: int = 0,
                 density_fit: bool = True, auxbasis: Optional[str] = None, conv_tol: float = 1e-9,
                 max_cycle: int = 100, max_memory_mb: int = 4000, grid_level: int = 4,
                 threads: Optional[int] = None, **kwargs):
        try:
            import pyscf  # noqa: F401
        except ImportError as error:
            raise ImportError("the pyscf labeller needs PySCF, which is not installed: pip install eqff[pyscf]") from error
        super().__init__(**kwargs)
        self.functional, self.basis = functional, basis
        self.charge, self.spin = int(charge), int(spin)
        self.density_fit, self.auxbasis = bool(density_fit), auxbasis
        self.conv_tol, self.max_cycle, self.max_memory_mb = float(conv_tol), int(max_cycle), int(max_memory_mb)
        self.grid_level = int(grid_level)
        self.threads = None if threads is None else int(threads)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if atoms.pbc.any():
            raise LabellingError("the pyscf labeller is for molecules; this structure is periodic (pbc "
                                 f"{atoms.pbc.tolist()}): use a periodic DFT code as the labeller")
        if self.threads is not None:  # else PySCF takes every core, spinning against other work on them
            from pyscf import lib

            lib.num_threads(self.threads)
        method = self._method(atoms)
        energy = method.kernel()
        if not method.converged:
            # stretched bonds from exploration MD (the frames active learning wants most) defeat DIIS;
            # the second-order solver, started from where DIIS stopped, converges them (aspirin, C-C at 2 Å)
            first = method
            method = first.newton()
            method.max_cycle = self.max_cycle
            energy = method.kernel(first.mo_coeff, first.mo_occ)
        if not method.converged:
            raise LabellingError(f"PySCF {self.functional}/{self.basis}: the SCF did not converge in {self.max_cycle} "
                                 f"cycles (DIIS, then second order) for {atoms.get_chemical_formula()}; raise "
                                 "labeller_kwargs max_cycle or check charge and spin")
        gradient = method.nuc_grad_method().kernel()  # Hartree/Bohr
        self.results = {
            "energy": float(energy) * HARTREE_TO_EV,
            "free_energy": float(energy) * HARTREE_TO_EV,
            "forces": -np.asarray(gradient, dtype=np.float64) * (HARTREE_TO_EV / BOHR_TO_ANGSTROM),
        }

    def _method(self, atoms):
        from pyscf import dft, gto, scf

        try:
            molecule = gto.M(atom=[(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)],
                             basis=self.basis, charge=self.charge, spin=self.spin, unit="Angstrom", verbose=0,
                             max_memory=self.max_memory_mb)
        except RuntimeError as error:  # e.g. spin and electron count of different parity
            raise LabellingError(f"PySCF cannot build {atoms.get_chemical_formula()} with charge {self.charge}, "
                                 f"spin {self.spin}, basis {self.basis!r} ({error})") from error
        restricted = self.spin == 0
        if self.functional.lower() == "hf":
            method = scf.RHF(molecule) if restricted else scf.UHF(molecule)
        else:
            method = dft.RKS(molecule) if restricted else dft.UKS(molecule)
            method.xc = self.functional
            method.grids.level = self.grid_level
        if self.density_fit:
            method = method.density_fit(auxbasis=self.auxbasis)
        method.conv_tol, method.max_cycle = self.conv_tol, self.max_cycle
        return method

"""Unit conversions, in one place.

eqff works internally in ASE units (Å, eV, eV/Å, eV/Å³). OpenMM uses nm and kJ/mol;
MD17 ``.npz`` files use kcal/mol. Every conversion in the package goes through these numbers.
"""
from ase import units as _ase_units

#: 1 eV in kJ/mol (96.485332...), from ASE's CODATA constants.
EV_TO_KJ_PER_MOL: float = float(_ase_units.mol / _ase_units.kJ)
#: 1 kcal/mol in eV.
KCAL_PER_MOL_TO_EV: float = float(_ase_units.kcal / _ase_units.mol)
ANGSTROM_TO_NM: float = 0.1
NM_TO_ANGSTROM: float = 10.0
#: Boltzmann's constant in kJ/mol/K (OpenMM's energy unit per kelvin).
BOLTZMANN_KJ_PER_MOL_K: float = float(_ase_units.kB) * EV_TO_KJ_PER_MOL
#: an ASE velocity (Å per ASE time unit) in nm/ps (OpenMM's velocity unit): Å/fs x 100.
ASE_VELOCITY_TO_NM_PER_PS: float = float(_ase_units.fs) * 100.0
#: eV/Å -> kJ/mol/nm (force units of OpenMM).
EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM: float = EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM
#: 1 GPa in eV/Å³.
GPA_TO_EV_PER_A3: float = float(_ase_units.GPa)
#: 1 Hartree in eV and 1 Bohr in Å (quantum-chemistry codes: PySCF), from ASE's CODATA constants.
HARTREE_TO_EV: float = float(_ase_units.Hartree)
BOHR_TO_ANGSTROM: float = float(_ase_units.Bohr)

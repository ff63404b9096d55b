"""Materials checks of a periodic potential: what a materials scientist computes first.

* **Equation of state**: energies of isotropically scaled cells (±3 % in the lattice constant,
  atoms scaled with the cell), a Birch–Murnaghan fit (``ase.eos``): equilibrium volume,
  energy and bulk modulus B.
* **Elastic constants of a cubic crystal** from stress–strain: central differences of the
  stress under ±0.5 % strains, C11 and C12 from a uniaxial xx strain (σ_xx = C11 ε,
  σ_yy = C12 ε) and C44 from a y–z shear (σ_yz = C44 γ, γ = 2ε_yz). Clamped-ion (atoms move
  with the cell): exact for crystals with one atom in the primitive cell (bcc, fcc), an upper
  bound otherwise. Taken at the cell given: relax it first (or use the EOS volume).
* **Vacancy formation energy**: E_f = E(N−1, relaxed) − (N−1)/N · E(N), the atom nearest the
  cell's centre removed, positions relaxed (BFGS, fixed cell) to ``fmax``.
* **NPT keeps the crystal**: Berendsen NPT at ``temperature`` and zero pressure; passes when
  the volume stays within 10 % and the atoms stay near their sites (RMS displacement from the
  start, drift removed, below 15 % of the nearest-neighbour distance — well under the
  Lindemann melting criterion, ~10–15 % of it in amplitude per axis).

``eqff check MODEL --protocol materials --structure bulk.xyz`` runs them; DFT values given
with ``--dft C11,C12,C44`` (GPa) and ``--dft-vacancy`` (eV) are printed beside them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
from ase import Atoms, units


@dataclass
class EquationOfState:
    volumes_A3: List[float]
    energies_eV: List[float]
    v0_A3: float
    e0_eV: float
    bulk_modulus_GPa: float


def equation_of_state(atoms: Atoms, calculator, max_strain: float = 0.03, points: int = 9) -> EquationOfState:
    from ase.eos import EquationOfState as Fit

    volumes, energies = [], []
    for scale in np.linspace(1 - max_strain, 1 + max_strain, points):
        probe = atoms.copy()
        probe.set_cell(atoms.cell.array * scale, scale_atoms=True)
        probe.calc = calculator
        volumes.append(probe.get_volume())
        energies.append(probe.get_potential_energy())
    v0, e0, b = Fit(volumes, energies, eos="birchmurnaghan").fit()
    return EquationOfState(volumes, energies, float(v0), float(e0), float(b / units.GPa))


def _strained_stress(atoms: Atoms, calculator, strain: np.ndarray) -> np.ndarray:
    """ASE stress [3,3] (eV/Å³) of ``atoms`` under the symmetric ``strain`` (atoms follow the cell)."""
    from ase.stress import voigt_6_to_full_3x3_stress

    probe = atoms.copy()
    probe.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
    probe.calc = calculator
    return voigt_6_to_full_3x3_stress(probe.get_stress())


def cubic_elastic_constants(atoms: Atoms, calculator, strain: float = 0.005) -> Dict[str, float]:
    """C11, C12, C44 (GPa) of a cubic crystal by central differences of the stress."""
    uniaxial = np.zeros((3, 3))
    uniaxial[0, 0] = strain
    shear = np.zeros((3, 3))
    shear[1, 2] = shear[2, 1] = strain  # γ = 2 strain
    dsigma = _strained_stress(atoms, calculator, uniaxial) - _strained_stress(atoms, calculator, -uniaxial)
    dshear = _strained_stress(atoms, calculator, shear) - _strained_stress(atoms, calculator, -shear)
    to_gpa = 1.0 / units.GPa
    return {"C11": float(dsigma[0, 0] / (2 * strain) * to_gpa),
            "C12": float(0.5 * (dsigma[1, 1] + dsigma[2, 2]) / (2 * strain) * to_gpa),
            "C44": float(dshear[1, 2] / (2 * 2 * strain) * to_gpa)}


def vacancy_formation_energy(atoms: Atoms, calculator, fmax: float = 0.01, steps: int = 300) -> Dict[str, float]:
    """Relaxed and unrelaxed vacancy formation energy (eV) in the supercell ``atoms``."""
    from ase.optimize import BFGS

    perfect = atoms.copy()
    perfect.calc = calculator
    e_perfect = perfect.get_potential_energy()
    centre = atoms.cell.array.sum(axis=0) / 2
    defect = atoms.copy()
    del defect[int(np.argmin(np.linalg.norm(atoms.positions - centre, axis=1)))]
    defect.calc = calculator
    n = len(atoms)
    unrelaxed = defect.get_potential_energy() - (n - 1) / n * e_perfect
    optimizer = BFGS(defect, logfile=None)
    converged = optimizer.run(fmax=fmax, steps=steps)
    relaxed = defect.get_potential_energy() - (n - 1) / n * e_perfect
    return {"relaxed_eV": float(relaxed), "unrelaxed_eV": float(unrelaxed), "converged": bool(converged),
            "atoms": n}


@dataclass
class NPTResult:
    temperature_K: float
    picoseconds: float
    kept_crystal: bool
    volume_change: float  # final / initial - 1
    rms_displacement_A: float  # from the starting sites, drift removed, at the end
    nearest_neighbour_A: float
    times_ps: List[float] = field(default_factory=list)
    volumes_A3: List[float] = field(default_factory=list)


def npt_keeps_crystal(atoms: Atoms, calculator, temperature: float = 300.0, picoseconds: float = 2.0,
                      timestep_fs: float = 2.0, seed: int = 0, max_volume_change: float = 0.10,
                      max_rms_fraction: float = 0.15) -> NPTResult:
    from ase.md.nptberendsen import NPTBerendsen
    from ase.md.velocitydistribution import Stationary
    from ase.neighborlist import neighbor_list

    from eqff.check.md import thermalize_momenta

    run = atoms.copy()
    run.calc = calculator
    thermalize_momenta(run, temperature_K=temperature, rng=np.random.default_rng(seed))
    Stationary(run)
    start = run.get_scaled_positions(wrap=False).copy()
    volume0 = run.get_volume()
    _, _, d = neighbor_list("ijd", run, 4.0)
    nearest = float(d.min()) if len(d) else float("nan")
    # compressibility of a stiff solid (~1/100 GPa): only sets the barostat's response time
    dyn = NPTBerendsen(run, timestep_fs * units.fs, temperature_K=temperature, pressure_au=0.0,
                       taut=100 * units.fs, taup=500 * units.fs, compressibility_au=1.0 / (100 * units.GPa))
    result = NPTResult(temperature, picoseconds, True, 0.0, 0.0, nearest)

    def record():
        result.times_ps.append(dyn.nsteps * timestep_fs / 1000.0)
        result.volumes_A3.append(run.get_volume())

    dyn.attach(record, interval=10)
    dyn.run(max(int(round(picoseconds * 1000 / timestep_fs)), 1))
    moved = (run.get_scaled_positions(wrap=False) - start) @ run.cell.array
    moved -= moved.mean(axis=0)
    result.volume_change = float(run.get_volume() / volume0 - 1)
    result.rms_displacement_A = float(np.sqrt((moved ** 2).sum(axis=1).mean()))
    result.kept_crystal = (abs(result.volume_change) < max_volume_change
                           and result.rms_displacement_A < max_rms_fraction * nearest)
    return result


def run_materials(model, structure: str, output: str = "check", dft: Optional[List[float]] = None,
                  dft_vacancy: Optional[float] = None, supercell: int = 3, npt_ps: float = 2.0,
                  npt_temperature: float = 300.0, seed: int = 0, threads: Optional[int] = None) -> dict:
    """``eqff check --protocol materials``: the four checks on ``structure`` (a periodic crystal;
    its cubic cell for the elastic constants), ``materials.md``/``.json`` and ``eos.png`` in
    ``output``. ``model``: anything ``EqffCalculator`` loads, or an ASE calculator."""
    import dataclasses
    import json
    import os

    import ase.io
    from matplotlib.figure import Figure

    from eqff.calculators.ase import EqffCalculator

    os.makedirs(output, exist_ok=True)
    atoms = ase.io.read(structure, 0)
    if not atoms.pbc.all():
        raise ValueError(f"{structure}: the materials checks need a cell periodic in all three directions")
    from ase.calculators.calculator import Calculator

    calculator = model if isinstance(model, Calculator) else EqffCalculator(model, threads=threads)
    model = getattr(model, "name", model) if isinstance(model, Calculator) else model
    if dft is not None and len(dft) != 3:
        raise ValueError(f"DFT elastic constants: give C11,C12,C44 (three numbers in GPa), got {dft}")
    eos = equation_of_state(atoms, calculator)
    at_v0 = atoms.copy()
    at_v0.set_cell(atoms.cell.array * (eos.v0_A3 / atoms.get_volume()) ** (1 / 3), scale_atoms=True)
    elastic = cubic_elastic_constants(at_v0, calculator)
    big = at_v0 * (supercell, supercell, supercell)
    vacancy = vacancy_formation_energy(big, calculator)
    npt = npt_keeps_crystal(big, calculator, npt_temperature, npt_ps, seed=seed)
    fig = Figure(figsize=(5, 3.6))
    ax = fig.subplots()
    ax.plot(eos.volumes_A3, eos.energies_eV, "o")
    ax.set_xlabel("volume (Å³)")
    ax.set_ylabel("energy (eV)")
    ax.set_title(f"B = {eos.bulk_modulus_GPa:.0f} GPa, V0 = {eos.v0_A3:.2f} Å³")
    fig.tight_layout()
    fig.savefig(os.path.join(output, "eos.png"), dpi=110)
    reference = dict(zip(("C11", "C12", "C44"), dft)) if dft else {}
    rows = [("bulk modulus B (GPa, EOS)", eos.bulk_modulus_GPa,
             (reference["C11"] + 2 * reference["C12"]) / 3 if reference else None)]
    rows += [(f"{name} (GPa, clamped-ion)", value, reference.get(name)) for name, value in elastic.items()]
    rows += [(f"vacancy formation (eV, relaxed, {vacancy['atoms']}-atom cell)", vacancy["relaxed_eV"], dft_vacancy)]
    lines = [f"# Materials checks: {model}", "", f"Structure: {structure} ({atoms.get_chemical_formula()}), at the "
             f"EOS volume {eos.v0_A3:.3f} Å³ (lattice scaled by {(eos.v0_A3 / atoms.get_volume()) ** (1 / 3):.4f}).",
             "", "| quantity | eqff | DFT (given) |", "|---|---|---|"]
    lines += [f"| {name} | {value:.3f} | {'' if ref is None else f'{ref:.3f}'} |" for name, value, ref in rows]
    lines += ["", f"NPT (Berendsen, {npt_temperature:.0f} K, 0 bar, {npt_ps} ps, {len(big)} atoms): "
              f"{'kept the crystal' if npt.kept_crystal else 'did NOT keep the crystal'}; volume change "
              f"{100 * npt.volume_change:+.1f} %, RMS displacement {npt.rms_displacement_A:.3f} Å "
              f"(nearest neighbours {npt.nearest_neighbour_A:.3f} Å).", "", "![eos](eos.png)", ""]
    with open(os.path.join(output, "materials.md"), "w") as handle:
        handle.write("\n".join(lines))
    summary = {"eos": dataclasses.asdict(eos), "elastic_GPa": elastic, "vacancy": vacancy,
               "npt": dataclasses.asdict(npt), "dft": {"elastic_GPa": reference, "vacancy_eV": dft_vacancy}}
    with open(os.path.join(output, "materials.json"), "w") as handle:
        json.dump(summary, handle, indent=1)
    return summary

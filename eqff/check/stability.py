"""The MD stability protocol of Fu et al., "Forces are not enough" (TMLR 2023).

A potential is judged by how long MD with it stays physical, not only by its test error:

* every bonded pair of the starting structure (closer than 1.2x the sum of covalent radii)
  is watched; the run is **unstable** from the first moment any of these bond lengths
  deviates by more than ``max_deviation`` (0.5 Å) from its starting length. The stability
  time is that moment, or the whole run when it never happens.
* Molecules: Langevin NVT at 500 K with a 0.5 fs step, 300 ps for the full protocol.
  Periodic liquids: NVT at 300 K (the temperature of their training data), the same bond
  criterion, and the partial radial distribution functions g(r) of every element pair,
  averaged over the run after the first 10 %, against those of reference frames (the DFT
  frames the potential was trained on); the MAE of each g(r) over r is reported.

The dynamics run in ASE (``EqffCalculator``, any stack). ``eqff check --protocol stability``
runs this; ``stability_run`` is the library call.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin

from eqff.check.md import _mic_vectors, _start, bonds_of

MAX_DEVIATION_A = 0.5  # Fu et al.: a bond length more than 0.5 Å away from its equilibrium value
EQUILIBRATION_FRACTION = 0.1  # g(r) is averaged over the run after this fraction


@dataclass
class PairRDF:
    r_A: List[float]
    md: List[float]
    reference: List[float]
    mae: float  # mean |g_md(r) - g_reference(r)| over the bins


@dataclass
class StabilityResult:
    temperature_K: float
    timestep_fs: float
    length_ps: float  # asked for
    stable: bool  # no bond left its window during the whole run
    stability_time_ps: float  # first time a bond left its window (the whole length when stable)
    max_bond_deviation_A: float  # largest |d - d0| seen over the run (until it stopped)
    bonds: int
    steps_per_second: float = 0.0
    times_ps: List[float] = field(default_factory=list)
    deviations_A: List[float] = field(default_factory=list)  # largest |d - d0| at each look
    temperatures_K: List[float] = field(default_factory=list)
    rdf: Dict[str, PairRDF] = field(default_factory=dict)  # "O-H": ... (periodic with reference frames)
    reason: str = ""


def element_pairs(numbers: Sequence[int]) -> List[tuple]:
    from ase.data import chemical_symbols

    present = sorted(set(int(z) for z in numbers), reverse=True)  # O before H: "O-H", as chemists write it
    return [(chemical_symbols[a], chemical_symbols[b]) for k, a in enumerate(present) for b in present[k:]]


def rdf_rmax(atoms: Atoms, wanted: float = 6.0) -> float:
    """The largest r (up to ``wanted``) whose sphere fits in the cell (no double counting of images)."""
    cell = atoms.cell.array
    volume = abs(np.linalg.det(cell))
    widths = [volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)]
    return float(min(wanted, 0.499 * min(widths)))


def average_rdf(frames: Sequence[Atoms], pair: tuple, rmax: float, nbins: int) -> tuple:
    """(r, g(r)) of element ``pair`` averaged over ``frames`` (ASE's partial g(r), frame by frame)."""
    from ase.geometry.rdf import get_rdf

    total, r = None, None
    for atoms in frames:
        g, r = get_rdf(atoms, rmax, nbins, elements=pair)
        total = g if total is None else total + g
    return np.asarray(r), total / len(frames)


def stability_run(atoms: Atoms, calculator, temperature: float = 500.0, picoseconds: float = 10.0,
                  timestep_fs: float = 0.5, friction_per_fs: float = 0.01, seed: int = 0,
                  max_deviation: float = MAX_DEVIATION_A, look_every_fs: float = 10.0,
                  reference_frames: Optional[Sequence[Atoms]] = None, rdf_bins: int = 100,
                  rdf_every_fs: float = 50.0, log=None) -> StabilityResult:
    """Langevin NVT from Maxwell-Boltzmann velocities; stops at the first bond deviation above
    ``max_deviation`` Å. With ``reference_frames`` and a periodic ``atoms``: g(r) MD vs reference."""
    atoms = _start(atoms, calculator, temperature, seed)
    bond_i, bond_j, bond_d0 = bonds_of(atoms)
    steps = max(int(round(picoseconds * 1000.0 / timestep_fs)), 1)
    look = max(int(round(look_every_fs / timestep_fs)), 1)
    sample_rdf = reference_frames is not None and bool(atoms.pbc.all())
    rdf_interval = max(int(round(rdf_every_fs / timestep_fs)), 1)
    first_rdf_step = int(EQUILIBRATION_FRACTION * steps)
    snapshots: List[Atoms] = []
    dyn = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature, friction=friction_per_fs / units.fs,
                   rng=np.random.default_rng(seed + 1), fixcm=False)
    result = StabilityResult(temperature, timestep_fs, picoseconds, True, picoseconds, 0.0, len(bond_i))

    class Unstable(Exception):
        pass

    def watch():
        now = dyn.nsteps * timestep_fs / 1000.0
        deviation = 0.0
        if len(bond_i):
            lengths = np.linalg.norm(_mic_vectors(atoms, bond_i, bond_j), axis=1)
            worst = int(np.argmax(np.abs(lengths - bond_d0)))
            deviation = float(abs(lengths[worst] - bond_d0[worst]))
        result.max_bond_deviation_A = max(result.max_bond_deviation_A, deviation)
        result.times_ps.append(now)
        result.deviations_A.append(deviation)
        result.temperatures_K.append(float(atoms.get_temperature()))
        if log is not None and len(result.times_ps) % 100 == 0:
            log(f"{now:9.2f} ps  T {result.temperatures_K[-1]:6.0f} K  largest bond deviation {deviation:.3f} Å")
        if deviation > max_deviation or not np.all(np.isfinite(atoms.positions)):
            a, b = int(bond_i[worst]), int(bond_j[worst])
            raise Unstable(f"bond {atoms.get_chemical_symbols()[a]}{a}-{atoms.get_chemical_symbols()[b]}{b} "
                           f"deviated by {deviation:.2f} Å (> {max_deviation} Å) from its starting length "
                           f"{bond_d0[worst]:.2f} Å at {now:.3f} ps")

    def sample():
        if dyn.nsteps >= first_rdf_step:
            snapshots.append(atoms.copy())

    dyn.attach(watch, interval=look)
    if sample_rdf:
        dyn.attach(sample, interval=rdf_interval)
    start = time.perf_counter()
    try:
        dyn.run(steps)
    except Unstable as error:
        result.stable = False
        result.stability_time_ps = result.times_ps[-1]
        result.reason = str(error)
    result.steps_per_second = dyn.nsteps / max(time.perf_counter() - start, 1e-9)
    if sample_rdf and snapshots:
        rmax = rdf_rmax(atoms)
        for pair in element_pairs(atoms.numbers):
            r, g_md = average_rdf(snapshots, pair, rmax, rdf_bins)
            _, g_ref = average_rdf(reference_frames, pair, rmax, rdf_bins)
            result.rdf["-".join(pair)] = PairRDF(r.tolist(), g_md.tolist(), g_ref.tolist(),
                                                 float(np.mean(np.abs(g_md - g_ref))))
    return result


def _command(model, structure, picoseconds, temperature, timestep_fs, reference, seed) -> str:
    """The ``eqff check`` command that repeats this run (every setting that differs from no flag)."""
    parts = [f"eqff check {model} --protocol stability --stability-ps {picoseconds:g}",
             f"--stability-temperature {temperature:g}", f"--timestep {timestep_fs:g}"]
    if structure:
        parts.append(f"--structure {structure}")
    if reference:
        parts.append(f"--reference {reference}")
    if seed:
        parts.append(f"--seed {seed}")
    return " ".join(parts)


def run_protocol(model: str, structure: Optional[str] = None, output: str = "check", picoseconds: float = 10.0,
                 temperature: Optional[float] = None, timestep_fs: float = 0.5, reference: Optional[str] = None,
                 seed: int = 0, threads: Optional[int] = None) -> StabilityResult:
    """``eqff check --protocol stability``: the run, ``stability.md``/``.json`` and plots in ``output``.
    ``temperature`` None: 500 K for a molecule, 300 K for a periodic structure."""
    import dataclasses
    import json
    import os

    import ase.io

    from eqff.calculators.ase import EqffCalculator
    from eqff.check.plots import plot_rdf, plot_stability
    from eqff.check.report import check_structure
    from eqff.runtime import load_model

    os.makedirs(output, exist_ok=True)
    loaded = load_model(model)
    atoms, described = check_structure(structure, loaded.example_structure, model)
    periodic = bool(atoms.pbc.all())
    if temperature is None:
        temperature = 300.0 if periodic else 500.0
    frames = None
    if reference is not None:
        frames = [f for f in ase.io.read(reference, ":") if sorted(f.numbers) == sorted(atoms.numbers)]
        if not frames:
            raise ValueError(f"{reference}: no frame has the composition of the structure ({atoms.get_chemical_formula()})")
    calculator = EqffCalculator(loaded, threads=threads)
    print(f"stability: {atoms.get_chemical_formula()} ({described}), NVT {temperature:.0f} K, dt {timestep_fs} fs, "
          f"up to {picoseconds} ps", flush=True)
    result = stability_run(atoms, calculator, temperature=temperature, picoseconds=picoseconds, timestep_fs=timestep_fs,
                           seed=seed, reference_frames=frames, log=lambda line: print(line, flush=True))
    plot_stability(result, os.path.join(output, "stability.png"))
    lines = [f"# Stability protocol: {model}", "",
             f"Fu et al., \"Forces are not enough\" (TMLR 2023): Langevin NVT at {temperature:.0f} K, time step "
             f"{timestep_fs} fs, friction 0.01/fs, seed {seed}; unstable from the first time a bond of the start "
             f"structure ({result.bonds} bonds, 1.2x covalent radii) deviates by more than {MAX_DEVIATION_A} Å from "
             f"its starting length. Structure: {described}. Command: `{_command(model, structure, picoseconds, temperature, timestep_fs, reference, seed)}`.", "",
             "| asked (ps) | stable | stability time (ps) | largest bond deviation (Å) | steps/s |", "|---|---|---|---|---|",
             f"| {picoseconds} | {'yes' if result.stable else 'no'} | {result.stability_time_ps:.3f} | "
             f"{result.max_bond_deviation_A:.3f} | {result.steps_per_second:.0f} |", ""]
    if result.reason:
        lines += [f"Stopped: {result.reason}.", ""]
    lines += ["![stability](stability.png)", ""]
    if result.rdf:
        plot_rdf(result, os.path.join(output, "rdf.png"))
        lines += [f"g(r) over the run after its first {EQUILIBRATION_FRACTION:.0%} against {len(frames)} frames of "
                  f"{reference}:", "", "| pair | g(r) MAE |", "|---|---|"]
        lines += [f"| {pair} | {rdf.mae:.4f} |" for pair, rdf in result.rdf.items()]
        lines += ["", "![rdf](rdf.png)", ""]
    elif periodic:
        lines += ["No g(r): pass --reference FRAMES (the training frames) to compare the structure of the liquid.", ""]
    with open(os.path.join(output, "stability.md"), "w") as handle:
        handle.write("\n".join(lines))
    with open(os.path.join(output, "stability.json"), "w") as handle:
        json.dump(dataclasses.asdict(result), handle, indent=1)
    return result

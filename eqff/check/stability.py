"""The MD stability protocol of Fu et al., "Forces are not enough" (TMLR 2023).

A potential is judged by how long MD with it stays physical, not only by its test error:

* every bonded pair of the starting structure (closer than 1.2x the sum of covalent radii)
  is watched; the run is **unstable** from the first moment any of these bond lengths
  deviates by more than ``max_deviation`` (0.5 Å) from its reference length: as in the
  paper, its mean over reference frames (the training data, ``--reference``), or without
  them its length in the start structure. The stability time is that moment, or the whole
  run when it never happens.
* Molecules: Langevin NVT at 500 K with a 0.5 fs step, 300 ps for the full protocol.
  Periodic liquids: NVT at 300 K (the temperature of their training data), the same bond
  criterion, and the partial radial distribution functions g(r) of every element pair,
  averaged over the run after the first 10 %, against those of reference frames (the DFT
  frames the potential was trained on); the MAE of each g(r) over r is reported.

The dynamics run in ASE (``EqffCalculator``, any stack). ``eqff check --protocol stability``
runs this; ``stability_run`` is the library call.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from ase import Atoms, units

from eqff.check.md import _mic_vectors, bonds_of, describe_broken_bond

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
    bond_reference: str = ""  # what each bond's deviation is measured from
    steps_per_second: float = 0.0  # of the last (resumed) part of the run
    wall_hours: float = 0.0  # the whole run's, over every resume
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


def stability_run(atoms: Atoms, calculator=None, temperature: float = 500.0, picoseconds: float = 10.0,
                  timestep_fs: float = 0.5, friction_per_fs: float = 0.01, seed: int = 0,
                  max_deviation: float = MAX_DEVIATION_A, look_every_fs: float = 10.0,
                  reference_frames: Optional[Sequence[Atoms]] = None, rdf_bins: int = 100,
                  rdf_every_fs: float = 50.0, log=None, engine=None, save_state: Optional[Callable[[Dict], None]] = None,
                  save_every_ps: float = 1.0, saved: Optional[Dict] = None) -> StabilityResult:
    """Langevin NVT from Maxwell-Boltzmann velocities; stops at the first bond deviation above
    ``max_deviation`` Å. With ``reference_frames`` and a periodic ``atoms``: g(r) MD vs reference.

    ``engine``: an ``eqff.check.engines`` engine built on ``atoms`` (default: ASE's Langevin with
    ``calculator``). ``save_state``: called with the run's state (a JSON-able dict) every
    ``save_every_ps`` and at the end; ``saved``: such a state to go on from (the same settings;
    ``picoseconds`` may be longer than the saved run's, to extend it)."""
    from eqff.check.engines import AseLangevin

    if engine is None:
        engine = AseLangevin(atoms, calculator, temperature, timestep_fs, friction_per_fs, seed)
    bond_i, bond_j, bond_d0, result_d0 = bond_lengths(atoms, reference_frames)
    steps = max(int(round(picoseconds * 1000.0 / timestep_fs)), 1)
    look = max(int(round(look_every_fs / timestep_fs)), 1)
    sample_rdf = reference_frames is not None and bool(atoms.pbc.all())
    rdf_interval = max(int(round(rdf_every_fs / timestep_fs)), 1)
    save_interval = max(int(round(save_every_ps * 1000.0 / timestep_fs)), 1)
    rmax = rdf_rmax(atoms) if sample_rdf else 0.0
    pairs = ["-".join(pair) for pair in element_pairs(atoms.numbers)]
    result = StabilityResult(temperature, timestep_fs, picoseconds, True, picoseconds, 0.0, len(bond_i),
                             bond_reference=result_d0)
    progress = {"first_rdf_step": int(EQUILIBRATION_FRACTION * steps), "rdf_samples": 0,
                "rdf_sums": {pair: [0.0] * rdf_bins for pair in pairs}, "seconds": 0.0}
    if saved is not None:
        engine.restore(saved["engine"])
        for key in ("stable", "stability_time_ps", "max_bond_deviation_A", "times_ps", "deviations_A",
                    "temperatures_K", "reason"):
            setattr(result, key, saved["result"][key])
        progress = saved["progress"]
        if result.stable:
            result.stability_time_ps = picoseconds
    elif engine.nsteps == 0:
        _look(engine, result, bond_i, bond_j, bond_d0, max_deviation, timestep_fs, log)

    first_step, started, seconds_before = engine.nsteps, time.perf_counter(), progress["seconds"]

    def save():
        progress["seconds"] = seconds_before + time.perf_counter() - started  # over every resume
        if save_state is not None:
            save_state({"engine": engine.state(), "result": dataclasses.asdict(result), "progress": progress})

    next_rdf = _next_multiple(engine.nsteps, rdf_interval)
    next_save = _next_multiple(engine.nsteps, save_interval)
    while result.stable and engine.nsteps < steps:
        engine.step(min(look - engine.nsteps % look, steps - engine.nsteps))
        if not _look(engine, result, bond_i, bond_j, bond_d0, max_deviation, timestep_fs, log):
            break
        if sample_rdf and engine.nsteps >= next_rdf:
            next_rdf = _next_multiple(engine.nsteps, rdf_interval)
            if engine.nsteps >= progress["first_rdf_step"]:
                _add_rdf(engine.frame(), progress, pairs, rmax, rdf_bins)
        if engine.nsteps >= next_save:
            next_save = _next_multiple(engine.nsteps, save_interval)
            save()
    save()
    result.steps_per_second = (engine.nsteps - first_step) / max(time.perf_counter() - started, 1e-9)
    result.wall_hours = progress["seconds"] / 3600.0
    if sample_rdf and progress["rdf_samples"]:
        for pair in pairs:
            g_md = np.asarray(progress["rdf_sums"][pair]) / progress["rdf_samples"]
            r, g_ref = average_rdf(reference_frames, tuple(pair.split("-")), rmax, rdf_bins)
            result.rdf[pair] = PairRDF(r.tolist(), g_md.tolist(), g_ref.tolist(), float(np.mean(np.abs(g_md - g_ref))))
    return result


def bond_lengths(atoms: Atoms, reference_frames: Optional[Sequence[Atoms]] = None):
    """The watched bonds (``bonds_of`` the start structure) and the length each is measured
    from: as in Fu et al., its mean over the reference frames (those with the atoms of ``atoms``
    in the same order), else its length in the start structure. Returns (i, j, d0, described)."""
    bond_i, bond_j, d0 = bonds_of(atoms)
    same = [f for f in reference_frames or [] if np.array_equal(f.numbers, atoms.numbers)]
    if not same or not len(bond_i):
        return bond_i, bond_j, d0, "its length in the start structure"
    mean = np.mean([np.linalg.norm(_mic_vectors(f, bond_i, bond_j), axis=1) for f in same], axis=0)
    return bond_i, bond_j, mean, f"its mean length over {len(same)} reference frames"


def _next_multiple(step: int, interval: int) -> int:
    return (step // interval + 1) * interval


def _look(engine, result: StabilityResult, bond_i, bond_j, bond_d0, max_deviation: float, timestep_fs: float,
          log) -> bool:
    """Record the largest bond deviation and the temperature now; False (and the reason) once unstable."""
    frame = engine.frame()
    now = engine.nsteps * timestep_fs / 1000.0
    deviation, worst = 0.0, 0
    if len(bond_i):
        lengths = np.linalg.norm(_mic_vectors(frame, bond_i, bond_j), axis=1)
        worst = int(np.nanargmax(np.abs(lengths - bond_d0))) if np.all(np.isfinite(lengths)) else 0
        deviation = float(abs(lengths[worst] - bond_d0[worst]))
    result.max_bond_deviation_A = max(result.max_bond_deviation_A, deviation)
    result.times_ps.append(now)
    result.deviations_A.append(deviation)
    result.temperatures_K.append(engine.temperature())
    if log is not None and len(result.times_ps) % 100 == 0:
        log(f"{now:9.2f} ps  T {result.temperatures_K[-1]:6.0f} K  largest bond deviation {deviation:.3f} Å")
    if deviation > max_deviation or not np.all(np.isfinite(frame.positions)):
        symbols = frame.get_chemical_symbols()
        a, b = int(bond_i[worst]), int(bond_j[worst])
        result.stable = False
        result.stability_time_ps = now
        result.reason = (f"bond {symbols[a]}{a}-{symbols[b]}{b} deviated by {deviation:.2f} Å (> {max_deviation} Å) "
                         f"from its reference length {bond_d0[worst]:.2f} Å at {now:.3f} ps")
        if np.all(np.isfinite(frame.positions)):
            result.reason += f" ({describe_broken_bond(frame, a, b, float(lengths[worst]))})"
        return False
    return True


def _add_rdf(frame: Atoms, progress: Dict, pairs: List[str], rmax: float, nbins: int) -> None:
    from ase.geometry.rdf import get_rdf

    for pair in pairs:
        g, _ = get_rdf(frame, rmax, nbins, elements=tuple(pair.split("-")))
        progress["rdf_sums"][pair] = (np.asarray(progress["rdf_sums"][pair]) + g).tolist()
    progress["rdf_samples"] += 1


def _command(model, structure, picoseconds, temperature, timestep_fs, reference, seed, engine="ase") -> str:
    """The ``eqff check`` command that repeats this run (every setting that differs from no flag)."""
    parts = [f"eqff check {model} --protocol stability --stability-ps {picoseconds:g}",
             f"--stability-temperature {temperature:g}", f"--timestep {timestep_fs:g}"]
    if engine != "ase":
        parts.append(f"--engine {engine}")
    if structure:
        parts.append(f"--structure {structure}")
    if reference:
        parts.append(f"--reference {reference}")
    if seed:
        parts.append(f"--seed {seed}")
    return " ".join(parts)


STATE_FILE = "stability_state.json"  # in the output folder: the run so far, for --resume
FRICTION_PER_FS = 0.01


def _file_hash(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _saved_run(path: str, settings: Dict, resume: bool) -> Optional[Dict]:
    """The saved run to go on from (``resume``), or None to start; refuses to overwrite an
    unfinished run without ``resume`` and to resume one made with other settings."""
    import os

    from eqff.errors import ConfigError
    from eqff.learn.state import read_json

    if not os.path.exists(path):
        if resume:
            print(f"--resume: no {path} yet, starting the run", flush=True)
        return None
    state = read_json(path)
    run = state["run"]
    done_ps = run["engine"]["nsteps"] * state["settings"]["timestep_fs"] / 1000.0
    if not resume:
        if run["result"]["stable"] and done_ps < state["asked_ps"]:
            raise ConfigError(f"{path} holds an unfinished stability run ({done_ps:g} of {state['asked_ps']:g} ps): "
                              "pass --resume to go on with it, or delete the file (or choose another --output) to "
                              "start over")
        return None
    different = {key: (state["settings"].get(key), value) for key, value in settings.items()
                 if state["settings"].get(key) != value}
    if different:
        described = "; ".join(f"{key}: saved {old!r}, now {new!r}" for key, (old, new) in different.items())
        raise ConfigError(f"{path}: cannot resume, the run was made with other settings ({described}); "
                          "use the saved settings, or another --output to start a new run")
    print(f"resuming the stability run of {path} at {done_ps:g} ps", flush=True)
    return run


def run_protocol(model: str, structure: Optional[str] = None, output: str = "check", picoseconds: float = 10.0,
                 temperature: Optional[float] = None, timestep_fs: float = 0.5, reference: Optional[str] = None,
                 seed: int = 0, threads: Optional[int] = None, engine: str = "ase", resume: bool = False,
                 save_every_ps: float = 1.0) -> StabilityResult:
    """``eqff check --protocol stability``: the run, ``stability.md``/``.json`` and plots in ``output``.
    ``temperature`` None: 500 K for a molecule, 300 K for a periodic structure. ``engine``: "ase"
    (any stack) or "openmm" (the eqff force in OpenMM, CPU platform). The state of the run goes
    to ``output/stability_state.json`` every ``save_every_ps``; ``resume`` goes on from it (also to
    extend a finished run to a longer ``picoseconds``)."""
    import json
    import os

    import ase.io

    from eqff.check.engines import ENGINES, AseLangevin, OpenMMLangevin
    from eqff.check.plots import plot_rdf, plot_stability
    from eqff.check.report import check_structure
    from eqff.errors import ConfigError
    from eqff.learn.state import write_json_atomic
    from eqff.runtime import load_model

    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
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
    settings = {"model_sha256": _file_hash(model) if os.path.isfile(model) else model,
                "structure": f"{atoms.get_chemical_formula()} {described}", "engine": engine,
                "temperature_K": temperature, "timestep_fs": timestep_fs, "friction_per_fs": FRICTION_PER_FS,
                "seed": seed, "reference": os.path.abspath(reference) if reference else None}
    state_path = os.path.join(output, STATE_FILE)
    saved = _saved_run(state_path, settings, resume)
    if engine == "openmm":
        runner = OpenMMLangevin(atoms, model, temperature, timestep_fs, FRICTION_PER_FS, seed, threads=threads,
                                restart_at=saved["engine"]["nsteps"] if saved else 0)
    else:
        from eqff.calculators.ase import EqffCalculator

        runner = AseLangevin(atoms, EqffCalculator(loaded, threads=threads), temperature, timestep_fs,
                             FRICTION_PER_FS, seed)
    print(f"stability: {atoms.get_chemical_formula()} ({described}), NVT {temperature:.0f} K, dt {timestep_fs} fs, "
          f"up to {picoseconds} ps, {engine}; state saved every {save_every_ps:g} ps to {state_path}", flush=True)

    def save_state(run):
        write_json_atomic({"settings": settings, "asked_ps": picoseconds, "run": run}, state_path)

    result = stability_run(atoms, temperature=temperature, picoseconds=picoseconds, timestep_fs=timestep_fs,
                           friction_per_fs=FRICTION_PER_FS, seed=seed, reference_frames=frames,
                           log=lambda line: print(line, flush=True), engine=runner, save_state=save_state,
                           save_every_ps=save_every_ps, saved=saved)
    plot_stability(result, os.path.join(output, "stability.png"))
    engine_text = ("OpenMM (CPU platform, LangevinMiddleIntegrator)" if engine == "openmm"
                   else "ASE (Langevin, EqffCalculator)")
    lines = [f"# Stability protocol: {model}", "",
             f"Fu et al., \"Forces are not enough\" (TMLR 2023; their thermostat: Nosé–Hoover): Langevin NVT at {temperature:.0f} K, time step "
             f"{timestep_fs} fs, friction {FRICTION_PER_FS}/fs, seed {seed}, in {engine_text}; unstable from the first "
             f"time a bond of the start structure ({result.bonds} bonds, 1.2x covalent radii) deviates by more than "
             f"{MAX_DEVIATION_A} Å from {result.bond_reference}. Structure: {described}. Command: "
             f"`{_command(model, structure, picoseconds, temperature, timestep_fs, reference, seed, engine)}` "
             "(add --resume to go on after a stop).", "",
             "| asked (ps) | stable | stability time (ps) | largest bond deviation (Å) | steps/s | wall time (h) |",
             "|---|---|---|---|---|---|",
             f"| {picoseconds} | {'yes' if result.stable else 'no'} | {result.stability_time_ps:.3f} | "
             f"{result.max_bond_deviation_A:.3f} | {result.steps_per_second:.0f} | {result.wall_hours:.2f} |", ""]
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

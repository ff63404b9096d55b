"""``eqff demo``: the whole job on an embedded default, in a few minutes on a laptop CPU.

1. (``--train``) fit a small EGNN to 300 bundled rMD17 ethanol DFT frames and export it;
   otherwise take the shipped ethanol potential (``potentials/`` of a clone, or installed with eqff).
2. ASE: NVE molecular dynamics of ethanol from 300 K; energy drift and speed.
3. OpenMM: NVT (Langevin, 300 K) of the same molecule with the potential as a TorchForce.
4. A summary (steps/s, temperatures, drift), trajectories and a plot in the output folder.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np

RESOURCES = Path(__file__).parent / "resources"
# the shipped ethanol potential (eqff's default model, test force MAE 3.95 meV/Å; ~20 ms a call
# on one thread, so the demo's steps are sized to keep its MD within a minute on 2 cores)
DEFAULT_POTENTIALS = ("ethanol_ace",)
DEFAULT_STEPS = 1000  # ASE NVE steps, and OpenMM NVT steps after EQUILIBRATION_STEPS: 36 s in all on 2 cores
TRAIN_FRAMES = RESOURCES / "ethanol_rmd17_train300.xyz"
ISOLATED_ATOMS = RESOURCES / "ethanol_isolated_atoms.xyz"


def shipped_potential() -> Path:
    """The shipped ethanol potential's model.pt (from a clone or an installed eqff: eqff.potentials)."""
    from eqff.errors import ModelFileError
    from eqff.potentials import shipped_potential as find

    try:
        return find(DEFAULT_POTENTIALS)
    except ModelFileError as error:
        raise ModelFileError(f"{error} (--model FILE), or fit one with --train") from None


def train_small(output: Path, minutes: float) -> Path:
    """A small EGNN on the bundled frames, exported to output/train/model.pt."""
    import torch

    from eqff.export import export_potential
    from eqff.models.io import load_potential
    from eqff.train import make_config, train

    folder = output / "train"
    config = make_config(None, dict(
        train_file=str(TRAIN_FRAMES), e0s=str(ISOLATED_ATOMS), n_valid=20, model="egnn",
        hyperparameters={"features": 48, "num_layers": 3}, cutoff=5.0, lr=5e-3, batch_size=5,
        max_epochs=10_000, max_time_min=minutes, output=str(folder), resume=(folder / "last.pt").exists(),
        threads=torch.get_num_threads()))  # the demo's --threads, not the trainer's own choice
    train(config)
    exported = folder / "model.pt"
    export_potential(load_potential(folder / "best.pt"), exported)
    return exported


def _structure(model_path: Path):
    from ase import Atoms
    import ase.io

    from eqff.export import is_exported, read_metadata

    if is_exported(model_path):
        example = read_metadata(model_path).get("example_structure")
        if example:
            return Atoms(numbers=example["numbers"], positions=example["positions"])
    return ase.io.read(TRAIN_FRAMES, 0)


EQUILIBRATION_STEPS = 1000  # 0.5 ps at 0.5 fs, before the OpenMM run that is reported


def run_openmm(model_path: Path, atoms, steps: int, output: Path, timestep_fs: float = 0.5, seed: int = 0) -> dict:
    import openmm
    from openmm import app, unit

    import eqff.openmm
    from eqff.openmm import fast_steps

    # TorchForce with the torchforce extra (torch 2.9.1), else PythonForce (with a warning)
    setup = eqff.openmm.system_from_atoms(atoms, str(model_path), implementation="auto")
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 10.0 / unit.picosecond, timestep_fs * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    simulation = setup.simulation(integrator, platform="CPU")
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, seed)
    # The start is a DFT snapshot: its potential energy above the minimum heats the molecule at
    # first, so equilibrate (not reported). A 9-atom molecule's kinetic temperature swings by
    # ~80 K from step to step; the coupling of 10/ps makes a 1 ps mean meaningful (±~20 K).
    with fast_steps(simulation):
        simulation.step(EQUILIBRATION_STEPS)
    interval = max(steps // 100, 1)
    log = output / "openmm_nvt.csv"
    simulation.reporters.append(app.DCDReporter(str(output / "openmm_nvt.dcd"), interval))
    simulation.reporters.append(app.StateDataReporter(str(log), interval, step=True, time=True, potentialEnergy=True,
                                                      temperature=True, speed=True))
    with open(output / "openmm_topology.pdb", "w") as handle:
        app.PDBFile.writeFile(setup.topology, setup.positions, handle)
    start = time.perf_counter()
    with fast_steps(simulation):
        simulation.step(steps)
    elapsed = time.perf_counter() - start
    rows = np.genfromtxt(log, delimiter=",", names=True)
    names = rows.dtype.names
    temperature_key = [n for n in names if n.startswith("Temperature")][0]
    time_key = [n for n in names if n.startswith("Time")][0]
    return {"steps": steps, "steps_per_second": steps / elapsed, "mean_temperature_K": float(np.mean(rows[temperature_key])),
            "times_ps": rows[time_key].tolist(), "temperatures_K": rows[temperature_key].tolist(),
            "platform": simulation.context.getPlatform().getName()}


def plot_summary(nve, openmm_result: Optional[dict], path: Path) -> None:
    from matplotlib.figure import Figure  # not pyplot: the caller's backend stays as it is

    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2)
    energies = [1000.0 * (e - nve.total_energy_eV[0]) for e in nve.total_energy_eV]
    axes[0].plot(nve.times_ps, energies)
    axes[0].set(xlabel="time (ps)", ylabel="E_total - E_total(0) (meV)",
                title=f"ASE NVE: drift {nve.drift_meV_per_atom_per_ps:.3g} meV/atom/ps")
    if openmm_result:
        axes[1].plot(openmm_result["times_ps"], openmm_result["temperatures_K"])
        axes[1].axhline(300, color="grey", ls="--", lw=1)
        axes[1].set(xlabel="time (ps)", ylabel="temperature (K)", title="OpenMM NVT (TorchForce), 300 K")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run_demo(output: str = "demo", model: Optional[str] = None, train_first: bool = False, train_minutes: float = 3.0,
             ase_steps: int = DEFAULT_STEPS, openmm_steps: int = DEFAULT_STEPS, skip_openmm: bool = False) -> dict:
    from eqff.calculators.ase import EqffCalculator
    from eqff.check.md import nve_drift

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    if train_first:
        print(f"[1/3] training a small EGNN on {TRAIN_FRAMES.name} for {train_minutes:g} min", flush=True)
        model_path = train_small(out, train_minutes)
    else:
        model_path = Path(model) if model else shipped_potential()
    print(f"model: {model_path}", flush=True)
    atoms = _structure(model_path)
    calculator = EqffCalculator(str(model_path))
    print(f"[2/3] ASE: {ase_steps} NVE steps of 0.5 fs for {atoms.get_chemical_formula()} from 300 K", flush=True)
    nve = nve_drift(atoms, calculator, picoseconds=ase_steps * 0.5 / 1000.0, trajectory=str(out / "ase_nve.traj"))
    temperatures = None
    summary = {"model": str(model_path), "structure": atoms.get_chemical_formula(),
               "ase_nve": {"steps": ase_steps, "steps_per_second": nve.steps_per_second,
                           "drift_meV_per_atom_per_ps": nve.drift_meV_per_atom_per_ps,
                           "fluctuation_meV_per_atom": nve.fluctuation_meV_per_atom}}
    openmm_result = None
    if not skip_openmm:
        print(f"[3/3] OpenMM: {openmm_steps} NVT steps of 0.5 fs with a TorchForce (CPU platform)", flush=True)
        openmm_result = run_openmm(model_path, atoms, openmm_steps, out)
        summary["openmm_nvt"] = {k: v for k, v in openmm_result.items() if k not in ("times_ps", "temperatures_K")}
    plot_summary(nve, openmm_result, out / "summary.png")
    summary["seconds"] = time.time() - start
    with open(out / "summary.json", "w") as handle:
        json.dump(summary, handle, indent=1)
    print_summary(summary, out)
    return summary


def print_summary(summary: dict, out: Path) -> None:
    ase_part = summary["ase_nve"]
    lines = ["", f"eqff demo: {summary['structure']} with {summary['model']}",
             f"  ASE NVE    {ase_part['steps']} steps  {ase_part['steps_per_second']:8.1f} steps/s  "
             f"energy drift {ase_part['drift_meV_per_atom_per_ps']:.3g} meV/atom/ps"]
    if "openmm_nvt" in summary:
        part = summary["openmm_nvt"]
        lines.append(f"  OpenMM NVT {part['steps']} steps  {part['steps_per_second']:8.1f} steps/s  "
                     f"mean temperature {part['mean_temperature_K']:.0f} K (target 300 K, after 0.5 ps of equilibration; "
                     f"{part['platform']} platform)")
    lines.append(f"  wrote {out}/: ase_nve.traj, openmm_nvt.dcd (+ openmm_topology.pdb), openmm_nvt.csv, summary.png, "
                 f"summary.json ({summary['seconds']:.0f} s in all)")
    print("\n".join(lines), flush=True)

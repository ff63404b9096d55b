"""Long-MD stability of a shipped potential in OpenMM (TorchForce, CPU): NVT at 300 K and at
600 K with a watchdog (exploding forces, broken bonds, collapsing atoms), then an NVE segment
for the energy drift. Writes <potential>/stability.json, stability.md and stability.png.

    python potentials/stability.py potentials/ethanol_ace --ps-300 10 --ps-600 10
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from types import SimpleNamespace

import numpy as np

from eqff import units


def build(model_path, atoms, integrator, seed):
    import eqff.openmm

    setup = eqff.openmm.system_from_atoms(atoms, model_path, implementation="torchforce")
    return setup.simulation(integrator, platform="CPU"), setup.order


def segment(simulation, atoms_in_order, steps, watch_every, bonds, label, limits):
    """Run ``steps``; every ``watch_every`` steps record T, E_pot, E_tot and check the limits."""
    from openmm import unit

    import eqff.openmm

    from eqff.check.md import watch_step

    # the System has no constraints and no CMMotionRemover: the Langevin thermostat acts on all 3N
    dof = 3 * len(atoms_in_order)
    log = {"time_ps": [], "temperature_K": [], "potential_kJ_mol": [], "total_kJ_mol": []}
    worst = SimpleNamespace(max_force_eV_per_A=0.0, max_bond_stretch=1.0, min_distance_A=np.inf)
    start = time.perf_counter()
    done, failure = 0, None
    while done < steps and failure is None:
        block = min(watch_every, steps - done)
        with eqff.openmm.fast_steps(simulation):
            simulation.step(block)
        done += block
        state = simulation.context.getState(getPositions=True, getForces=True, getEnergy=True)
        forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
        kinetic = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        potential = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        log["time_ps"].append(state.getTime().value_in_unit(unit.picosecond))
        log["temperature_K"].append(2 * kinetic / (dof * units.BOLTZMANN_KJ_PER_MOL_K))
        log["potential_kJ_mol"].append(potential)
        log["total_kJ_mol"].append(potential + kinetic)
        snapshot = atoms_in_order.copy()
        snapshot.positions = state.getPositions(asNumpy=True).value_in_unit(unit.angstrom)
        failure = watch_step(snapshot, forces / units.EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM, bonds, worst,
                             limits["force"], limits["stretch"], limits["distance"])
    return {"label": label, "completed": failure is None, "reason": failure or "", "steps": done, **vars(worst),
            "log": log, "steps_per_second": done / (time.perf_counter() - start)}


def main():
    import openmm
    from openmm import unit

    from eqff.check.md import bonds_of
    from eqff.demo import _structure

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="potentials/<name> (holds model.pt)")
    parser.add_argument("--ps-300", type=float, default=100.0)
    parser.add_argument("--ps-600", type=float, default=10.0)
    parser.add_argument("--ps-nve", type=float, default=5.0)
    parser.add_argument("--dt-300", type=float, default=1.0, help="fs")
    parser.add_argument("--dt-600", type=float, default=0.5, help="fs")
    parser.add_argument("--dt-nve", type=float, default=0.5, help="fs")
    parser.add_argument("--watch-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    model_path = os.path.join(args.folder, "model.pt")
    atoms = _structure(model_path)
    from eqff.export import read_metadata

    example = read_metadata(model_path).get("example_structure", {})
    if example and any(example.get("pbc", [])):
        atoms.set_cell(example["cell"])
        atoms.pbc = example["pbc"]
    limits = {"force": 50.0, "stretch": 1.6, "distance": 0.5}
    results = []
    for label, temperature, picoseconds, dt, friction in [("NVT 300 K", 300, args.ps_300, args.dt_300, 1.0),
                                                          ("NVT 600 K", 600, args.ps_600, args.dt_600, 1.0)]:
        integrator = openmm.LangevinMiddleIntegrator(temperature * unit.kelvin, friction / unit.picosecond, dt * unit.femtosecond)
        integrator.setRandomNumberSeed(args.seed)
        simulation, order = build(model_path, atoms, integrator, args.seed)
        ordered = atoms[order]
        simulation.context.setVelocitiesToTemperature(temperature * unit.kelvin, args.seed)
        steps = int(round(picoseconds * 1000 / dt))
        print(f"{label}: {steps} steps of {dt} fs", flush=True)
        result = segment(simulation, ordered, steps, args.watch_every, bonds_of(ordered), label, limits)
        result.update(temperature_target_K=temperature, timestep_fs=dt, picoseconds=picoseconds)
        results.append(result)
        print(f"  {'completed' if result['completed'] else 'STOPPED: ' + result['reason']}; "
              f"{result['steps_per_second']:.0f} steps/s; mean T {np.mean(result['log']['temperature_K']):.0f} K", flush=True)
        if label == "NVT 300 K" and result["completed"] and args.ps_nve > 0:
            state = simulation.context.getState(getPositions=True, getVelocities=True)
            verlet = openmm.VerletIntegrator(args.dt_nve * unit.femtosecond)
            nve, _ = build(model_path, atoms, verlet, args.seed)
            nve.context.setPositions(state.getPositions())
            nve.context.setVelocities(state.getVelocities())
            steps = int(round(args.ps_nve * 1000 / args.dt_nve))
            print(f"NVE: {steps} steps of {args.dt_nve} fs from the end of NVT 300 K", flush=True)
            nve_result = segment(nve, ordered, steps, max(steps // 200, 1), bonds_of(ordered), "NVE", limits)
            t, e = np.array(nve_result["log"]["time_ps"]), np.array(nve_result["log"]["total_kJ_mol"])
            slope = np.polyfit(t - t[0], e, 1)[0] if len(t) > 2 else float("nan")
            nve_result.update(drift_meV_per_atom_per_ps=float(abs(slope) / units.EV_TO_KJ_PER_MOL * 1000 / len(atoms)),
                              timestep_fs=args.dt_nve, picoseconds=args.ps_nve)
            results.append(nve_result)
            print(f"  drift {nve_result['drift_meV_per_atom_per_ps']:.3g} meV/atom/ps", flush=True)
    report(args, results, len(atoms))


def report(args, results, n_atoms):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(os.path.join(args.folder, "stability.json"), "w") as handle:
        json.dump({"results": results, "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d")}, handle)
    fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 3.5), squeeze=False)
    for ax, result in zip(axes[0], results):
        key = "total_kJ_mol" if result["label"] == "NVE" else "temperature_K"
        values = np.array(result["log"][key])
        if key == "total_kJ_mol":
            values = (values - values[0]) / units.EV_TO_KJ_PER_MOL * 1000 / n_atoms
        ax.plot(result["log"]["time_ps"], values)
        ax.set(xlabel="time (ps)", ylabel="E_total drift (meV/atom)" if key == "total_kJ_mol" else "temperature (K)",
               title=result["label"] + ("" if result["completed"] else " (stopped)"))
    fig.tight_layout()
    fig.savefig(os.path.join(args.folder, "stability.png"), dpi=110)
    rows = ["| run | length | timestep | completed | largest force (eV/Å) | largest bond stretch | closest pair (Å) | "
            "mean T (K) | steps/s | NVE drift (meV/atom/ps) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r['label']} | {r['steps'] * r['timestep_fs'] / 1000:.1f} ps | {r['timestep_fs']} fs | "
                    f"{'yes' if r['completed'] else 'NO: ' + r['reason']} | {r['max_force_eV_per_A']:.2f} | "
                    f"{r['max_bond_stretch']:.2f} | {r['min_distance_A']:.2f} | {np.mean(r['log']['temperature_K']):.0f} | "
                    f"{r['steps_per_second']:.0f} | "
                    + (f"{r['drift_meV_per_atom_per_ps']:.3g} |" if "drift_meV_per_atom_per_ps" in r else "– |"))
    text = (f"# Long-MD stability\n\nOpenMM {__import__('openmm').__version__}, TorchForce on the CPU platform, "
            f"1 torch thread; LangevinMiddle (friction 1/ps) for NVT, Verlet for NVE. Command: "
            f"`python potentials/stability.py {args.folder} --ps-300 {args.ps_300} --ps-600 {args.ps_600} "
            f"--ps-nve {args.ps_nve}` ({time.strftime('%Y-%m-%d')}). Limits: force 50 eV/Å, bond stretch 1.6x, "
            f"closest pair 0.5 Å, checked every {args.watch_every} steps.\n\n" + "\n".join(rows) + "\n\n![](stability.png)\n")
    with open(os.path.join(args.folder, "stability.md"), "w") as handle:
        handle.write(text)
    print(text)


if __name__ == "__main__":
    main()

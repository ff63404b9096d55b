#!/usr/bin/env python
"""Energy conservation check: NVE (velocity Verlet) with an eqff potential, reporting the drift
of the total energy in meV/atom/ps (slope of a straight-line fit) and its RMS fluctuation.

    python md_scripts/nve_check.py                                     # ethanol, ASE, shipped data
    python md_scripts/nve_check.py water.xyz --model water.pt --engine openmm --steps 4000 --max-drift 0.5

A conservative potential with a small enough time step gives a drift close to zero; the
exit status is 1 when --max-drift is given and exceeded.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("structure", nargs="?", default=_common.ETHANOL,
                        help="structure file (any ASE format, first frame); default: shipped ethanol")
    _common.add_model_arguments(parser, ["ethanol", "rmd17_ethanol"])
    parser.add_argument("--engine", choices=["ase", "openmm"], default="ase")
    parser.add_argument("--implementation", default="auto", choices=["auto", "torchforce", "pythonforce"],
                        help="OpenMM force (engine openmm)")
    parser.add_argument("--temperature", type=float, default=300.0, help="initial temperature, K")
    parser.add_argument("--timestep", type=float, default=0.25, help="fs")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--interval", type=int, default=5, help="steps between energy samples")
    parser.add_argument("--max-drift", type=float, default=None, help="fail (exit 1) above this |drift|, meV/atom/ps")
    parser.add_argument("--output", default=None, help="write the energies and the result as JSON here")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def run_ase(atoms, model, args):
    from ase import units
    from ase.md.verlet import VelocityVerlet

    import eqff

    atoms.calc = eqff.EqffCalculator(model, dtype=args.dtype)
    dyn = VelocityVerlet(atoms, args.timestep * units.fs)
    times, energies = [], []

    def sample():
        times.append(dyn.nsteps * args.timestep * 1e-3)  # ps
        energies.append(atoms.get_potential_energy() + atoms.get_kinetic_energy())

    dyn.attach(sample, interval=args.interval)
    dyn.run(args.steps)
    return times, energies


def run_openmm(atoms, model, args):
    import numpy as np
    import openmm
    from openmm import unit
    from ase import units as ase_units
    from openmmml import MLPotential

    from eqff import units as eqff_units
    from eqff.openmm import fast_steps, topology_from_atoms

    topology, positions, order = topology_from_atoms(atoms)
    key = {"modelPath": model} if isinstance(model, str) else {"model": model}
    system = MLPotential("eqff", **key).createSystem(topology, removeCMMotion=False,
                                                     implementation=args.implementation)
    integrator = openmm.VerletIntegrator(args.timestep * unit.femtosecond)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"))
    context.setPositions(positions)
    # the same initial velocities as the ASE engine: Å/(ASE time) -> Å/fs -> nm/ps
    angstrom_per_fs = atoms.get_velocities()[order] * ase_units.fs
    velocities = angstrom_per_fs * eqff_units.ANGSTROM_TO_NM * 1000.0
    context.setVelocities(velocities)
    times, energies = [], []
    for k in range(0, args.steps + 1, args.interval):
        if k > 0:
            with fast_steps(context):
                integrator.step(args.interval)
        state = context.getState(getEnergy=True)
        total = (state.getPotentialEnergy() + state.getKineticEnergy()).value_in_unit(unit.kilojoule_per_mole)
        times.append(k * args.timestep * 1e-3)
        energies.append(float(np.asarray(total)) / eqff_units.EV_TO_KJ_PER_MOL)
    return times, energies


def main(argv=None) -> int:
    args = parse_args(argv)
    _common.set_threads(args)
    import ase.io
    import numpy as np

    atoms = ase.io.read(args.structure, 0)
    atoms.calc = None
    model = _common.resolve_model(args, _common.model_names_for(args.structure), atoms.numbers.tolist())
    _common.thermalize(atoms, args.temperature, np.random.default_rng(args.seed))
    start = time.perf_counter()
    times, energies = (run_ase if args.engine == "ase" else run_openmm)(atoms, model, args)
    elapsed = time.perf_counter() - start
    t = np.asarray(times)
    e = np.asarray(energies) / len(atoms) * 1e3  # meV/atom
    slope, intercept = np.polyfit(t, e, 1)
    fluctuation = float(np.std(e - (slope * t + intercept)))
    result = {"engine": args.engine, "atoms": len(atoms), "steps": args.steps, "timestep_fs": args.timestep,
              "dtype": args.dtype, "drift_meV_per_atom_per_ps": float(slope), "rms_fluctuation_meV_per_atom": fluctuation,
              "seconds": elapsed}
    print(f"NVE {args.engine}: {len(atoms)} atoms, {args.steps} steps of {args.timestep} fs ({t[-1]:.3f} ps) in "
          f"{elapsed:.1f} s; energy drift {slope:+.3e} meV/atom/ps, RMS fluctuation {fluctuation:.3e} meV/atom")
    if args.output:
        with open(args.output, "w") as handle:
            json.dump({**result, "time_ps": times, "total_energy_eV": energies}, handle, indent=1)
    if args.max_drift is not None and abs(slope) > args.max_drift:
        print(f"FAIL: |drift| {abs(slope):.4f} > {args.max_drift} meV/atom/ps")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_common.run_main(main))

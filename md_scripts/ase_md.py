#!/usr/bin/env python
"""Molecular dynamics with ASE and an eqff potential: NVT (Langevin) or NVE (velocity Verlet)
from any structure file ASE reads; writes an ASE trajectory and a log.

    python md_scripts/ase_md.py                                  # ethanol, 300 K, shipped data
    python md_scripts/ase_md.py water.extxyz --model ethanol.pt --ensemble nve --steps 10000
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("structure", nargs="?", default=_common.ETHANOL,
                        help="structure file (any ASE format; the first frame); default: shipped ethanol")
    _common.add_model_arguments(parser, ["ethanol", "rmd17_ethanol"])
    parser.add_argument("--ensemble", choices=["nvt", "nve"], default="nvt")
    parser.add_argument("--temperature", type=float, default=300.0, help="K (NVT target, initial velocities)")
    parser.add_argument("--timestep", type=float, default=0.5, help="fs")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs")
    parser.add_argument("--interval", type=int, default=10, help="steps between trajectory frames and log lines")
    parser.add_argument("--trajectory", default="ase_md.traj")
    parser.add_argument("--log", default="ase_md.log")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import ase.io
    import numpy as np
    from ase import units
    from ase.io.trajectory import Trajectory
    from ase.md import MDLogger
    from ase.md.langevin import Langevin
    from ase.constraints import FixCom
    from ase.md.verlet import VelocityVerlet

    import eqff

    _common.set_threads(args)
    atoms = ase.io.read(args.structure, 0)
    atoms.calc = None
    model = _common.resolve_model(args, _common.model_names_for(args.structure), atoms.numbers.tolist())
    atoms.calc = eqff.EqffCalculator(model, device=args.device, dtype=args.dtype)

    rng = np.random.default_rng(args.seed)
    _common.thermalize(atoms, args.temperature, rng)
    if args.ensemble == "nvt":
        atoms.set_constraint(FixCom())  # the thermostat's noise must not make the system drift
        dyn = Langevin(atoms, args.timestep * units.fs, temperature_K=args.temperature,
                       friction=args.friction / units.fs, rng=rng, fixcm=False)
    else:
        dyn = VelocityVerlet(atoms, args.timestep * units.fs)
    trajectory = Trajectory(args.trajectory, "w", atoms)
    dyn.attach(trajectory.write, interval=args.interval)
    dyn.attach(MDLogger(dyn, atoms, args.log, header=True, stress=False, peratom=True, mode="w"),
               interval=args.interval)
    start = time.perf_counter()

    def progress():
        done = dyn.nsteps
        rate = done / max(time.perf_counter() - start, 1e-9)
        print(f"step {done}/{args.steps}  E_pot {atoms.get_potential_energy():.4f} eV  "
              f"T {atoms.get_temperature():.1f} K  {rate:.1f} steps/s", flush=True)

    dyn.attach(progress, interval=args.interval)
    dyn.run(args.steps)
    trajectory.close()
    elapsed = time.perf_counter() - start
    print(f"{args.ensemble.upper()} {len(atoms)} atoms, {args.steps} steps of {args.timestep} fs in {elapsed:.1f} s "
          f"({args.steps / elapsed:.1f} steps/s); wrote {args.trajectory} and {args.log}")
    return 0


if __name__ == "__main__":
    sys.exit(_common.run_main(main))

#!/usr/bin/env python
"""MD steps per second of eqff potentials through ASE (EqffCalculator + velocity Verlet) and
OpenMM (CPU platform, Verlet: TorchForce and PythonForce), for ethanol (9 atoms) and water_192
(192 atoms, periodic), untrained default models, float32 by default.

    python benchmarks/deploy_speed.py                         # schnet and segnn, 1 torch thread
    python benchmarks/deploy_speed.py --models schnet --threads 2 --min-time 5 --output speed.json

Each case: build the engine, run --warmup steps (TorchScript's profiling executor optimises
the graph during the first calls), then steps until --min-time seconds have passed; reports
the mean steps/s. Timings on shared machines vary 30-60 % between runs: compare numbers from
one run only.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), "md_scripts", "data")
STRUCTURES = {"ethanol": os.path.join(DATA, "ethanol.xyz"), "water_192": os.path.join(DATA, "water_192.xyz")}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["schnet", "segnn"])
    parser.add_argument("--structures", nargs="+", default=list(STRUCTURES), choices=list(STRUCTURES))
    parser.add_argument("--engines", nargs="+", default=["ase", "torchforce", "pythonforce"],
                        choices=["ase", "torchforce", "pythonforce"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (and OpenMM CPU threads)")
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds of timed steps per case")
    parser.add_argument("--timestep", type=float, default=0.5, help="fs")
    parser.add_argument("--output", default=None, help="write the results as JSON")
    return parser.parse_args(argv)


def timed(step, warmup: int, min_time: float):
    """steps/s of ``step(n)`` after ``warmup`` steps, over at least ``min_time`` seconds."""
    step(warmup)
    done, start = 0, time.perf_counter()
    chunk = 1
    while time.perf_counter() - start < min_time:
        step(chunk)
        done += chunk
        chunk = min(chunk * 2, 64)
    return done / (time.perf_counter() - start), done


def ase_case(model, atoms, args):
    from ase import units
    from ase.md.verlet import VelocityVerlet

    import eqff

    atoms = atoms.copy()
    atoms.calc = eqff.EqffCalculator(model, dtype=args.dtype)
    atoms.set_velocities(atoms.get_velocities())
    dyn = VelocityVerlet(atoms, args.timestep * units.fs)
    return timed(dyn.run, args.warmup, args.min_time)


def openmm_case(model, atoms, args, implementation):
    import openmm
    from openmm import unit

    import eqff.openmm

    setup = eqff.openmm.system_from_atoms(atoms, model, implementation=implementation, dtype=args.dtype)
    integrator = openmm.VerletIntegrator(args.timestep * unit.femtosecond)
    platform = openmm.Platform.getPlatformByName("CPU")
    context = openmm.Context(setup.system, integrator, platform, {"Threads": str(args.threads)})
    context.setPositions(setup.positions)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    return timed(integrator.step, args.warmup, args.min_time)


def main(argv=None) -> int:
    args = parse_args(argv)
    import ase.io
    import numpy as np
    import torch
    from ase.md import velocitydistribution

    import eqff

    torch.set_num_threads(args.threads)
    results = []
    print(f"torch {torch.__version__}, {args.dtype}, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    print("| model | structure | atoms | engine | steps/s | ms/step | steps timed |")
    print("|---|---|---|---|---|---|---|", flush=True)
    for kind in args.models:
        for name in args.structures:
            atoms = ase.io.read(STRUCTURES[name], 0)
            atoms.calc = None
            thermalize = getattr(velocitydistribution, "thermalize_momenta", None)  # ASE >= 3.29
            if thermalize is None:
                velocitydistribution.MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
            else:
                thermalize(atoms, 300, rng=np.random.default_rng(0))
            torch.manual_seed(0)
            model = eqff.build_model(kind, elements=sorted(set(atoms.get_chemical_symbols())), cutoff=args.cutoff,
                                     dtype=args.dtype)
            for engine in args.engines:
                if engine == "ase":
                    rate, steps = ase_case(model, atoms, args)
                else:
                    rate, steps = openmm_case(model, atoms, args, engine)
                results.append({"model": kind, "structure": name, "atoms": len(atoms), "engine": engine,
                                "steps_per_s": rate, "steps": steps, "dtype": args.dtype, "threads": args.threads})
                print(f"| {kind} | {name} | {len(atoms)} | {engine} | {rate:.1f} | {1e3 / rate:.1f} | {steps} |",
                      flush=True)
    if args.output:
        with open(args.output, "w") as handle:
            json.dump({"torch": torch.__version__, "load_average": os.getloadavg()[0], "results": results}, handle,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

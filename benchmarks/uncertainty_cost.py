#!/usr/bin/env python
"""What uncertainty costs per call: a plain checkpoint, the same checkpoint with its last-layer
uncertainty (``eqff uncertainty``), and a committee, through the ASE calculator (energy +
forces, plus σ where there is one), on a structure of the data the model was fitted to.

    python benchmarks/uncertainty_cost.py PLAIN.pt LLPR.pt STRUCTURE.xyz [--committee A.pt B.pt] [--calls 200]

Cases alternate in rounds so that the load of a shared machine hits them alike; reports the
median CPU ms per call of each case (the process's CPU time: robust when other work shares
the cores, where wall time is not) and its ratio to the plain model, and the median wall ms.
One torch thread.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plain")
    parser.add_argument("llpr")
    parser.add_argument("structure")
    parser.add_argument("--committee", nargs="+", default=None)
    parser.add_argument("--calls", type=int, default=200, help="calls per case and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output")
    args = parser.parse_args(argv)

    import torch
    from ase.io import read

    from eqff.calculators.ase import EqffCalculator

    torch.set_num_threads(1)
    atoms = read(args.structure, index=0)
    cases = {"plain": args.plain, "llpr": args.llpr}
    if args.committee:
        cases["committee"] = [args.plain, *args.committee]
    calculators = {name: EqffCalculator(model, threads=1, skin=0.0) for name, model in cases.items()}
    rng = np.random.default_rng(0)
    times = {name: [] for name in cases}
    walls = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, calc in calculators.items():
            for call in range(args.calls + 5):
                copy = atoms.copy()
                copy.positions += rng.normal(0.0, 0.01, copy.positions.shape)  # a new geometry each call
                copy.calc = calc
                start, wall = time.process_time(), time.perf_counter()
                copy.get_forces()
                if call >= 5:  # the first calls of a round warm caches
                    times[name].append(time.process_time() - start)
                    walls[name].append(time.perf_counter() - wall)
    result = {name: 1000.0 * float(np.median(t)) for name, t in times.items()}
    wall = {name: 1000.0 * float(np.median(t)) for name, t in walls.items()}
    for name, ms in result.items():
        print(f"{name:>10}: {ms:7.3f} CPU ms per call, {ms / result['plain']:.3f}x plain (wall {wall[name]:.3f} ms)")
    if args.output:
        with open(args.output, "w") as handle:
            json.dump({"cpu_ms_per_call": result, "wall_ms_per_call": wall, "args": vars(args)}, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""Does eqff's PySCF labeller (eqff/learn/pyscf_labeller.py) reproduce a data set's labels?

    python benchmarks/pyscf_labels.py ../shared/data/rmd17_ethanol/train.xyz --frames 10 --output out.json

Labels ``--frames`` frames spread over the file at the data set's level (rMD17: PBE/def2-SVP,
ORCA) and reports the force MAE and largest component error against the file, the energy
offset PySCF − file (a constant per molecule is harmless: only its spread matters) and the CPU
seconds per label. One thread (OMP_NUM_THREADS=1 for comparable timings).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--functional", default="pbe")
    parser.add_argument("--basis", default="def2-svp")
    parser.add_argument("--grid-level", type=int, default=4)
    parser.add_argument("--output")
    args = parser.parse_args(argv)

    from ase.io import read

    from eqff.learn.pyscf_labeller import PySCFCalculator

    images = read(args.data, ":")
    picks = np.unique(np.linspace(0, len(images) - 1, args.frames).round().astype(int))
    labeller = PySCFCalculator(functional=args.functional, basis=args.basis, grid_level=args.grid_level)
    rows = []
    for i in picks:
        atoms = images[i]
        reference_energy, reference_forces = atoms.get_potential_energy(), atoms.get_forces()
        copy = atoms.copy()
        copy.calc = labeller
        cpu, wall = time.process_time(), time.time()
        forces = copy.get_forces()
        energy = copy.get_potential_energy()
        rows.append({"frame": int(i), "offset_meV": 1000.0 * (energy - reference_energy),
                     "force_mae_meV_per_A": 1000.0 * float(np.abs(forces - reference_forces).mean()),
                     "force_max_meV_per_A": 1000.0 * float(np.abs(forces - reference_forces).max()),
                     "cpu_s": time.process_time() - cpu, "wall_s": time.time() - wall})
        print(json.dumps(rows[-1]), flush=True)
    offsets = np.array([r["offset_meV"] for r in rows])
    summary = {"data": args.data, "frames": len(rows), "level": f"{args.functional}/{args.basis}, grid {args.grid_level}",
               "force_mae_meV_per_A": float(np.mean([r["force_mae_meV_per_A"] for r in rows])),
               "force_max_meV_per_A": float(np.max([r["force_max_meV_per_A"] for r in rows])),
               "offset_mean_meV": float(offsets.mean()), "offset_spread_meV": float(offsets.std()),
               "cpu_s_per_label": float(np.mean([r["cpu_s"] for r in rows])), "rows": rows}
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=1))
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(summary, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Rotation-invariance error of the lifted model against the size of its orientation grid.

The lifted model (eqff/models/lifted.py) replaces integrals over the sphere by sums over a
grid of K orientations, so its energy is rotation invariant only approximately. For each grid
(Fibonacci lattice or Lebedev rule) and size K this prints, in float64:

    energy error  max_Q |E(Qx) - E(x)| / |E(x) - sum_i E(atom i alone)|   (relative to the
                  interaction energy: the constant per-atom part is invariant by construction)
    force error   max_Q max |F(Qx) - Q F(x)| / max |F(x)|

over random rotations and reflections Q, on an rMD17 ethanol frame and (for K <= --max-periodic-k)
a periodic water_192 frame, and the float32 time of one energy+forces call on ethanol
(1 thread). The model weights do not depend on the grid, so one set of weights (untrained,
seeded, or --checkpoint from a trained run) is evaluated on every grid.

    OMP_NUM_THREADS=1 python benchmarks/lifted_invariance.py
    OMP_NUM_THREADS=1 python benchmarks/lifted_invariance.py --checkpoint runs/lifted/best.pt
"""
from __future__ import annotations

import argparse
import os
import time

import ase.io
import numpy as np
import torch

import eqff
from eqff.data.frames import Frame
from eqff.data.graph import collate, frame_to_graph
from eqff.models.io import load_checkpoint
from eqff.predict import predict
from eqff.testing import random_orthogonal

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data")
GRIDS = {"fibonacci": [6, 12, 24, 48, 96], "lebedev": [6, 14, 26, 50, 86, 110]}


def transformed(atoms, rotation):
    out = atoms.copy()
    out.positions = atoms.positions @ rotation.T
    if atoms.pbc.any():
        out.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    return out


def invariance_errors(model, atoms, rotations):
    results = predict(model, [atoms] + [transformed(atoms, q) for q in rotations], batch_size=1)
    alone = predict(model, [atoms[[i]] for i in range(len(atoms))], compute_forces=False)
    reference = results[0]
    interaction = abs(float(reference["energy"]) - sum(float(r["energy"]) for r in alone))
    energy = max(abs(float(r["energy"] - reference["energy"])) for r in results[1:]) / interaction
    scale = float(np.abs(reference["forces"]).max())
    forces = max(float(np.abs(r["forces"] - reference["forces"] @ q.T).max()) for r, q in zip(results[1:], rotations)) / scale
    return energy, forces


def time_energy_forces(model, atoms, repeats=7):
    model32 = eqff.models.io.copy_potential(model, dtype="float32")
    batch = collate([frame_to_graph(Frame.from_atoms(atoms), model32.cutoff)], dtype=torch.float32)
    for _ in range(2):
        model32(batch, compute_forces=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model32(batch, compute_forces=True)
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def build(args, grid, k, state):
    torch.manual_seed(args.seed)
    if state is None:
        return eqff.build_model("lifted", elements=["H", "C", "O"], cutoff=args.cutoff, dtype="float64",
                                num_orientations=k, grid=grid)
    config = state["model_config"]
    hyperparameters = {**config["hyperparameters"], "num_orientations": k, "grid": grid}
    model = eqff.build_model("lifted", elements=config["elements"], cutoff=config["cutoff"], dtype="float64",
                             **hyperparameters)
    model.load_state_dict(state["model_state"])
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grids", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    parser.add_argument("--sizes", nargs="+", type=int, default=None, help="K values (default: per grid)")
    parser.add_argument("--rotations", type=int, default=4)
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-periodic-k", type=int, default=50, help="skip the 192-atom water frame above this K (memory)")
    parser.add_argument("--checkpoint", default=None, help="evaluate these (trained) lifted weights on every grid")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    ethanol = ase.io.read(os.path.join(DATA, "ethanol_20.xyz"), 0)
    water = ase.io.read(os.path.join(DATA, "water_192_3.xyz"), 0)
    rng = np.random.default_rng(0)
    rotations = [random_orthogonal(rng, reflection=t % 2 == 1) for t in range(args.rotations)]
    state = load_checkpoint(args.checkpoint) if args.checkpoint else None

    print(f"weights: {args.checkpoint or f'untrained (seed {args.seed})'}; {args.rotations} random rotations/reflections; float64")
    print("| grid | K | energy error ethanol | force error ethanol | energy error water_192 | force error water_192 | ethanol E+F float32 (ms) |")
    print("|---|---|---|---|---|---|---|")
    for grid in args.grids:
        for k in args.sizes or GRIDS[grid]:
            try:
                model = build(args, grid, k, state)
            except ValueError as error:
                print(f"| {grid} | {k} | {error} | | | | |")
                continue
            e_mol, f_mol = invariance_errors(model, ethanol, rotations)
            periodic = "| — | — "
            if k <= args.max_periodic_k:
                e_per, f_per = invariance_errors(model, water, rotations[:2])
                periodic = f"| {e_per:.1e} | {f_per:.1e} "
            print(f"| {grid} | {k} | {e_mol:.1e} | {f_mol:.1e} {periodic}| {time_energy_forces(model, ethanol):.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()

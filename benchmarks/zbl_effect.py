"""What the ZBL repulsion prior does: the same model trained on the same data for the same wall
time with and without ``--prior zbl``, then compared where the data has no frames. Systems:
EGNN on rMD17 ethanol (``--system ethanol``) or SchNet on water_192 (``--system water``, the
split of benchmarks/train_accuracy.py; ``--reuse none=benchmarks/runs/water_schnet`` takes an
existing run with the same settings instead of training it again).

1. accuracy near equilibrium: test energy and force MAE (the prior must not cost accuracy);
2. dimer scans: E(r) of an isolated pair of each element pair from 0.1 to 2.5 Å, and an X-H
   bond of a test frame (C-H in ethanol, O-H in water) pushed from 1.5 Å to 0.2 Å: is the
   energy repulsive (rising as r falls) everywhere below the minimum, or does the model let
   atoms fall in?
3. MD: Langevin MD (ASE, 0.5 fs) from test frames at --temperatures (ethanol default 1500 and
   3000 K, water 300 and 600 K), several seeds; a run "collapses" when two atoms come closer
   than 0.5 Å or the energy is not finite; we report the closest approach and the step of
   collapse.

    OMP_NUM_THREADS=1 python benchmarks/zbl_effect.py --minutes 8 --output benchmarks/runs/zbl
    OMP_NUM_THREADS=1 python benchmarks/zbl_effect.py --system water --minutes 20 --md-steps 1000 \
        --reuse none=benchmarks/runs/water_schnet zbl=benchmarks/runs/water_schnet_zbl --output benchmarks/runs/zbl_water
    python benchmarks/zbl_effect.py --minutes 0.2 --md-steps 50 --output /tmp/zbl   # smoke run

Writes ``zbl_effect.json`` and ``zbl_effect.md`` (the table for benchmarks/RESULTS.md) and
``dimer_scans.png`` into ``--output``. Training runs already there are resumed/skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import ase
import ase.io
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("EQFF_SHARED_DATA", os.path.join(HERE, "..", "..", "shared", "data"))
ETHANOL = os.path.join(SHARED, "rmd17_ethanol")
WATER = os.path.join(HERE, "runs", "water_split")
SYSTEMS = {
    "ethanol": dict(model="egnn", pairs=[("H", "H"), ("C", "H"), ("C", "C"), ("C", "O"), ("O", "H")], centre=6,
                    test=f"{ETHANOL}/test_MD.xyz", temperatures=[1500.0, 3000.0],
                    data=["--train-file", f"{ETHANOL}/train.xyz", "--test-file", f"{ETHANOL}/test_MD.xyz",
                          "--e0s", f"{ETHANOL}/isolated_atoms.xyz", "--n-train", "950", "--n-valid", "50",
                          "--batch-size", "5"]),
    "water": dict(model="schnet", pairs=[("H", "H"), ("O", "H"), ("O", "O")], centre=8,
                  test=f"{WATER}/water_test.xyz", temperatures=[300.0, 600.0],
                  data=["--train-file", f"{WATER}/water_train.xyz", "--valid-file", f"{WATER}/water_valid.xyz",
                        "--test-file", f"{WATER}/water_test.xyz", "--e0s", "least_squares", "--batch-size", "2"]),
}
COLLAPSE_A = 0.5


def train(system: dict, prior: str, minutes: float, output: str, reuse: dict) -> str:
    folder = reuse.get(prior) or os.path.join(output, f"{system['model']}_{prior}")
    if os.path.exists(os.path.join(folder, "test_metrics.json")):
        return folder
    args = [sys.executable, "-m", "eqff", "train", "--model", system["model"], "--output", folder, *system["data"],
            "--lr", "0.005", "--max-time-min", str(minutes), "--max-epochs", "100000", "--no-progress", "--seed", "0"]
    if prior != "none":
        args += ["--prior", prior]
    if os.path.exists(os.path.join(folder, "last.pt")):
        args.append("--resume")
    os.makedirs(folder, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(os.path.join(folder, "stdout.log"), "a") as log:
        code = subprocess.call(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    if code != 0:
        raise SystemExit(f"training {folder} failed (exit {code}); see {folder}/stdout.log")
    return folder


def energies(calc, structures) -> np.ndarray:
    out = []
    for atoms in structures:
        atoms = atoms.copy()
        atoms.calc = calc
        out.append(atoms.get_potential_energy())
    return np.array(out)


def repulsive_below_minimum(r: np.ndarray, e: np.ndarray, bonded_from: float = 0.7) -> bool:
    """True when E rises monotonically as r falls from the bonding minimum (the lowest energy
    at r >= ``bonded_from`` Å) to the shortest distance of the scan (r ascending). A model
    that turns attractive again at short range (a hole) fails, wherever the hole is."""
    start = int(np.searchsorted(r, bonded_from))
    minimum = start + int(np.argmin(e[start:]))
    return bool(np.all(np.diff(e[: minimum + 1]) < 0))


def dimer_scans(calc, radii: np.ndarray, pairs) -> dict:
    scans = {}
    for a, b in pairs:
        structures = [ase.Atoms(a + b, positions=[[0, 0, 0], [r, 0, 0]]) for r in radii]
        e = energies(calc, structures)
        scans[f"{a}-{b}"] = dict(energy=e.tolist(), repulsive=repulsive_below_minimum(radii, e),
                                 e_at_0_5=float(np.interp(0.5, radii, e) - e[-1]))
    return scans


def bond_scan(calc, frame: ase.Atoms, radii: np.ndarray, centre_z: int) -> dict:
    """Push one H toward its bonded heavy atom along the bond; everything else stays put."""
    numbers = frame.get_atomic_numbers()
    carbon = int(np.flatnonzero(numbers == centre_z)[0])
    hydrogens = np.flatnonzero(numbers == 1)
    h = int(hydrogens[np.argmin(frame.get_distances(carbon, hydrogens, mic=True))])
    direction = frame.get_distance(carbon, h, mic=True, vector=True)
    direction /= np.linalg.norm(direction)
    structures = []
    for r in radii:
        atoms = frame.copy()
        atoms.positions[h] = atoms.positions[carbon] + r * direction
        structures.append(atoms)
    e = energies(calc, structures)
    return dict(energy=e.tolist(), repulsive=repulsive_below_minimum(radii, e),
                e_at_0_5=float(np.interp(0.5, radii, e) - e[np.argmin(np.abs(radii - 1.0))]))


def hot_md(calc, frame: ase.Atoms, temperature: float, steps: int, seed: int) -> dict:
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    atoms = frame.copy()
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=np.random.default_rng(seed))
    dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=temperature, friction=0.01, fixcm=False,
                   rng=np.random.default_rng(seed))
    closest, collapsed_at = np.inf, None
    for step in range(1, steps + 1):
        try:
            dyn.run(1)
            energy = atoms.get_potential_energy()
        except Exception as error:  # noqa: BLE001 - an eqff refusal (coincident atoms) is a collapse too
            collapsed_at, reason = step, type(error).__name__
            break
        distances = atoms.get_all_distances(mic=bool(atoms.pbc.any()))[np.triu_indices(len(atoms), 1)]
        closest = min(closest, float(distances.min()))
        if not np.isfinite(energy) or closest < COLLAPSE_A:
            collapsed_at, reason = step, "non-finite energy" if not np.isfinite(energy) else f"r < {COLLAPSE_A} Å"
            break
    return dict(temperature=temperature, seed=seed, steps=steps, closest_A=closest, collapsed_at=collapsed_at,
                reason=None if collapsed_at is None else reason)


def study(folder: str, system: dict, args) -> dict:
    import torch

    from eqff import EqffCalculator

    torch.set_num_threads(1)
    calc = EqffCalculator(os.path.join(folder, "best.pt"), dtype="float64")
    test = ase.io.read(system["test"], ":3")
    radii = np.linspace(0.1, 2.5, 97)
    bond_radii = np.linspace(0.2, 1.5, 53)
    result = dict(metrics=json.load(open(os.path.join(folder, "test_metrics.json"))), folder=folder,
                  dimers=dimer_scans(calc, radii, system["pairs"]), bond=bond_scan(calc, test[0], bond_radii, system["centre"]),
                  radii=radii.tolist(), bond_radii=bond_radii.tolist(), md=[])
    for temperature in args.temperatures or system["temperatures"]:
        for seed in range(args.seeds):
            result["md"].append(hot_md(calc, test[seed % len(test)], temperature, args.md_steps, seed))
            print(folder, result["md"][-1], flush=True)
    return result


def markdown(results: dict, system: dict, args) -> str:
    bond = "C–H" if system["centre"] == 6 else "O–H"
    lines = [f"{system['model']} on {args.system}, {args.minutes:g} min of training each, one thread, "
             "same seed and settings; only `--prior` differs. Runs: "
             + ", ".join(f"`{r['folder']}`" for r in results.values()) + ".", "",
             "| prior | test E MAE (meV) | test F MAE (meV/Å) | dimers repulsive below their minimum | "
             f"{bond} bond repulsive | E({bond} at 0.5 Å) − E(1.0 Å) (eV) | MD runs that collapsed |",
             "|---|---|---|---|---|---|---|"]
    for prior, r in results.items():
        repulsive = [name for name, scan in r["dimers"].items() if scan["repulsive"]]
        collapsed = sum(run["collapsed_at"] is not None for run in r["md"])
        lines.append(f"| {prior} | {r['metrics']['energy_mae_meV']:.1f} | {r['metrics']['forces_mae_meV_per_A']:.1f} | "
                     f"{len(repulsive)}/{len(r['dimers'])} ({', '.join(repulsive) or 'none'}) | "
                     f"{'yes' if r['bond']['repulsive'] else 'no'} | {r['bond']['e_at_0_5']:.2f} | "
                     f"{collapsed}/{len(r['md'])} |")
    lines += ["", "MD (Langevin, 0.5 fs, friction 0.01/fs, ASE, float64), per run: closest approach (Å), "
              f"and the step of collapse (two atoms closer than {COLLAPSE_A} Å, an eqff refusal or a "
              "non-finite energy):", "", "| prior | T (K) | seed | steps | closest (Å) | collapsed at step |",
              "|---|---|---|---|---|---|"]
    for prior, r in results.items():
        for run in r["md"]:
            lines.append(f"| {prior} | {run['temperature']:g} | {run['seed']} | {run['steps']} | {run['closest_A']:.2f} | "
                         f"{run['collapsed_at'] if run['collapsed_at'] is not None else '–'}"
                         f"{' (' + run['reason'] + ')' if run['reason'] else ''} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, system: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = system["pairs"]
    fig, axes = plt.subplots(1, len(pairs) + 1, figsize=(3.2 * (len(pairs) + 1), 3.2))
    for prior, r in results.items():
        radii = np.array(r["radii"])
        for ax, (name, scan) in zip(axes, r["dimers"].items()):
            e = np.array(scan["energy"])
            ax.plot(radii, e - e[-1], label=f"prior {prior}")
            ax.set_title(f"{name} dimer")
        e = np.array(r["bond"]["energy"])
        axes[-1].plot(r["bond_radii"], e - e.min(), label=f"prior {prior}")
        axes[-1].set_title("C–H in ethanol" if system["centre"] == 6 else "O–H in water")
    for ax in axes:
        ax.set_xlabel("r (Å)")
        ax.set_ylim(-10, 60)
    axes[0].set_ylabel("E − E(far) (eV)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=8.0, help="training wall time of each model")
    parser.add_argument("--system", choices=list(SYSTEMS), default="ethanol")
    parser.add_argument("--temperatures", type=float, nargs="+", default=None, help="K (default per system)")
    parser.add_argument("--reuse", nargs="*", default=[], help="PRIOR=RUN_FOLDER: an existing run with the same settings")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--md-steps", type=int, default=2000)
    parser.add_argument("--output", default=os.path.join(HERE, "runs", "zbl"))
    args = parser.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    system = SYSTEMS[args.system]
    reuse = dict(item.split("=", 1) for item in args.reuse)
    priors = ["none", "zbl"]
    with ThreadPoolExecutor(2) as pool:  # the two trainings side by side, one thread each
        folders = list(pool.map(lambda p: train(system, p, args.minutes, args.output, reuse), priors))
    results = {prior: study(folder, system, args) for prior, folder in zip(priors, folders)}
    with open(os.path.join(args.output, "zbl_effect.json"), "w") as handle:
        json.dump(results, handle, indent=1)
    text = markdown(results, system, args)
    with open(os.path.join(args.output, "zbl_effect.md"), "w") as handle:
        handle.write(text)
    plot(results, system, os.path.join(args.output, "dimer_scans.png"))
    print(text)


if __name__ == "__main__":
    main()

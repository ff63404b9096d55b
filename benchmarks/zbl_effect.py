"""What the ZBL repulsion prior does: the same EGNN trained on rMD17 ethanol for the same wall
time with and without ``--prior zbl``, then compared where the data has no frames.

1. accuracy near equilibrium: test energy and force MAE (the prior must not cost accuracy);
2. dimer scans: E(r) of an isolated pair (H-H, C-H, C-C, C-O, O-H) from 0.1 to 2.5 Å, and a
   C-H bond of an ethanol test frame pushed from 1.09 Å to 0.2 Å: is the energy repulsive
   (rising as r falls) everywhere below the minimum, or does the model let atoms fall in?
3. hot MD: Langevin MD of ethanol at 1500 K and 3000 K (ASE, 0.5 fs) from test frames,
   several seeds; a run "collapses" when two atoms come closer than 0.5 Å or the energy is
   not finite; we report the closest approach and the step of collapse.

    OMP_NUM_THREADS=1 python benchmarks/zbl_effect.py --minutes 8 --output benchmarks/runs/zbl
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
PAIRS = [("H", "H"), ("C", "H"), ("C", "C"), ("C", "O"), ("O", "H")]
COLLAPSE_A = 0.5


def train(prior: str, minutes: float, output: str) -> str:
    folder = os.path.join(output, f"egnn_{prior}")
    if os.path.exists(os.path.join(folder, "test_metrics.json")):
        return folder
    args = [sys.executable, "-m", "eqff", "train", "--model", "egnn", "--output", folder,
            "--train-file", f"{ETHANOL}/train.xyz", "--test-file", f"{ETHANOL}/test_MD.xyz",
            "--e0s", f"{ETHANOL}/isolated_atoms.xyz", "--n-train", "950", "--n-valid", "50",
            "--batch-size", "5", "--lr", "0.005", "--max-time-min", str(minutes), "--max-epochs", "100000",
            "--no-progress", "--seed", "0"]
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


def repulsive_below_minimum(r: np.ndarray, e: np.ndarray) -> bool:
    """True when E rises monotonically as r falls from the minimum of the scan to its start."""
    inner = e[: int(np.argmin(e)) + 1]  # r ascending: from the shortest distance to the minimum
    return bool(np.all(np.diff(inner) < 0))


def dimer_scans(calc, radii: np.ndarray) -> dict:
    scans = {}
    for a, b in PAIRS:
        structures = [ase.Atoms(a + b, positions=[[0, 0, 0], [r, 0, 0]]) for r in radii]
        e = energies(calc, structures)
        scans[f"{a}-{b}"] = dict(energy=e.tolist(), repulsive=repulsive_below_minimum(radii, e),
                                 e_at_0_5=float(np.interp(0.5, radii, e) - e[-1]))
    return scans


def bond_scan(calc, frame: ase.Atoms, radii: np.ndarray) -> dict:
    """Push one H toward its C along the bond; the rest of the molecule stays put."""
    numbers = frame.get_atomic_numbers()
    carbon = int(np.flatnonzero(numbers == 6)[0])
    hydrogens = np.flatnonzero(numbers == 1)
    h = int(hydrogens[np.argmin(frame.get_distances(carbon, hydrogens))])
    direction = frame.positions[h] - frame.positions[carbon]
    direction /= np.linalg.norm(direction)
    structures = []
    for r in radii:
        atoms = frame.copy()
        atoms.positions[h] = atoms.positions[carbon] + r * direction
        structures.append(atoms)
    e = energies(calc, structures)
    return dict(energy=e.tolist(), repulsive=repulsive_below_minimum(radii, e),
                e_at_0_5=float(np.interp(0.5, radii, e) - e[np.argmin(np.abs(radii - 1.09))]))


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
        distances = atoms.get_all_distances()[np.triu_indices(len(atoms), 1)]
        closest = min(closest, float(distances.min()))
        if not np.isfinite(energy) or closest < COLLAPSE_A:
            collapsed_at, reason = step, "non-finite energy" if not np.isfinite(energy) else f"r < {COLLAPSE_A} Å"
            break
    return dict(temperature=temperature, seed=seed, steps=steps, closest_A=closest, collapsed_at=collapsed_at,
                reason=None if collapsed_at is None else reason)


def study(folder: str, args) -> dict:
    import torch

    from eqff import EqffCalculator

    torch.set_num_threads(1)
    calc = EqffCalculator(os.path.join(folder, "best.pt"), dtype="float64")
    test = ase.io.read(f"{ETHANOL}/test_MD.xyz", ":3")
    radii = np.linspace(0.1, 2.5, 97)
    bond_radii = np.linspace(0.2, 1.5, 53)
    result = dict(metrics=json.load(open(os.path.join(folder, "test_metrics.json"))),
                  dimers=dimer_scans(calc, radii), bond=bond_scan(calc, test[0], bond_radii),
                  radii=radii.tolist(), bond_radii=bond_radii.tolist(), md=[])
    for temperature in args.temperatures:
        for seed in range(args.seeds):
            result["md"].append(hot_md(calc, test[seed % len(test)], temperature, args.md_steps, seed))
            print(folder, result["md"][-1], flush=True)
    return result


def markdown(results: dict, args) -> str:
    lines = [f"EGNN on rMD17 ethanol (950 train frames), {args.minutes:g} min of training each, one thread, "
             "same seed and settings; only `--prior` differs.", "",
             "| prior | test E MAE (meV) | test F MAE (meV/Å) | dimers repulsive below their minimum | "
             "C–H bond in ethanol repulsive | E(C–H at 0.5 Å) − E(1.09 Å) (eV) | hot-MD runs that collapsed |",
             "|---|---|---|---|---|---|---|"]
    for prior, r in results.items():
        repulsive = [name for name, scan in r["dimers"].items() if scan["repulsive"]]
        collapsed = sum(run["collapsed_at"] is not None for run in r["md"])
        lines.append(f"| {prior} | {r['metrics']['energy_mae_meV']:.1f} | {r['metrics']['forces_mae_meV_per_A']:.1f} | "
                     f"{len(repulsive)}/{len(r['dimers'])} ({', '.join(repulsive) or 'none'}) | "
                     f"{'yes' if r['bond']['repulsive'] else 'no'} | {r['bond']['e_at_0_5']:.2f} | "
                     f"{collapsed}/{len(r['md'])} |")
    lines += ["", "Hot MD (Langevin, 0.5 fs, friction 0.01/fs, ASE, float64), per run: closest approach (Å), "
              f"and the step of collapse (two atoms closer than {COLLAPSE_A} Å, an eqff refusal or a "
              "non-finite energy):", "", "| prior | T (K) | seed | steps | closest (Å) | collapsed at step |",
              "|---|---|---|---|---|---|"]
    for prior, r in results.items():
        for run in r["md"]:
            lines.append(f"| {prior} | {run['temperature']:g} | {run['seed']} | {run['steps']} | {run['closest_A']:.2f} | "
                         f"{run['collapsed_at'] if run['collapsed_at'] is not None else '–'}"
                         f"{' (' + run['reason'] + ')' if run['reason'] else ''} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PAIRS) + 1, figsize=(3.2 * (len(PAIRS) + 1), 3.2))
    for prior, r in results.items():
        radii = np.array(r["radii"])
        for ax, (name, scan) in zip(axes, r["dimers"].items()):
            e = np.array(scan["energy"])
            ax.plot(radii, e - e[-1], label=f"prior {prior}")
            ax.set_title(f"{name} dimer")
        e = np.array(r["bond"]["energy"])
        axes[-1].plot(r["bond_radii"], e - e.min(), label=f"prior {prior}")
        axes[-1].set_title("C–H in ethanol")
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
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1500.0, 3000.0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--md-steps", type=int, default=2000)
    parser.add_argument("--output", default=os.path.join(HERE, "runs", "zbl"))
    args = parser.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    priors = ["none", "zbl"]
    with ThreadPoolExecutor(2) as pool:  # the two trainings side by side, one thread each
        folders = list(pool.map(lambda p: train(p, args.minutes, args.output), priors))
    results = {prior: study(folder, args) for prior, folder in zip(priors, folders)}
    with open(os.path.join(args.output, "zbl_effect.json"), "w") as handle:
        json.dump(results, handle, indent=1)
    text = markdown(results, args)
    with open(os.path.join(args.output, "zbl_effect.md"), "w") as handle:
        handle.write(text)
    plot(results, os.path.join(args.output, "dimer_scans.png"))
    print(text)


if __name__ == "__main__":
    main()

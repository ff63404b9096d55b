#!/usr/bin/env python
"""Accuracy per training budget: eqff and MACE trained on the same frames for the same wall time
on this CPU (one thread each), tested on the same frames.

    python benchmarks/accuracy_budget.py --datasets aspirin ethanol --minutes 8 60 --lanes 2 \\
        --results benchmarks/RESULTS.md                                   # the comparison of issue 12
    python benchmarks/accuracy_budget.py --datasets aspirin --minutes 8 --codes eqff egnn schnet segnn mace
    python benchmarks/accuracy_budget.py --datasets mydata --train-file data.xyz --test-file test.xyz \\
        --energy-key REF_energy --forces-key REF_forces                    # any dataset
    python benchmarks/accuracy_budget.py --datasets mlearn_mo --n-train 0 --n-valid 20 --minutes 8 60 \\
        --codes eqff egnn segnn mace                                      # materials, with stress (issue 17)
    python benchmarks/accuracy_budget.py --minutes 0.5 --n-train 40 --n-test 20 --output /tmp/ab \\
        --require-free-cores 0                                            # a smoke run (~5 min)

Codes: ``eqff`` is ``eqff train`` with its defaults (the default model and recipe: only the data
files, E0s and the time limit are given); ``ace``, ``egnn``, ``schnet``, ``segnn`` add
``--model KIND`` (the invariant and SEGNN models with lr 5e-3 and reduce-on-plateau, the
settings of their issue-3 runs); ``mace`` is ``mace_run_train`` (.venv-mace, mace-torch 0.3.16)
with hidden irreps 64x0e+64x1o, r_max 5 Å, max_ell 3, correlation 3, 2 interactions, batch 5,
lr 0.01, AMSGrad, EMA 0.99, energy/force weights 1/100, and MACE's second stage (energy weight
1000, lr 1e-3) for the last quarter of the epochs that fit in the budget, the epoch time taken
from --mace-epoch-s, else from an earlier MACE run of the same dataset in --output, else
from one MACE epoch run first (``<output>/<dataset>/mace_calibration``); ``mace_plateau`` is the same without the second stage (lr on plateau, the setting of
the first comparison in RESULTS.md). MACE is stopped B minutes after its log says training
started and re-run with ``--restart_latest`` to write its model from the last checkpoint.

Data (written to --output so that every code reads the same files): --n-train (0: all but the
validation frames) + --n-valid validation frames by a seeded permutation of the training file;
a seeded subset of --n-test frames of the test file (all when it has fewer). Frames are read by
eqff's reader, so stresses in another convention (mlearn's VASP virials in kBar) arrive as ASE
stresses (eV/Å³). Energies, forces and stresses are written as the extxyz
``energy``/``forces``/``stress`` (eqff) and as ``REF_energy``/``REF_forces``/``REF_stress``
(MACE, which then also trains on stress: ``--loss stress``, weight 1 as eqff's); E0s by least
squares in eqff, MACE's "average". Test errors of all codes are computed the same way: force
MAE over all components (meV/Å), energy MAE per structure (meV) and per atom (meV/atom),
stress MAE over the 9 components (meV/Å³). Learning curves (validation force MAE against wall minutes) of every code and
budget go into ``<output>/<dataset>_curves.png``.

The machine is shared: the script refuses to start while fewer than --require-free-cores
(default: --lanes) of the 2 cores are free of other ``eqff train`` processes.
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.environ.get("EQFF_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
MACE_BIN = os.path.join(ROOT, ".venv-mace", "bin")
sys.path.insert(0, HERE)

DATASETS = {
    "aspirin": ("rmd17_aspirin/rmd17_aspirin_train.xyz", "rmd17_aspirin/rmd17_aspirin_test.xyz"),
    "ethanol": ("rmd17_ethanol/train.xyz", "rmd17_ethanol/test_MD.xyz"),
    "mlearn_mo": ("mlearn_Mo/training.extxyz", "mlearn_Mo/test.extxyz"),  # periodic, with stress (Zuo et al. 2020)
}
# the atoms.info key naming each frame's kind, where a set has one; written as config_type (the key
# both codes read) so that errors per kind and config_type_weights work on the prepared files
CONFIG_TYPE_KEYS = {"mlearn_mo": "group"}
EQFF_KINDS = ("ace", "egnn", "schnet", "segnn")
LEGACY_FLAGS = ["--lr", "0.005", "--scheduler", "plateau", "--warmup-epochs", "1"]  # issue-3 settings


def prepare_data(output, dataset, train_file, test_file, seed, n_train, n_valid, n_test, keys):
    folder = os.path.join(output, dataset)
    paths = {name: os.path.join(folder, f"{name}.xyz") for name in ("train", "valid", "test")}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    import ase.io

    from eqff.data.frames import read_frames

    os.makedirs(folder, exist_ok=True)
    energy_key, forces_key, *stress_key = keys
    labels = dict(energy_key=energy_key, forces_key=forces_key, stress_key=(stress_key or ["stress"])[0])
    labels["config_type_key"] = CONFIG_TYPE_KEYS.get(dataset, "config_type")
    train, test = read_frames(train_file, **labels), read_frames(test_file, **labels)
    n_train = n_train or len(train) - n_valid
    if n_train + n_valid > len(train):
        raise SystemExit(f"{train_file} has {len(train)} frames, fewer than {n_train} + {n_valid}")
    order = np.random.default_rng(seed).permutation(len(train))
    test_order = np.sort(np.random.default_rng(seed + 1).permutation(len(test))[:n_test])
    parts = {"train": [train[i] for i in order[:n_train]], "valid": [train[i] for i in order[n_train:n_train + n_valid]],
             "test": [test[i] for i in test_order]}
    for name, frames in parts.items():
        out = []
        for frame in frames:
            atoms = frame.to_atoms()
            atoms.info = {"energy": frame.energy, "REF_energy": frame.energy}
            if frame.config_type is not None:
                atoms.info["config_type"] = frame.config_type
            atoms.arrays["forces"] = frame.forces.copy()
            atoms.arrays["REF_forces"] = frame.forces.copy()
            if frame.stress is not None:  # ASE's sign and eV/Å³, for both codes
                atoms.info["stress"] = frame.stress.copy()
                atoms.info["REF_stress"] = frame.stress.copy()
            out.append(atoms)
        ase.io.write(paths[name] + ".tmp", out, format="extxyz")
        os.replace(paths[name] + ".tmp", paths[name])
    return paths


def has_stress(paths) -> bool:
    import ase.io

    return "REF_stress" in ase.io.read(paths["train"], 0).info


def force_mae_mev(predicted, reference) -> float:
    return float(np.mean(np.abs(np.concatenate(predicted) - np.concatenate(reference))) * 1e3)


# ---------------------------------------------------------------- eqff
def run_eqff(code, minutes, paths, folder, eqff_args):
    os.makedirs(folder, exist_ok=True)
    args = [os.path.join(ROOT, ".venv", "bin", "python"), "-m", "eqff", "train", "--output", folder,
            "--train-file", paths["train"], "--valid-file", paths["valid"], "--test-file", paths["test"],
            "--e0s", "least_squares", "--max-time-min", str(minutes), "--max-epochs", "100000", "--no-progress",
            "--seed", "0"]
    if code != "eqff":
        args += ["--model", code] + (LEGACY_FLAGS if code != "ace" else [])
    args += eqff_args
    if os.path.exists(os.path.join(folder, "last.pt")):
        args.append("--resume")  # an interrupted benchmark continues where it stopped
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.time()
    with open(os.path.join(folder, "stdout.log"), "a") as log:
        log.write(" ".join(args) + "\n")
        log.flush()
        code_ = subprocess.call(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    result = {"code": code, "exit": code_, "wall_s": time.time() - start, "command": " ".join(args)}
    metrics_path = os.path.join(folder, "test_metrics.json")
    if os.path.exists(metrics_path):
        metrics = json.load(open(metrics_path))
        result.update(force_mae=metrics["forces_mae_meV_per_A"], energy_mae=metrics.get("energy_mae_meV"),
                      energy_mae_per_atom=metrics.get("energy_mae_meV_per_atom"),
                      stress_mae=metrics.get("stress_mae_meV_per_A3"))
    curve = eqff_curve(folder)
    if curve:
        result["epochs"] = len(curve)
        result["curve"] = curve
    return result


def eqff_curve(folder):
    """[(wall minutes, validation force MAE)] per epoch from metrics.csv."""
    path = os.path.join(folder, "metrics.csv")
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    return [(float(r["wall_time_s"]) / 60.0, float(r["valid_forces_mae_meV_per_A"])) for r in rows]


# ---------------------------------------------------------------- MACE
def mace_args(paths, folder, max_epochs, restart, two_stage_from=None):
    args = [os.path.join(MACE_BIN, "mace_run_train"), "--name", "mace", "--seed", "0", "--device", "cpu",
            "--default_dtype", "float32", "--train_file", paths["train"], "--valid_file", paths["valid"],
            "--test_file", paths["test"], "--energy_key", "REF_energy", "--forces_key", "REF_forces",
            "--model", "MACE", "--hidden_irreps", "64x0e+64x1o", "--r_max", "5.0", "--max_ell", "3",
            "--correlation", "3", "--num_interactions", "2", "--E0s", "average", "--batch_size", "5",
            "--valid_batch_size", "10", "--energy_weight", "1.0", "--forces_weight", "100.0", "--ema",
            "--ema_decay", "0.99", "--max_num_epochs", str(max_epochs), "--eval_interval", "1",
            "--error_table", "PerAtomMAE", "--work_dir", folder, "--checkpoints_dir", os.path.join(folder, "checkpoints"),
            "--model_dir", folder, "--log_dir", os.path.join(folder, "logs"), "--results_dir", os.path.join(folder, "results")]
    if has_stress(paths):
        args += ["--stress_key", "REF_stress", "--loss", "stress", "--stress_weight", "1.0", "--compute_stress", "True"]
    if two_stage_from is not None:
        args += ["--swa", "--start_swa", str(two_stage_from)]
    if restart:
        args.append("--restart_latest")
    return args


def mace_log_curve(folder):
    """[(wall minutes since training started, validation force MAE)] per epoch, from MACE's log."""
    text = _mace_logs(folder)
    stamp = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)"
    started = re.search(stamp + r" INFO: Started training", text)
    if not started:
        return []
    t0 = datetime.strptime(started.group(1), "%Y-%m-%d %H:%M:%S.%f")
    curve = []
    for match in re.finditer(stamp + r" INFO: Epoch (\d+):.*?MAE_F=\s*([0-9.]+) meV", text):
        t = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f")
        curve.append(((t - t0).total_seconds() / 60.0, float(match.group(3))))
    return curve


def mace_epoch_seconds(output, dataset, paths):
    """MACE's epoch time on this dataset: the median epoch of an earlier run in ``output``, else
    the second of two epochs run now (``<output>/<dataset>/mace_calibration``). Not the first: on
    mlearn Mo it took 112 s against ~77 s for the epochs after it, and a 60-minute plan built on it
    (32 epochs) ended after 42 minutes."""
    folders = sorted(glob.glob(os.path.join(output, dataset, "*min", "mace*"))) + [os.path.join(output, dataset, "mace_calibration")]
    for folder in folders:
        curve = mace_log_curve(folder)
        if curve:
            times = [curve[0][0]] + [b[0] - a[0] for a, b in zip(curve, curve[1:])]
            return 60.0 * float(np.median(times))
    folder = folders[-1]
    os.makedirs(folder, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(os.path.join(folder, "stdout.log"), "w") as log:
        subprocess.call(mace_args(paths, folder, 2, restart=False), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder)
    curve = mace_log_curve(folder)
    if len(curve) >= 2:
        return 60.0 * (curve[1][0] - curve[0][0])
    return 60.0 * curve[0][0] if curve else None


def run_mace(code, minutes, paths, folder, epoch_s):
    os.makedirs(folder, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    max_epochs, two_stage_from = 100000, None
    if code == "mace":
        if not epoch_s:
            return {"code": code, "error": "MACE's epoch time could not be measured (see mace_calibration/)"}
        max_epochs = max(int(minutes * 60.0 / epoch_s), 1)
        two_stage_from = max(int(round(0.75 * max_epochs)), 1) if max_epochs > 1 else 0
    args = mace_args(paths, folder, max_epochs, restart=False, two_stage_from=two_stage_from)
    result = {"code": code, "command": " ".join(args), "planned_epochs": max_epochs, "two_stage_from": two_stage_from}
    start = time.time()
    log_path = os.path.join(folder, "stdout.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder,
                                   start_new_session=True)
        training_started = None
        while process.poll() is None:
            time.sleep(2.0)
            if training_started is None and "Started training" in _read(log_path) + _mace_logs(folder):
                training_started = time.time()
            if training_started is not None and time.time() - training_started > minutes * 60.0:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                break
    result["train_wall_s"] = time.time() - (training_started or start)
    result["curve"] = mace_log_curve(folder)
    result.update(finalize_mace(folder, paths, env, two_stage_from, since=training_started or start))
    result["wall_s"] = time.time() - start
    return result


def finalize_mace(folder, paths, env, two_stage_from, since=0.0):
    """Test errors of the model a (stopped) MACE run delivers: its stage-two model when it reached
    stage two, else its stage-one model; written from the latest checkpoint first when the run was
    stopped before MACE wrote them itself (files older than ``since`` do not count)."""
    checkpoints = glob.glob(os.path.join(folder, "checkpoints", "*_epoch-*.pt"))
    if not checkpoints:
        return {"error": "no checkpoint written within the budget"}
    last_epoch = max(int(re.search(r"epoch-(\d+)", c).group(1)) for c in checkpoints)
    result = {"epochs": last_epoch + 1}
    # MACE writes its best stage-one model as mace.model and, with a second stage, the stage-two
    # model as mace_stagetwo.model: the latter is what its recipe delivers
    paths_by_stage = [os.path.join(folder, "mace_stagetwo.model")] if two_stage_from is not None else []
    paths_by_stage.append(os.path.join(folder, "mace.model"))
    fresh = lambda p: os.path.exists(p) and os.path.getmtime(p) >= since
    if not fresh(paths_by_stage[0]):
        # restart from the latest checkpoint with nothing left to train (max epochs = epochs done):
        # MACE evaluates it and writes its models
        with open(os.path.join(folder, "finalize.log"), "w") as log:
            code_ = subprocess.call(mace_args(paths, folder, last_epoch + 1, restart=True, two_stage_from=two_stage_from),
                                    stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder)
        if code_ != 0:
            return dict(result, error=f"finalising the checkpoint failed (exit {code_}); see {folder}/finalize.log")
    model_path = next((p for p in paths_by_stage if fresh(p)), None)
    if model_path is None:
        return dict(result, error=f"MACE wrote no model; see {folder}/finalize.log")
    result["model"] = os.path.basename(model_path)
    predictions = os.path.join(folder, "test_predictions.xyz")
    stress = has_stress(paths)
    code_ = subprocess.call([os.path.join(MACE_BIN, "mace_eval_configs"), "--configs", paths["test"], "--model",
                             model_path, "--output", predictions, "--device", "cpu", "--default_dtype", "float32"]
                            + (["--compute_stress"] if stress else []),
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env, cwd=folder)
    if code_ != 0:
        return dict(result, error=f"mace_eval_configs failed (exit {code_})")
    import ase.io

    predicted = ase.io.read(predictions, ":")
    reference = ase.io.read(paths["test"], ":")
    result["force_mae"] = force_mae_mev([a.arrays["MACE_forces"] for a in predicted],
                                        [a.arrays["REF_forces"] for a in reference])
    result["energy_mae"] = float(np.mean([abs(p.info["MACE_energy"] - r.info["REF_energy"])
                                          for p, r in zip(predicted, reference)]) * 1e3)
    result["energy_mae_per_atom"] = float(np.mean([abs(p.info["MACE_energy"] - r.info["REF_energy"]) / len(r)
                                                   for p, r in zip(predicted, reference)]) * 1e3)
    if stress and all("MACE_stress" in p.info for p in predicted):
        result["stress_mae"] = float(np.mean([np.abs(np.reshape(p.info["MACE_stress"], (3, 3)) - np.reshape(r.info["REF_stress"], (3, 3)))
                                              for p, r in zip(predicted, reference)]) * 1e3)
    return result


def _read(path):
    try:
        return open(path, errors="replace").read()
    except OSError:
        return ""


def _mace_logs(folder):
    return "".join(_read(p) for p in sorted(glob.glob(os.path.join(folder, "logs", "*.log"))) if not p.endswith("_debug.log"))


def other_training_processes() -> int:
    out = subprocess.run(["pgrep", "-f", "eqff train"], capture_output=True, text=True).stdout.split()
    return len([pid for pid in out if int(pid) != os.getpid()])


# ---------------------------------------------------------------- report
def plot_curves(dataset, results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {}
    for r in sorted(results, key=lambda r: (r["code"], -r["minutes"])):
        if not r.get("curve"):
            continue
        color = colors.setdefault(r["code"], f"C{len(colors)}")
        minutes, mae = zip(*r["curve"])
        ax.semilogy(minutes, mae, "-" if r["minutes"] == max(x["minutes"] for x in results) else "--", color=color,
                    marker=".", label=f"{r['code']} ({r['minutes']:g} min budget)")
    ax.set_xlabel("wall time (minutes, one thread)")
    ax.set_ylabel("validation force MAE (meV/Å)")
    ax.set_title(f"rMD17 {dataset}" if dataset in ("aspirin", "ethanol") else dataset)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(results, info) -> str:
    lines = [info, "",
             "| dataset | budget (min) | code | epochs | test F MAE (meV/Å) | test E MAE (meV) | E MAE (meV/atom) | "
             "stress MAE (meV/Å³) | F MAE / MACE's | E MAE / MACE's |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        mace = _reference(results, r["dataset"], r["minutes"])
        mae, energy = r.get("force_mae"), r.get("energy_mae")
        if mae is None:
            lines.append(f"| {r['dataset']} | {r['minutes']:g} | {r['code']} | {r.get('epochs', '–')} | "
                         f"failed: {r.get('error', 'exit ' + str(r.get('exit')))} | | | | | |")
            continue
        ratio_f = f"{mae / mace['force_mae']:.2f}" if mace else "–"
        ratio_e = f"{energy / mace['energy_mae']:.2f}" if mace and energy is not None else "–"
        per_atom, stress = r.get("energy_mae_per_atom"), r.get("stress_mae")
        lines.append(f"| {r['dataset']} | {r['minutes']:g} | {r['code']} | {r.get('epochs', '–')} | {mae:.1f} | "
                     f"{energy:.1f} | {'–' if per_atom is None else f'{per_atom:.2f}'} | "
                     f"{'–' if stress is None else f'{stress:.2f}'} | {ratio_f} | {ratio_e} |")
    return "\n".join(lines)


def _reference(results, dataset, minutes):
    """The MACE run the ratios divide by: the lower force error of the MACE variants."""
    maces = [r for r in results if r["dataset"] == dataset and r["minutes"] == minutes
             and r["code"].startswith("mace") and r.get("force_mae") is not None]
    return min(maces, key=lambda r: r["force_mae"]) if maces else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["aspirin"], help="aspirin, ethanol, or a name for --train-file")
    parser.add_argument("--train-file", default=None)
    parser.add_argument("--test-file", default=None)
    parser.add_argument("--energy-key", default="energy")
    parser.add_argument("--forces-key", default="forces")
    parser.add_argument("--stress-key", default="stress", help="(mlearn's virial_stress_kB_mlearn is found and "
                        "converted when 'stress' is missing)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[8.0], help="training wall time per run")
    parser.add_argument("--codes", nargs="+", default=["eqff", "mace"],
                        help="eqff (defaults), ace, egnn, schnet, segnn, mace (two-stage), mace_plateau")
    parser.add_argument("--lanes", type=int, default=2, help="runs at the same time (one thread each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=950, help="0: every training-file frame but the validation ones")
    parser.add_argument("--n-valid", type=int, default=50)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--eqff-args", default="", help="extra `eqff train` flags for every eqff run")
    parser.add_argument("--mace-epoch-s", type=float, default=None,
                        help="MACE's epoch time in seconds, to size its second stage (default: from its first "
                             "epoch in an earlier run of the dataset in --output)")
    parser.add_argument("--output", default=os.path.join("/tmp", "eqff_accuracy_budget"))
    parser.add_argument("--results", default=None, help="write the table into this Markdown file (RESULTS.md)")
    parser.add_argument("--require-free-cores", type=int, default=None)
    args = parser.parse_args(argv)
    command = "python benchmarks/accuracy_budget.py " + " ".join(sys.argv[1:] if argv is None else argv)
    others = other_training_processes()
    required = args.lanes if args.require_free_cores is None else args.require_free_cores
    if 2 - others < required:
        print(f"{others} other `eqff train` processes occupy the 2 cores (this needs {required} free); "
              "rerun when they are done, or pass --require-free-cores 0")
        return 2
    os.makedirs(args.output, exist_ok=True)
    load = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results_path = os.path.join(args.output, "results.json")
    results = json.load(open(results_path))["results"] if os.path.exists(results_path) else []
    done = {(r["dataset"], r["minutes"], r["code"]) for r in results if r.get("force_mae") is not None}
    for dataset in args.datasets:
        train_file, test_file = (args.train_file, args.test_file) if dataset not in DATASETS else \
            (os.path.join(SHARED, DATASETS[dataset][0]), os.path.join(SHARED, DATASETS[dataset][1]))
        paths = prepare_data(args.output, dataset, train_file, test_file, args.seed, args.n_train, args.n_valid,
                             args.n_test, (args.energy_key, args.forces_key, args.stress_key))
        for minutes in args.minutes:
            todo = [c for c in args.codes if (dataset, minutes, c) not in done]
            # MACE's two-stage run needs its epoch time: the plateau run (if asked for) goes first
            todo.sort(key=lambda c: (c == "mace", c))

            def one(code):
                folder = os.path.join(args.output, dataset, f"{minutes:g}min", code)
                if code.startswith("mace"):
                    epoch_s = args.mace_epoch_s or (mace_epoch_seconds(args.output, dataset, paths) if code == "mace" else None)
                    result = run_mace(code, minutes, paths, folder, epoch_s)
                else:
                    result = run_eqff(code, minutes, paths, folder, args.eqff_args.split())
                result.update(dataset=dataset, minutes=minutes)
                print(f"{dataset} {minutes:g} min {code}: F {result.get('force_mae')} E {result.get('energy_mae')} "
                      f"{result.get('error', '')}", flush=True)
                return result

            with ThreadPoolExecutor(args.lanes) as pool:
                new = list(pool.map(one, todo))
            results = [r for r in results if (r["dataset"], r["minutes"], r["code"]) not in
                       {(n["dataset"], n["minutes"], n["code"]) for n in new}] + new
            with open(results_path, "w") as handle:
                json.dump({"results": results}, handle, indent=1)
        plot_curves(dataset, [r for r in results if r["dataset"] == dataset],
                    os.path.join(args.output, f"{dataset}_curves.png"))
    results.sort(key=lambda r: (r["dataset"], r["minutes"], r["code"]))
    info = (f"{args.lanes} run(s) at a time, one thread each; {others} other `eqff train` processes and load average "
            f"{load:.1f} at the start ({started}); command `{command}`.")
    text = table(results, info)
    print(text)
    if args.results:
        from speed import write_section

        write_section(args.results, "accuracy_budget.py", "## Accuracy per training budget (benchmarks/accuracy_budget.py)\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Accuracy per budget: eqff (segnn, egnn, schnet) and MACE trained on the same rMD17 aspirin
frames for the same wall time on this CPU (one thread each), tested on the same frames.

    python benchmarks/accuracy_budget.py --minutes 20 --lanes 2            # the real comparison
    python benchmarks/accuracy_budget.py --minutes 20 --lanes 1            # with one other training run
    python benchmarks/accuracy_budget.py --minutes 0.5 --n-train 40 --n-test 20 --output /tmp/ab \
        --require-free-cores 0                                          # a smoke run (~3 min)

Data (written to --output so that both codes read the same files): 950 training + 50
validation frames drawn with a seeded permutation (--seed) from
``shared/data/rmd17_aspirin/rmd17_aspirin_train.xyz``; a fixed seeded subset of --n-test (500)
frames of ``rmd17_aspirin_test.xyz``. Energies and forces are written both as the extxyz
``energy``/``forces`` (eqff) and as ``REF_energy``/``REF_forces`` (MACE).

eqff: ``eqff train --max-time-min B`` (its own wall-time limit, counted from the start of
training), E0s by least squares, batch 5, EMA 0.99, best validation model tested.
MACE: ``mace_run_train`` in .venv-mace (mace-torch 0.3.16), ``--model MACE`` with hidden irreps
64x0e+64x1o, r_max 5 Å, max_ell 3, correlation 3, 2 interactions, float32, E0s ``average``
(least squares), batch 5, EMA 0.99, energy/force weights 1/100 like eqff, and
``--max_num_epochs`` large; this script kills it B minutes after its log says training started,
then re-runs it with ``--restart_latest --max_num_epochs <last epoch>`` so that it loads its
latest (best-validation) checkpoint without training and writes ``mace.model``, which
``mace_eval_configs`` evaluates on the test frames. Both force MAEs are computed here, the same
way (mean |dF| over all components, meV/Å).

The machine is shared: the script refuses to start while fewer than --require-free-cores
(default: --lanes) of the 2 cores are free of other ``eqff train`` processes, and records the
command as pending in RESULTS.md (--results) instead.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.environ.get("EQFF_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
MACE_BIN = os.path.join(ROOT, ".venv-mace", "bin")
sys.path.insert(0, HERE)


def prepare_data(output: str, seed: int, n_train: int, n_valid: int, n_test: int) -> dict:
    import ase.io

    paths = {name: os.path.join(output, f"{name}.xyz") for name in ("train", "valid", "test")}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    train = ase.io.read(f"{SHARED}/rmd17_aspirin/rmd17_aspirin_train.xyz", ":")
    test = ase.io.read(f"{SHARED}/rmd17_aspirin/rmd17_aspirin_test.xyz", ":")
    order = np.random.default_rng(seed).permutation(len(train))
    test_order = np.sort(np.random.default_rng(seed + 1).permutation(len(test))[:n_test])
    parts = {"train": [train[i] for i in order[:n_train]], "valid": [train[i] for i in order[n_train:n_train + n_valid]],
             "test": [test[i] for i in test_order]}
    for name, frames in parts.items():
        for atoms in frames:
            atoms.info["REF_energy"] = atoms.get_potential_energy()
            atoms.arrays["REF_forces"] = atoms.get_forces().copy()
        ase.io.write(paths[name] + ".tmp", frames, format="extxyz")
        os.replace(paths[name] + ".tmp", paths[name])
    return paths


def force_mae_mev(predicted, reference) -> float:
    return float(np.mean(np.abs(np.concatenate(predicted) - np.concatenate(reference))) * 1e3)


def run_eqff(model: str, minutes: float, paths: dict, output: str, lr: float) -> dict:
    folder = os.path.join(output, f"eqff_{model}")
    os.makedirs(folder, exist_ok=True)
    args = [os.path.join(ROOT, ".venv", "bin", "python"), "-m", "eqff", "train", "--model", model, "--output", folder,
            "--train-file", paths["train"], "--valid-file", paths["valid"], "--test-file", paths["test"],
            "--e0s", "least_squares", "--batch-size", "5", "--lr", str(lr), "--max-time-min", str(minutes),
            "--max-epochs", "100000", "--no-progress", "--seed", "0"]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.time()
    with open(os.path.join(folder, "stdout.log"), "w") as log:
        log.write(" ".join(args) + "\n")
        log.flush()
        code = subprocess.call(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    result = {"code": f"eqff {model}", "exit": code, "wall_s": time.time() - start, "command": " ".join(args)}
    metrics_path = os.path.join(folder, "test_metrics.json")
    if os.path.exists(metrics_path):
        metrics = json.load(open(metrics_path))
        result.update(force_mae=metrics["forces_mae_meV_per_A"], energy_mae=metrics.get("energy_mae_meV"))
    epochs = _last_epoch_eqff(folder)
    if epochs is not None:
        result["epochs"] = epochs
    return result


def _last_epoch_eqff(folder):
    path = os.path.join(folder, "metrics.csv")
    if not os.path.exists(path):
        return None
    lines = open(path).read().strip().splitlines()
    return int(lines[-1].split(",")[lines[0].split(",").index("epoch")]) if len(lines) > 1 else 0


def mace_args(paths: dict, folder: str, max_epochs: int, restart: bool) -> list:
    args = [os.path.join(MACE_BIN, "mace_run_train"), "--name", "mace", "--seed", "0", "--device", "cpu",
            "--default_dtype", "float32", "--train_file", paths["train"], "--valid_file", paths["valid"],
            "--test_file", paths["test"], "--energy_key", "REF_energy", "--forces_key", "REF_forces",
            "--model", "MACE", "--hidden_irreps", "64x0e+64x1o", "--r_max", "5.0", "--max_ell", "3",
            "--correlation", "3", "--num_interactions", "2", "--E0s", "average", "--batch_size", "5",
            "--valid_batch_size", "10", "--energy_weight", "1.0", "--forces_weight", "100.0", "--ema",
            "--ema_decay", "0.99", "--max_num_epochs", str(max_epochs), "--eval_interval", "1",
            "--error_table", "PerAtomMAE", "--work_dir", folder, "--checkpoints_dir", os.path.join(folder, "checkpoints"),
            "--model_dir", folder, "--log_dir", os.path.join(folder, "logs"), "--results_dir", os.path.join(folder, "results")]
    if restart:
        args.append("--restart_latest")
    return args


def run_mace(minutes: float, paths: dict, output: str) -> dict:
    folder = os.path.join(output, "mace")
    os.makedirs(folder, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    args = mace_args(paths, folder, 100000, restart=False)
    result = {"code": "mace", "command": " ".join(args)}
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
    checkpoints = glob.glob(os.path.join(folder, "checkpoints", "*_epoch-*.pt"))
    if not checkpoints:
        result["error"] = "no checkpoint written within the budget"
        return result
    last_epoch = max(int(re.search(r"epoch-(\d+)", c).group(1)) for c in checkpoints)
    result["epochs"] = last_epoch + 1
    # load the latest checkpoint without training: MACE writes mace.model and evaluates
    with open(os.path.join(folder, "finalize.log"), "w") as log:
        code = subprocess.call(mace_args(paths, folder, last_epoch, restart=True), stdout=log, stderr=subprocess.STDOUT,
                               env=env, cwd=folder)
    model_files = [p for p in (os.path.join(folder, "mace.model"), os.path.join(folder, "mace_compiled.model"))
                   if os.path.exists(p)]
    if code != 0 or not model_files:
        result["error"] = f"finalising the checkpoint failed (exit {code}); see {folder}/finalize.log"
        return result
    predictions = os.path.join(folder, "test_predictions.xyz")
    code = subprocess.call([os.path.join(MACE_BIN, "mace_eval_configs"), "--configs", paths["test"], "--model",
                            model_files[0], "--output", predictions, "--device", "cpu", "--default_dtype", "float32"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env, cwd=folder)
    if code != 0:
        result["error"] = f"mace_eval_configs failed (exit {code})"
        return result
    import ase.io

    predicted = ase.io.read(predictions, ":")
    reference = ase.io.read(paths["test"], ":")
    result["force_mae"] = force_mae_mev([a.arrays["MACE_forces"] for a in predicted],
                                        [a.arrays["REF_forces"] for a in reference])
    result["energy_mae"] = float(np.mean([abs(p.info["MACE_energy"] - r.info["REF_energy"])
                                          for p, r in zip(predicted, reference)]) * 1e3)
    result["wall_s"] = time.time() - start
    return result


def _read(path):
    try:
        return open(path, errors="replace").read()
    except OSError:
        return ""


def _mace_logs(folder):
    return "".join(_read(p) for p in glob.glob(os.path.join(folder, "logs", "*.log")))


def other_training_processes() -> int:
    out = subprocess.run(["pgrep", "-f", "eqff train"], capture_output=True, text=True).stdout.split()
    return len([pid for pid in out if int(pid) != os.getpid()])


def table(results, minutes, info) -> str:
    mace = next((r for r in results if r["code"] == "mace" and "force_mae" in r), None)
    lines = [f"Budget {minutes:g} min of training per model, one thread each; {info}", "",
             "| code | epochs | test F MAE (meV/Å) | test E MAE (meV) | F MAE / MACE's |", "|---|---|---|---|---|"]
    for r in results:
        mae = r.get("force_mae")
        ratio = f"{mae / mace['force_mae']:.2f}" if (mae is not None and mace) else "–"
        lines.append(f"| {r['code']} | {r.get('epochs', '–')} | {mae:.1f} |" if mae is not None else
                     f"| {r['code']} | {r.get('epochs', '–')} | failed: {r.get('error', 'exit ' + str(r.get('exit')))} |")
        if mae is not None:
            energy = r.get("energy_mae")
            lines[-1] += f" {energy:.1f} | {ratio} |" if energy is not None else f" – | {ratio} |"
        else:
            lines[-1] += " | |"
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20.0, help="training wall time per model")
    parser.add_argument("--codes", nargs="+", default=["segnn", "egnn", "schnet", "mace"])
    parser.add_argument("--lanes", type=int, default=1, help="models trained at the same time (1 thread each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--n-train", type=int, default=950, help="fewer only for a smoke run")
    parser.add_argument("--lr", type=float, default=0.005, help="eqff learning rate (MACE keeps its default 0.01)")
    parser.add_argument("--output", default=os.path.join(HERE, "runs", "accuracy_budget"))
    parser.add_argument("--results", default=None, help="write the table into this Markdown file (RESULTS.md)")
    parser.add_argument("--require-free-cores", type=int, default=None,
                        help="refuse to start while fewer of the 2 cores are free of other `eqff train` processes "
                             "(default: --lanes; 0 runs anyway)")
    args = parser.parse_args(argv)
    command = "python benchmarks/accuracy_budget.py " + " ".join(sys.argv[1:] if argv is None else argv)
    others = other_training_processes()
    required = args.lanes if args.require_free_cores is None else args.require_free_cores
    if 2 - others < required:
        message = (f"Pending: `{command}` was not run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
                   f"because {others} other `eqff train` processes occupied the 2 cores (it needs {required} free); "
                   f"rerun it when at most {2 - required} runs (`ps aux | grep \"eqff train\"`). The script was "
                   "tested end to end with `--minutes 0.5 --n-train 40 --n-test 20 --require-free-cores 0` "
                   "(all four codes trained, MACE killed at the budget, finalised and evaluated).")
        print(message)
        if args.results:
            from speed import write_section

            write_section(args.results, "accuracy_budget.py", "## Accuracy per training budget (benchmarks/accuracy_budget.py)\n\n" + message)
        return 2
    os.makedirs(args.output, exist_ok=True)
    paths = prepare_data(args.output, args.seed, args.n_train, 50, args.n_test)
    load = os.getloadavg()[0]

    def one(code):
        if code == "mace":
            return run_mace(args.minutes, paths, args.output)
        return run_eqff(code, args.minutes, paths, args.output, args.lr)

    with ThreadPoolExecutor(args.lanes) as pool:
        results = list(pool.map(one, args.codes))
    info = (f"{args.lanes} model(s) at a time, {others} other `eqff train` processes at the start, load average "
            f"{load:.1f} at the start; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; command `{command}`. "
            "eqff: default hyperparameters (segnn 64 features, lmax 2, 3 layers; egnn/schnet 64 features, 3 layers), "
            f"lr {args.lr}; MACE: 64x0e+64x1o, max_ell 3, correlation 3, 2 interactions, lr 0.01.")
    text = table(results, args.minutes, info)
    print(text)
    with open(os.path.join(args.output, "results.json"), "w") as handle:
        json.dump({"results": results, "info": info}, handle, indent=1)
    if args.results:
        from speed import write_section

        write_section(args.results, "accuracy_budget.py", "## Accuracy per training budget (benchmarks/accuracy_budget.py)\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

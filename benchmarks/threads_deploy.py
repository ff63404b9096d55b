#!/usr/bin/env python
"""Torch threads for deployed potentials: ms per energy + forces call through ``EqffCalculator``
with 1 thread, 2 threads and eqff's own choice ("auto", eqff/threads.py), on an idle machine and
with other processes keeping cores busy (issue 13, item 6).

    python benchmarks/threads_deploy.py --results benchmarks/RESULTS.md
    python benchmarks/threads_deploy.py --systems ethanol --models egnn --calls 20    # quick

Each case runs in a fresh process (threads are the process's): ``auto`` runs with
``OMP_NUM_THREADS`` unset, so the calculator samples the cores as a user's script would; 1 and 2
pass ``threads=``. ``--busy N`` starts N spinning processes for the case (another user's job).
Untrained default models (the speed does not depend on the weights), float32, the median of
``--calls`` calls after warm-up, positions moved a little each call so that nothing is cached.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from speed import SYSTEMS, machine, write_section  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "_peers"))
import protocol  # noqa: E402


def worker(setup):
    import numpy as np

    import eqff

    atoms = protocol.load_structure(dict(SYSTEMS[setup["system"]]))
    elements = sorted(set(int(z) for z in atoms.numbers))
    model = eqff.build_model(setup["model"], elements=elements, cutoff=5.0)
    calculator = eqff.EqffCalculator(model, threads=setup["threads"])
    atoms.calc = calculator
    rng = np.random.default_rng(0)
    base = atoms.positions.copy()
    times = []
    for call in range(setup["warmup"] + setup["calls"]):
        atoms.positions = base + rng.normal(scale=1e-3, size=base.shape)
        start = time.perf_counter()
        atoms.get_forces()
        if call >= setup["warmup"]:
            times.append(time.perf_counter() - start)
    return {"ms": 1e3 * float(np.median(times)), "threads": calculator.threads, "why": calculator.threads_reason}


def run_case(system, model, threads, busy, calls, warmup):
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.pop("MKL_NUM_THREADS", None)
    setup = dict(system=system, model=model, threads=None if threads == "auto" else int(threads), calls=calls,
                 warmup=warmup)
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        time.sleep(0.5 if busy else 0.0)
        out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(setup)], env=env, check=True,
                             capture_output=True, text=True).stdout
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    return json.loads(out.strip().splitlines()[-1])


def table(rows, info):
    lines = ["| system | model | busy cores | 1 thread ms | 2 threads ms | auto ms (chose) | auto / best |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        best = min(row["1"], row["2"])
        lines.append(f"| {row['system']} | {row['model']} | {row['busy']} | {row['1']:.1f} | {row['2']:.1f} | "
                     f"{row['auto']:.1f} ({row['auto_threads']}) | {row['auto'] / best:.2f} |")
    return "\n".join(lines) + "\n\n" + info + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--systems", nargs="+", default=["ethanol", "aspirin", "water_1536"], choices=list(SYSTEMS))
    parser.add_argument("--models", nargs="+", default=["ace", "egnn"])
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--calls", type=int, default=30, help="timed calls per case (big systems: a tenth)")
    parser.add_argument("--output", default=None, help="write the rows as JSON")
    parser.add_argument("--results", default=None, help="write the table into this Markdown file")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    rows = []
    for system in args.systems:
        calls = max(3, args.calls // 10) if system.startswith("water") else args.calls
        for model in args.models:
            for busy in args.busy:
                row = dict(system=system, model=model, busy=busy)
                for threads in ("1", "2", "auto"):
                    result = run_case(system, model, threads, busy, calls, warmup=max(2, calls // 5))
                    row[threads] = result["ms"]
                    if threads == "auto":
                        row["auto_threads"] = result["threads"]
                print(json.dumps(row), flush=True)
                rows.append(row)
    command = "python benchmarks/threads_deploy.py " + " ".join(sys.argv[1:] if argv is None else argv)
    host = machine()
    info = (f"{host['date']}, {host['cpu']}, {host['cores']} cores, {host['eqff_train_processes']} `eqff train` "
            f"processes running beside it; command `{command}`.")
    text = table(rows, info)
    print(text)
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(rows, handle, indent=1)
    if args.results:
        write_section(args.results, "threads_deploy.py",
                      "## Threads for deployed potentials (benchmarks/threads_deploy.py)\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

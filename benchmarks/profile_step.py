#!/usr/bin/env python
"""Where a training step's time goes: eqff models and MACE on the same rMD17 aspirin batches.

    python benchmarks/profile_step.py                                  # ace, segnn, egnn, mace
    python benchmarks/profile_step.py --codes ace mace --steps 20 --output benchmarks/results/profile_step.json
    python benchmarks/profile_step.py --codes ace --threads 1 2 --busy 0 1   # torch threads, idle or one core busy

One training step = energy forward + force backward (create_graph, for the force loss) +
parameter backward + optimiser step, batch 5, float32, one torch thread, 5 Å cutoff, the
first frames of ``shared/data/rmd17_aspirin``. Each code runs in its own process (MACE in
.venv-mace, mace-torch 0.3.16, built as benchmarks/accuracy_budget.py trains it: 64x0e+64x1o,
max_ell 3, correlation 3, 2 interactions, radial MLP [64, 64, 64]); the processes run one after
the other, so they see the same machine. Reported per code: median ms of the three phases
(forward; forward + force backward; the whole step) over --steps steps after a warm-up, and
the operators that take the most self time in the whole step (torch.profiler).
``--threads`` sets torch's intra-op threads (OMP_NUM_THREADS; default 1); ``--busy N`` keeps N
cores busy with spinning processes during the measurement (another user's job).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.environ.get("EQFF_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
PYTHON = {"eqff": os.path.join(ROOT, ".venv", "bin", "python"), "mace": os.path.join(ROOT, ".venv-mace", "bin", "python")}
BATCH = 5


def _frames(n):
    import ase.io

    frames = ase.io.read(os.path.join(SHARED, "rmd17_aspirin", "rmd17_aspirin_train.xyz"), f":{n}")
    for atoms in frames:
        atoms.info["REF_energy"] = atoms.get_potential_energy()
        atoms.arrays["REF_forces"] = atoms.get_forces().copy()
    return frames


def eqff_step(kind, frames, hyperparameters):
    import torch

    import eqff
    from eqff.data.frames import Frame
    from eqff.data.graph import collate, frame_to_graph
    from eqff.train.loss import WeightedLoss

    graphs = [frame_to_graph(Frame.from_atoms(atoms), 5.0) for atoms in frames]
    avg = sum(g["edge_index"].shape[1] for g in graphs) / sum(len(g["atomic_numbers"]) for g in graphs)
    model = eqff.build_model(kind, [1, 6, 8], 5.0, dtype="float32", avg_num_neighbors=avg, **hyperparameters)
    batches = [collate(graphs[i:i + BATCH], dtype=torch.float32) for i in range(0, len(graphs), BATCH)]
    loss_fn = WeightedLoss(1.0, 100.0, 0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    params = sum(p.numel() for p in model.parameters())

    def forward(batch):
        return model(batch, compute_forces=False)

    def forward_forces(batch):
        return model(batch, compute_forces=True, create_graph=True)

    def step(batch):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(batch, compute_forces=True, create_graph=True), batch)
        loss.backward()
        optimizer.step()

    return batches, forward, forward_forces, step, params, f"eqff {kind} {json.dumps(hyperparameters) if hyperparameters else '(defaults)'}"


def mace_step(frames):
    sys.path.insert(0, os.path.join(HERE, "_peers"))
    import torch
    from mace import data as mace_data
    from mace.tools import AtomicNumberTable, torch_geometric
    from mace_worker import build_model

    torch.set_default_dtype(torch.float32)
    avg_pairs = []
    z_table = AtomicNumberTable([1, 6, 8])
    graphs = []
    for atoms in frames:
        config = mace_data.config_from_atoms(atoms)
        graph = mace_data.AtomicData.from_config(config, z_table=z_table, cutoff=5.0, heads=["Default"])
        graphs.append(graph)
        avg_pairs.append(graph.edge_index.shape[1] / len(atoms))
    model = build_model(frames[0].numbers, 5.0, sum(avg_pairs) / len(avg_pairs)).float()
    loader = torch_geometric.dataloader.DataLoader(dataset=graphs, batch_size=BATCH, shuffle=False, drop_last=False)
    batches = [b.to_dict() for b in loader]
    references = [(torch.tensor([a.info["REF_energy"] for a in frames[i:i + BATCH]], dtype=torch.float32),
                   torch.tensor(_concat([a.arrays["REF_forces"] for a in frames[i:i + BATCH]]), dtype=torch.float32))
                  for i in range(0, len(frames), BATCH)]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    params = sum(p.numel() for p in model.parameters())
    index = {id(b): k for k, b in enumerate(batches)}

    def forward(batch):
        return model(dict(batch), training=True, compute_force=False)

    def forward_forces(batch):
        return model(dict(batch), training=True, compute_force=True)

    def step(batch):
        energy_ref, forces_ref = references[index[id(batch)]]
        optimizer.zero_grad(set_to_none=True)
        out = model(dict(batch), training=True, compute_force=True)
        atoms = torch.bincount(batch["batch"]).to(torch.float32)
        loss = torch.mean(((out["energy"] - energy_ref) / atoms) ** 2) + 100.0 * torch.mean((out["forces"] - forces_ref) ** 2)
        loss.backward()
        optimizer.step()

    return batches, forward, forward_forces, step, params, "MACE 64x0e+64x1o, max_ell 3, correlation 3, 2 interactions"


def _concat(arrays):
    import numpy as np

    return np.concatenate(arrays)


def worker(code, steps, hyperparameters, threads):
    import torch

    torch.set_num_threads(threads)
    frames = _frames(4 * BATCH)
    if code == "mace":
        batches, forward, forward_forces, step, params, label = mace_step(frames)
    else:
        batches, forward, forward_forces, step, params, label = eqff_step(code, frames, hyperparameters)
    for batch in batches:  # warm-up
        step(batch)
    timings = {}
    for name, call in (("forward", forward), ("forward_forces", forward_forces), ("step", step)):
        seconds = []
        for k in range(steps):
            batch = batches[k % len(batches)]
            start = time.perf_counter()
            call(batch)
            seconds.append(time.perf_counter() - start)
        seconds.sort()
        timings[name + "_ms"] = 1e3 * seconds[len(seconds) // 2]
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches:
            step(batch)
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]
    timings["top_ops"] = [{"op": e.key, "share": e.self_cpu_time_total / total, "calls_per_step": e.count / len(batches)}
                          for e in top]
    timings["ops_per_step"] = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::")) / len(batches)
    timings.update(params=params, label=label, torch=torch.__version__)
    print("@@RESULT " + json.dumps(timings), flush=True)


def run_code(code, steps, hyperparameters, threads=1, busy=0):
    interpreter = PYTHON["mace" if code == "mace" else "eqff"]
    args = [interpreter, os.path.abspath(__file__), "--worker", code, "--steps", str(steps),
            "--hyperparameters", json.dumps(hyperparameters), "--threads", str(threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONPATH=ROOT)
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        out = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    for line in out.stdout.splitlines():
        if line.startswith("@@RESULT "):
            return json.loads(line[len("@@RESULT "):])
    raise RuntimeError(f"{code} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")


def table(results) -> str:
    lines = ["| code | threads | busy cores | parameters | forward ms | + force backward ms | whole step ms | "
             "step / MACE's | aten ops per step |", "|---|---|---|---|---|---|---|---|---|"]
    mace = next((r for r in results.values() if r["label"].startswith("MACE")), None)
    for name, r in results.items():
        ratio = f"{r['step_ms'] / mace['step_ms']:.2f}" if mace else "–"
        lines.append(f"| {r['label']} | {r['threads']} | {r['busy']} | {r['params']:,} | {r['forward_ms']:.1f} | "
                     f"{r['forward_forces_ms']:.1f} | {r['step_ms']:.1f} | {ratio} | {r['ops_per_step']:.0f} |")
    lines += ["", "Top operators by self time in the whole step (share of the step):", ""]
    for name, r in results.items():
        ops = ", ".join(f"`{o['op']}` {100 * o['share']:.0f} %" for o in r["top_ops"][:6])
        lines.append(f"- {r['label']}: {ops}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codes", nargs="+", default=["ace", "segnn", "egnn", "mace"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--hyperparameters", default="{}", help="JSON, for the eqff codes")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="torch intra-op threads")
    parser.add_argument("--busy", type=int, nargs="+", default=[0], help="cores kept busy by other processes")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.steps, json.loads(args.hyperparameters), args.threads[0])
        return 0
    results = {}
    for code in args.codes:
        for threads in args.threads:
            for busy in args.busy:
                key = f"{code}/{threads}t/{busy}busy"
                results[key] = run_code(code, args.steps, json.loads(args.hyperparameters) if code != "mace" else {},
                                        threads, busy)
                results[key].update(threads=threads, busy=busy)
                print(f"{key}: step {results[key]['step_ms']:.1f} ms", flush=True)
    text = table(results)
    print(text)
    if args.output:
        with open(args.output, "w") as handle:
            json.dump({"results": results, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       "load_average": os.getloadavg()[0], "command": " ".join(sys.argv)}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

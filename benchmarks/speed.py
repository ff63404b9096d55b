#!/usr/bin/env python
"""Speed and memory of eqff (ace, the default, schnet, egnn, segnn) beside MACE and NequIP, measured in one run,
alternating, on the same structures, one torch thread each.

    OMP_NUM_THREADS=1 python benchmarks/speed.py                      # everything (long)
    python benchmarks/speed.py --systems ethanol aspirin --dtypes float32 --rounds 3
    python benchmarks/speed.py --results benchmarks/RESULTS.md        # also write the tables there

Structures: rMD17 ethanol (9 atoms) and aspirin (21), water_192 (periodic, 12.44 Å box) and
water_192 replicated 2x2x2 (1,536 atoms) and 4x4x4 (12,288). Cutoff 5 Å everywhere.

What is timed (median seconds per call after warm-up; each call moves the atoms by ±1e-3 Å):
* ``ase``: energy+forces through each package's ASE calculator (eqff: EqffCalculator, vesin
  neighbour list with a 1 Å skin; MACE: MACECalculator, matscipy list every call and, for
  model_type MACE, stress too; NequIP: NequIPCalculator, its neighbour-list transform every call);
* ``bare``: the model alone on a prebuilt graph, energy+forces (no neighbour list, no stress);
* ``ase_chunked`` (eqff only, asked for with ``--engines``): the ASE call with
  ``max_edges_per_chunk`` (``--max-edges-per-chunk``): the memory-bounded evaluation, whose
  per-chunk working set stays in cache on large systems;
* ``torchforce`` (eqff only): one OpenMM VerletIntegrator step, CPU platform, 1 thread, with the
  scripted OpenMMModule as a TorchForce (pure-torch neighbour list with a 1 Å skin inside),
  stepped as eqff steps it on the CPU: inside ``eqff.openmm.fast_steps`` (TorchScript's executor
  optimisation off; before 2026-12-01 the rows were measured with it on).

Every configuration (package x model x structure x dtype) runs in a fresh process; eqff and the
peers run side by side as workers and are called in turn (eqff, MACE, NequIP, eqff, ...), so
each eqff/peer ratio comes from interleaved measurements under the same machine load. Peak
memory per call: ru_maxrss after the calls minus the resident set just before the first call
(benchmarks/_peers/protocol.py). float32 force error: the float32 model's forces against the
float64 model with the same weights, on the same structure (max |dF| / max |F64|).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "_peers"))
import protocol  # noqa: E402

SHARED = os.environ.get("EQFF_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
SYSTEMS = {
    "ethanol": dict(path=f"{SHARED}/rmd17_ethanol/train.xyz", index=0),
    "aspirin": dict(path=f"{SHARED}/rmd17_aspirin/rmd17_aspirin_test.xyz", index=0),
    "water_192": dict(path=f"{SHARED}/water_192/water.extxyz", index=0),
    "water_1536": dict(path=f"{SHARED}/water_192/water.extxyz", index=0, repeat=[2, 2, 2]),
    "water_12288": dict(path=f"{SHARED}/water_192/water.extxyz", index=0, repeat=[4, 4, 4]),
}
PEERS = {
    "mace": os.path.join(ROOT, ".venv-mace", "bin", "python"),
    "nequip": os.path.join(ROOT, ".venv-nequip", "bin", "python"),
}
# calls per measurement block and warm-up calls, by structure (the big ones take seconds a call)
CALLS = {"ethanol": (10, 5), "aspirin": (10, 5), "water_192": (3, 2), "water_1536": (1, 1), "water_12288": (1, 1)}


# ---------------------------------------------------------------------------------------------
# the eqff worker (this file with --worker)


def eqff_worker(setup):
    import numpy as np
    import torch

    torch.set_num_threads(1)
    import eqff
    from eqff.data.graph import frames_to_batch
    from eqff.data.frames import Frame
    from eqff.models.io import copy_potential
    from eqff.openmm import fast_steps
    from eqff.runtime.allocator import freed_memory_kept

    atoms = protocol.load_structure(setup)
    dtype = setup["dtype"]
    torch.manual_seed(0)
    elements = sorted(set(int(z) for z in atoms.numbers))
    model64 = eqff.build_model(setup["model"], elements=elements, cutoff=setup["cutoff"], dtype="float64")
    model = model64 if dtype == "float64" else copy_potential(model64, dtype=torch.float32)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    # built only when asked for: an unchunked calculator (or OpenMM force) makes the process keep
    # freed memory (eqff/runtime/allocator.py), so `--engines ase_chunked` alone measures the
    # memory-bounded path as a user gets it
    if {"ase", "torchforce", "pythonforce"} & set(setup["engines"]):
        atoms.calc = eqff.EqffCalculator(model, dtype=dtype)
    move = protocol.jiggle(atoms)

    def ase_call():
        move()
        atoms.get_forces()

    chunked_atoms = atoms.copy()
    if "ase_chunked" in setup["engines"]:
        chunked_atoms.calc = eqff.EqffCalculator(model, dtype=dtype, max_edges_per_chunk=setup["max_edges_per_chunk"])
    move_chunked = protocol.jiggle(chunked_atoms)

    def ase_chunked_call():
        move_chunked()
        chunked_atoms.get_forces()

    batch = frames_to_batch([Frame.from_atoms(atoms)], setup["cutoff"], dtype=getattr(torch, dtype))

    def bare_call():
        out = model(batch, compute_forces=True)
        out["forces"].sum().item()

    contexts = {}

    def openmm_step(implementation):
        def step():
            if implementation not in contexts:
                contexts[implementation] = _openmm_context(model, atoms, dtype, implementation)
            with fast_steps("CPU"):  # as eqff steps OpenMM on the CPU (eqff/calculators/openmm_steps.py)
                contexts[implementation]["integrator"].step(1)
        return step

    def force_error(request):
        """float32 forces vs the float64 model with the same weights (same structure)."""
        if dtype != "float32":
            return {}
        calc64 = eqff.EqffCalculator(model64, dtype="float64")
        probe = atoms.copy()
        probe.calc = calc64
        f64 = probe.get_forces()
        probe.calc = eqff.EqffCalculator(model, dtype="float32")
        f32 = probe.get_forces()
        diff = np.abs(f32 - f64)
        return {"max_rel": float(diff.max() / np.abs(f64).max()),
                "rms_rel": float(np.sqrt((diff ** 2).mean() / (f64 ** 2).mean()))}

    def builds(request):
        return {"ase_neighbor_list_builds": atoms.calc.neighbor_list_builds if atoms.calc is not None else 0,
                "keeps_freed_memory": freed_memory_kept()}

    protocol.reply({"ready": True, "params": sum(p.numel() for p in model.parameters()), "atoms": len(atoms),
                    "edges": int(batch["edge_index"].shape[1]), "model": setup["model"], "torch": torch.__version__})
    protocol.serve({"ase": ase_call, "ase_chunked": ase_chunked_call, "bare": bare_call, "torchforce": openmm_step("torchforce"),
                    "pythonforce": openmm_step("pythonforce")},
                   {"force_error": force_error, "builds": builds})


def _openmm_context(model, atoms, dtype, implementation):
    """An OpenMM Context (CPU platform, 1 thread, Verlet 0.5 fs, 300 K velocities) whose only
    force is the model as a TorchForce (scripted) or a PythonForce (eager module)."""
    import openmm
    from openmm import unit

    import eqff.openmm

    setup = eqff.openmm.system_from_atoms(atoms, model, implementation=implementation, dtype=dtype)
    integrator = openmm.VerletIntegrator(0.5 * unit.femtosecond)
    context = openmm.Context(setup.system, integrator, openmm.Platform.getPlatformByName("CPU"), {"Threads": "1"})
    context.setPositions(setup.positions)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    return {"integrator": integrator, "context": context}


# ---------------------------------------------------------------------------------------------
# the orchestrator


class Worker:
    def __init__(self, name, python, script, setup):
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
        args = [python, script] + (["--worker"] if script == os.path.abspath(__file__) else []) + [json.dumps(setup)]
        self.name = name
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, env=env, cwd=ROOT)
        self.info = self.read()
        if "error" in self.info or not self.info.get("ready"):
            raise RuntimeError(f"{name} worker failed to start: {self.info}")

    def read(self):
        for line in self.process.stdout:
            if line.startswith(protocol.PREFIX):
                return json.loads(line[len(protocol.PREFIX):])
        return {"error": f"worker exited with code {self.process.wait()}"}

    def ask(self, **request):
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.read()
        if "error" in answer:
            raise RuntimeError(f"{self.name}: {answer['error']}")
        return answer

    def time(self, kind, n):
        return self.ask(cmd="time", kind=kind, n=n)["seconds"]

    def close(self):
        try:
            self.ask(cmd="quit")
        except Exception:
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def median(values):
    return statistics.median(values) if values else float("nan")


def measure_system(name, dtype, args, log):
    """All models and peers on one structure in one dtype, interleaved; returns result rows."""
    setup = dict(SYSTEMS[name], dtype=dtype, cutoff=args.cutoff, max_edges_per_chunk=args.max_edges_per_chunk,
                 engines=args.engines)
    calls, warmup = CALLS[name]
    peer_kinds = args.peer_kinds_large if SIZES[name] > 5000 else ["ase", "bare"]
    if args.calls:
        calls = args.calls
    peers = {}
    for peer in args.peers:
        if (name, peer) in args.skip_peer_systems:
            continue
        try:
            peers[peer] = Worker(peer, PEERS[peer], os.path.join(HERE, "_peers", f"{peer}_worker.py"), setup)
            for kind in peer_kinds:
                peers[peer].time(kind, warmup)
        except Exception as error:
            log(f"  {peer} on {name} {dtype}: not measured ({error})")
            peers.pop(peer, None)
    rows = []
    for model in args.models:
        if (name, model) in args.skip_model_systems:
            log(f"  eqff {model} on {name}: skipped (--skip)")
            continue
        try:
            worker = Worker(f"eqff {model}", sys.executable, os.path.abspath(__file__), dict(setup, model=model))
        except Exception as error:
            log(f"  eqff {model} on {name} {dtype}: not measured ({error})")
            continue
        try:
            rows.append(_measure_model(worker, peers, peer_kinds, name, dtype, model, calls, warmup, args, log))
        except Exception as error:  # one broken configuration must not stop the others
            log(f"  eqff {model} on {name} {dtype}: failed ({error})")
        worker.close()
    for peer, peer_worker in peers.items():
        memory = peer_worker.ask(cmd="memory")
        for row in rows:
            if peer in row["peers"]:
                row["peers"][peer]["peak_mib"] = memory["maxrss_mib"] - memory["rss_before_mib"]
        peer_worker.close()
    return rows


def _measure_model(worker, peers, peer_kinds, name, dtype, model, calls, warmup, args, log):
    """Interleaved ASE/bare calls of one eqff model with the peers, memory, float32 error, TorchForce."""
    # SEGNN on 12,288 atoms needs ~26 GiB in one piece: `--engines ase_chunked` measures only the chunked call
    eqff_kinds = tuple(kind for kind in ("ase", "bare", "ase_chunked") if kind in args.engines)
    times = {("eqff", "ase"): [], ("eqff", "bare"): [], ("eqff", "torchforce"): [], ("eqff", "ase_chunked"): []}
    for peer in peers:
        times[(peer, "ase")] = []
        times[(peer, "bare")] = []
    peer_calls = 1 if SIZES[name] > 5000 else calls
    for kind in eqff_kinds:
        worker.time(kind, warmup)
    for _ in range(args.rounds):  # eqff and the peers in turn
        for kind in eqff_kinds:
            times[("eqff", kind)] += worker.time(kind, calls)
            for peer, peer_worker in peers.items():
                if kind in peer_kinds:
                    times[(peer, kind)] += peer_worker.time(kind, peer_calls)
    memory = worker.ask(cmd="memory")
    error = worker.ask(cmd="force_error") if "ase" in args.engines else {}  # float64 in one piece
    bare_tf = []
    times[("eqff", "pythonforce")] = []
    engines = [e for e in ("torchforce", "pythonforce") if e in args.engines]
    if engines:
        for engine in engines:
            worker.time(engine, warmup + 2)  # build the Context, TorchScript warm-up
        for _ in range(args.rounds):  # OpenMM steps and bare evaluations in turn
            for engine in engines:
                times[("eqff", engine)] += worker.time(engine, calls)
            bare_tf += worker.time("bare", calls)
    builds = worker.ask(cmd="builds")
    row = {"system": name, "atoms": worker.info["atoms"], "edges": worker.info["edges"], "dtype": dtype,
           "model": model, "params": worker.info["params"],
           "ase_ms": 1e3 * median(times[("eqff", "ase")]), "bare_ms": 1e3 * median(times[("eqff", "bare")]),
           "ase_chunked_ms": 1e3 * median(times[("eqff", "ase_chunked")]),
           "max_edges_per_chunk": args.max_edges_per_chunk if "ase_chunked" in args.engines else None,
           "torchforce_ms": 1e3 * median(times[("eqff", "torchforce")]),
           "pythonforce_ms": 1e3 * median(times[("eqff", "pythonforce")]),
           "bare_beside_torchforce_ms": 1e3 * median(bare_tf),
           "peak_mib": memory["maxrss_mib"] - memory["rss_before_mib"], "rss_before_mib": memory["rss_before_mib"],
           "force_error": error, "builds": builds, "calls": len(times[("eqff", "ase")]), "peers": {}}
    for peer, peer_worker in peers.items():
        row["peers"][peer] = {"ase_ms": 1e3 * median(times[(peer, "ase")]),
                              "bare_ms": 1e3 * median(times[(peer, "bare")]),
                              "params": peer_worker.info["params"], "model": peer_worker.info["model"]}
    log(f"  {model:6s} {name:11s} {dtype}: ase {row['ase_ms']:.1f} ms, ase chunked {row['ase_chunked_ms']:.1f} ms, "
        f"bare {row['bare_ms']:.1f} ms, "
        f"torchforce {row['torchforce_ms']:.1f} ms, pythonforce {row['pythonforce_ms']:.1f} ms "
        f"(bare beside them {row['bare_beside_torchforce_ms']:.1f}), "
        f"peak +{row['peak_mib']:.0f} MiB; "
        + ", ".join(f"{p} ase {v['ase_ms']:.1f} / bare {v['bare_ms']:.1f} ms" for p, v in row["peers"].items()))
    return row


def machine():
    model = "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    training = subprocess.run(["pgrep", "-fc", "eqff train"], capture_output=True, text=True).stdout.strip()
    return {"cpu": model, "cores": os.cpu_count(), "load_average": os.getloadavg(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "eqff_train_processes": training}


def tables(rows, info, command):
    lines = [f"Command: `{command}`", "",
             f"Machine: {info['cpu']}, {info['cores']} cores, load average {info['load_average'][0]:.1f} at the start "
             f"({info.get('load_average_end', [float('nan')])[0]:.1f} at the end), {info['eqff_train_processes']} "
             f"`eqff train` processes running beside it; {info['date']}; one torch thread per process. Median ms per "
             "energy+forces call; ratio = eqff / peer from interleaved calls (< 1: eqff faster).", ""]
    peers = sorted({p for r in rows for p in r["peers"]})
    header = "| system | atoms | dtype | model | ASE ms | bare ms |" + "".join(
        f" {p} ASE ms | {p} bare ms | ratio ASE | ratio bare |" for p in peers)
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:
        cells = [r["system"], str(r["atoms"]), r["dtype"], r["model"], f"{r['ase_ms']:.1f}", f"{r['bare_ms']:.1f}"]
        for p in peers:
            v = r["peers"].get(p)
            if v is None:
                cells += ["–"] * 4
            else:
                cells += [_ms(v["ase_ms"]), _ms(v["bare_ms"]), _ratio(r["ase_ms"], v["ase_ms"]),
                          _ratio(r["bare_ms"], v["bare_ms"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "TorchForce (OpenMM step, CPU platform) against the bare model evaluation measured in turn with "
              "it, peak memory per call (MiB above the resident set before the first call) and float32 force error "
              "against float64 with the same weights:", "",
              "| " + " | ".join(["system", "atoms", "dtype", "model", "TorchForce ms/step", "steps/s",
                                 "PythonForce ms/step", "bare ms", "TorchForce / bare", "PythonForce / bare",
                                 "eqff peak MiB"] + [f"{p} peak MiB" for p in peers]
                                + ["f32 max dF/max F", "f32 rms rel"]) + " |",
              "|" + "---|" * (13 + len(peers))]
    for r in rows:
        tf = r["torchforce_ms"]
        error = r["force_error"] or {}
        pf = r.get("pythonforce_ms", float("nan"))
        bare = r["bare_beside_torchforce_ms"]
        cells = [r["system"], str(r["atoms"]), r["dtype"], r["model"], _ms(tf), f"{1e3 / tf:.1f}" if tf == tf else "–",
                 _ms(pf), _ms(bare), _ratio(tf, bare), _ratio(pf, bare), f"{r['peak_mib']:.0f}"]
        cells += [f"{r['peers'][p]['peak_mib']:.0f}" if p in r["peers"] and "peak_mib" in r["peers"][p] else "–"
                  for p in peers]
        cells += [f"{error['max_rel']:.1e}" if "max_rel" in error else "–",
                  f"{error['rms_rel']:.1e}" if "rms_rel" in error else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    scaling = []
    for model in sorted({r["model"] for r in rows}):
        for dtype in sorted({r["dtype"] for r in rows}):
            pick = {r["system"]: r for r in rows if r["model"] == model and r["dtype"] == dtype}
            if "water_1536" in pick and "water_12288" in pick:
                a, b = pick["water_1536"], pick["water_12288"]
                per = lambda r, k: r.get(k, float("nan")) / r["atoms"]  # noqa: E731
                ratio = lambda k: _ratio(per(b, k), per(a, k))  # noqa: E731
                scaling.append(f"| {model} | {dtype} | {ratio('ase_ms')} | {ratio('ase_chunked_ms')} | "
                               f"{ratio('bare_ms')} | {ratio('torchforce_ms')} | "
                               f"{(b['peak_mib'] / b['atoms']) / (a['peak_mib'] / a['atoms']):.2f} |")
    if scaling:
        chunks = sorted({r["max_edges_per_chunk"] for r in rows if r.get("max_edges_per_chunk")})
        lines += ["", "Linear scaling: (time or peak memory per atom at 12,288 atoms) / (same at 1,536 atoms); "
                  "1.00 is exactly linear, the goal is 0.7–1.3:", "",
                  "| model | dtype | ASE (vesin list incl.) | ASE chunked (max_edges_per_chunk "
                  f"{', '.join(str(c) for c in chunks) or '–'}) | bare | TorchForce (torch list incl.) | peak memory |",
                  "|---|---|---|---|---|---|---|"] + scaling
    lines += ["", goals(rows)]
    described = {}
    for r in rows:
        entries = [(f"eqff {r['model']}", "default hyperparameters", r["params"])]
        entries += [(p, v["model"], v["params"]) for p, v in r["peers"].items()]
        for name, what, params in entries:
            described.setdefault((name, what), {}).setdefault(params, []).append(r["system"])
    parts = []
    for (name, what), counts in sorted(described.items()):
        numbers = " / ".join(f"{params:,} ({', '.join(sorted(set(systems)))})" for params, systems in counts.items())
        parts.append(f"{name}: {what}, {numbers} parameters")
    lines += ["", "Models (untrained; speed does not depend on the weights; parameter counts depend on the number "
              "of elements): " + "; ".join(parts) + "."]
    return "\n".join(lines)


GOAL_VS_MACE = {"segnn": 0.5, "egnn": 0.2, "schnet": 0.2}


def goals(rows):
    """The issue's goals, checked on these rows (speed parts only; force error per budget is
    accuracy_budget.py's)."""
    out = ["Goals (from the rows above):", "",
           "| goal | rows | met | worst |", "|---|---|---|---|"]
    for model, limit in GOAL_VS_MACE.items():
        for kind in ("bare", "ase"):
            ratios = [(r[f"{kind}_ms"] / r["peers"]["mace"][f"{kind}_ms"], f"{r['system']} {r['dtype']}") for r in rows
                      if r["model"] == model and "mace" in r["peers"] and r["peers"]["mace"][f"{kind}_ms"] == r["peers"]["mace"][f"{kind}_ms"]]
            if ratios:
                met = sum(ratio <= limit for ratio, _ in ratios)
                worst = max(ratios)
                out.append(f"| {model} {kind} time ≤ {limit}× MACE | {len(ratios)} | {met} | {worst[0]:.2f} ({worst[1]}) |")
    pick = {(r["model"], r["dtype"], r["system"]): r for r in rows}
    for key in ("ase_ms", "ase_chunked_ms", "bare_ms", "torchforce_ms", "peak_mib"):
        ratios = []
        for (model, dtype, system), b in pick.items():
            a = pick.get((model, dtype, "water_1536"))
            if system == "water_12288" and a is not None and b.get(key, float("nan")) == b.get(key, float("nan")) \
                    and a.get(key, float("nan")) == a.get(key, float("nan")):
                ratios.append(((b[key] / b["atoms"]) / (a[key] / a["atoms"]), f"{model} {dtype}"))
        if ratios:
            met = sum(0.7 <= ratio <= 1.3 for ratio, _ in ratios)
            worst = max(ratios, key=lambda item: abs(item[0] - 1.0))
            what = {"ase_ms": "time (ASE, vesin list)", "ase_chunked_ms": "time (ASE, vesin list, chunked)", "bare_ms": "time (bare)", "torchforce_ms": "time (TorchForce, torch list)",
                    "peak_mib": "peak memory"}[key]
            out.append(f"| {what} per atom at 12,288 / at 1,536 in 0.7–1.3 | {len(ratios)} | {met} | {worst[0]:.2f} ({worst[1]}) |")
    ratios = [(r["torchforce_ms"] / r["bare_beside_torchforce_ms"], f"{r['model']} {r['system']} {r['dtype']}") for r in rows
              if r["torchforce_ms"] == r["torchforce_ms"]]
    if ratios:
        worst = max(ratios)
        out.append(f"| TorchForce step ≤ 1.15× bare model | {len(ratios)} | {sum(x <= 1.15 for x, _ in ratios)} | "
                   f"{worst[0]:.2f} ({worst[1]}) |")
    errors = [(r["force_error"]["max_rel"], f"{r['model']} {r['system']}") for r in rows if r["force_error"]]
    if errors:
        worst = max(errors)
        out.append(f"| float32 forces within 1e-4 of float64 (max dF / max F) | {len(errors)} | "
                   f"{sum(x <= 1e-4 for x, _ in errors)} | {worst[0]:.1e} ({worst[1]}) |")
    return "\n".join(out)


def _ms(value):
    return "–" if value != value else f"{value:.1f}"


def _ratio(a, b):
    return "–" if (a != a or b != b) else f"{a / b:.2f}"


def write_section(path, title, body):
    """Replace (or append) the section between this harness's markers, keeping everything else."""
    begin, end = f"<!-- {title}: begin -->", f"<!-- {title}: end -->"
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as handle:
        handle.write(text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--models", nargs="+", default=["ace", "schnet", "egnn", "segnn"])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    parser.add_argument("--peers", nargs="*", default=["mace", "nequip"], choices=list(PEERS))
    parser.add_argument("--engines", nargs="+", default=["ase", "bare", "torchforce", "pythonforce"],
                        help="eqff's calls to time: ase, bare, ase_chunked (the memory-bounded ASE call), "
                        "torchforce, pythonforce (the peers run ase and bare)")
    parser.add_argument("--max-edges-per-chunk", type=int, default=16384,
                        help="edges per chunk of the ase_chunked engine (eqff/models/chunking.py)")
    parser.add_argument("--peer-kinds-large", nargs="+", default=["bare"], choices=["ase", "bare"],
                        help="what the peers run on structures over 5,000 atoms (a MACE call there takes minutes)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved blocks per configuration")
    parser.add_argument("--calls", type=int, default=0, help="calls per block (default: by structure size)")
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--skip", nargs="*", default=[], metavar="SYSTEM:NAME",
                        help="leave out a model or peer on one structure, e.g. water_12288:segnn")
    parser.add_argument("--float64-max-atoms", type=int, default=2000,
                        help="float64 only up to this many atoms (the float32 numbers carry the scaling)")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "speed.json"))
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="measure nothing: print (and --results: write) the tables of earlier --output files")
    parser.add_argument("--results", default=None, help="write the tables into this Markdown file (e.g. RESULTS.md)")
    args = parser.parse_args(argv)
    pairs = [tuple(s.split(":", 1)) for s in args.skip]
    args.skip_peer_systems = {p for p in pairs if p[1] in PEERS}
    args.skip_model_systems = {p for p in pairs if p[1] not in PEERS}
    return args


SIZES = {"ethanol": 9, "aspirin": 21, "water_192": 192, "water_1536": 1536, "water_12288": 12288}


def main(argv=None):
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "--worker":
        eqff_worker(json.loads(sys.argv[2]))
        return 0
    args = parse_args(argv)
    if args.merge:
        runs = [json.load(open(path)) for path in args.merge]
        rows = [row for run in runs for row in run["rows"]]
        info = dict(runs[0]["machine"])
        info["load_average_end"] = runs[-1]["machine"].get("load_average_end", [float("nan")])
        text = tables(rows, info, " ; ".join(run["command"] for run in runs))
        print(text)
        if args.results:
            write_section(args.results, "speed.py", "## Speed (benchmarks/speed.py)\n\n" + text)
        return 0
    command = "OMP_NUM_THREADS=1 python benchmarks/speed.py " + " ".join(sys.argv[1:])
    info = machine()
    log = lambda text: print(text, flush=True)  # noqa: E731
    log(f"{info}")
    rows = []
    for name in args.systems:
        for dtype in args.dtypes:
            if dtype == "float64" and SIZES[name] > args.float64_max_atoms:
                continue
            log(f"{name} {dtype}")
            rows += measure_system(name, dtype, args, log)
            with open(args.output, "w") as handle:
                json.dump({"machine": info, "command": command, "rows": rows}, handle, indent=1)
    info["load_average_end"] = os.getloadavg()
    with open(args.output, "w") as handle:
        json.dump({"machine": info, "command": command, "rows": rows}, handle, indent=1)
    text = tables(rows, info, command)
    print(text)
    if args.results:
        write_section(args.results, "speed.py", "## Speed (benchmarks/speed.py)\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

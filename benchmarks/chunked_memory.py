#!/usr/bin/env python
"""Memory-bounded evaluation (eqff/models/chunking.py): peak memory and time of one energy +
forces call with and without ``max_edges_per_chunk``, untrained default models, float32, one
torch thread, the water box of md_scripts/data repeated (1,536 atoms: 2x2x2; 12,288: 4x4x4).

    OMP_NUM_THREADS=1 python benchmarks/chunked_memory.py                                 # SEGNN, the issue's cases
    OMP_NUM_THREADS=1 python benchmarks/chunked_memory.py --cases segnn:water_1536:0 ace:water_1536:16384

A case is ``model:structure:max_edges_per_chunk`` (0: one piece). Each case runs in a fresh
process, which reports:
* ``peak_rss_mib``: the process's peak resident set during the calls minus its resident set
  just before the first call (model, graph and libraries loaded): what the call adds;
* ``peak_tensor_mib`` (``--tensor-peak``, one more call under the profiler): the peak of torch's
  CPU allocations above the call's start (eqff.memory.peak_bytes); it excludes the allocator's
  caching and the interpreter, and the profiler slows that call;
* ``seconds``: the calls' wall times (the first included: no warm-up, the calls take seconds).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WATER = os.path.join(ROOT, "md_scripts", "data", "water_192.xyz")
REPEATS = {"water_192": 1, "water_1536": 2, "water_12288": 4}
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "_peers"))
from protocol import rss_mib  # noqa: E402  (the resident set, as the peer benchmarks measure it)

DEFAULT_CASES = ["segnn:water_1536:0", "segnn:water_1536:16384", "segnn:water_1536:4096", "segnn:water_12288:16384"]


def worker(case: str, calls: int, tensor_peak: bool) -> dict:
    import ase.io
    import torch

    torch.set_num_threads(1)
    import eqff
    from eqff.data.frames import Frame
    from eqff.data.graph import frames_to_batch
    from eqff.memory import peak_bytes
    from eqff.models.chunking import set_max_edges_per_chunk
    from eqff.models.io import copy_potential

    kind, name, chunk = case.split(":")
    atoms = ase.io.read(WATER).repeat([REPEATS[name]] * 3)
    torch.manual_seed(0)
    model = copy_potential(eqff.build_model(kind, elements=["H", "O"], cutoff=5.0, dtype="float64"),
                           dtype=torch.float32).eval()
    set_max_edges_per_chunk(model, int(chunk))
    data = frames_to_batch([Frame.from_atoms(atoms, source=name)], 5.0, dtype=torch.float32)
    before = rss_mib()
    seconds = []
    for _ in range(calls):
        begin = time.perf_counter()
        out = model(data, compute_forces=True)
        seconds.append(time.perf_counter() - begin)
        del out
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 - before
    result = {"case": case, "kind": kind, "structure": name, "atoms": len(atoms),
              "edges": int(data["edge_index"].shape[1]), "max_edges_per_chunk": int(chunk),
              "seconds": seconds, "peak_rss_mib": peak_rss, "torch": torch.__version__}
    if tensor_peak:
        peak, _ = peak_bytes(lambda: model(data, compute_forces=True))
        result["peak_tensor_mib"] = peak / 2 ** 20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES, help="model:structure:max_edges_per_chunk")
    parser.add_argument("--calls", type=int, default=2, help="timed calls per case (the first included)")
    parser.add_argument("--tensor-peak", action="store_true", help="also the profiler's tensor peak (one more call)")
    parser.add_argument("--output", help="write the results as JSON here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("@@RESULT " + json.dumps(worker(args.worker, args.calls, args.tensor_peak)), flush=True)
        return
    results = []
    for case in args.cases:
        command = [sys.executable, os.path.abspath(__file__), "--worker", case, "--calls", str(args.calls)]
        if args.tensor_peak:
            command.append("--tensor-peak")
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        lines = [line for line in done.stdout.splitlines() if line.startswith("@@RESULT ")]
        if done.returncode != 0 or not lines:
            raise SystemExit(f"{case} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        results.append(json.loads(lines[-1][len("@@RESULT "):]))
        row = results[-1]
        print(f"{case}: {row['edges']} edges, seconds {[round(s, 2) for s in row['seconds']]}, "
              f"peak RSS +{row['peak_rss_mib']:.0f} MiB"
              + (f", tensor peak {row['peak_tensor_mib']:.0f} MiB" if "peak_tensor_mib" in row else ""), flush=True)
    if args.output:
        with open(args.output, "w") as handle:
            json.dump({"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()

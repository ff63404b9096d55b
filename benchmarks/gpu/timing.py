"""Energy + forces per model and structure, float32, on the run's device: median time of a call
on a prebuilt graph and its peak tensor memory (eqff.memory.peak_bytes). From 12,288 atoms on
(and on the quick run's box) also with chunked evaluation (max_edges_per_chunk); a one-piece
call whose memory, extrapolated from the structure before, would not fit is not tried."""
import time

import torch

from common import CUTOFF, MAIN_KINDS, Run, build, free_device_memory, is_out_of_memory, median_seconds, synchronize
from structures import batch, structure

FULL_STRUCTURES = ["ethanol", "aspirin", "water_192", "water_1536", "water_12288", "water_98304"]
QUICK_STRUCTURES = ["ethanol", "water_48"]
CHUNK_EDGES = {False: 2 ** 18, True: 100}  # full run (GPU), quick run (CPU)


def repeats_for(atoms: int, quick: bool, first_call_s: float) -> int:
    """Timed calls after the first (warm-up) one: fewer for large structures and slow calls."""
    if quick or first_call_s > 5.0:
        return 1
    return 10 if atoms < 1000 else 3


def device_memory(device: torch.device) -> float:
    if device.type == "cuda":
        return float(torch.cuda.get_device_properties(device).total_memory)
    return float("inf")


def measure(suite: Run, model, data, atoms: int, chunk: int):
    from eqff.memory import peak_bytes
    from eqff.models.chunking import set_max_edges_per_chunk

    set_max_edges_per_chunk(model, chunk)
    call = lambda: model(data, compute_forces=True)  # noqa: E731
    begin = time.perf_counter()
    call()  # warm-up: kernels, allocator
    synchronize(suite.device)
    first = time.perf_counter() - begin
    repeats = repeats_for(atoms, suite.quick, first)
    if suite.device.type == "cuda":  # CUDA's peak counter costs nothing: the timed calls give it
        peak, seconds = peak_bytes(lambda: median_seconds(call, suite.device, repeats, 0), "cuda")
    else:  # the CPU's (the profiler) slows the call it watches: one more call
        seconds = median_seconds(call, suite.device, repeats, 0)
        peak, _ = peak_bytes(call, "cpu")
    return {"ms": 1000.0 * seconds, "first_call_ms": 1000.0 * first, "peak_mib": peak / 2 ** 20,
            "us_per_atom": 1e6 * seconds / atoms}


def run(suite: Run):
    rows = []
    names = QUICK_STRUCTURES if suite.quick else FULL_STRUCTURES
    bytes_per_atom = {}  # kind -> one-piece peak per atom of the last structure measured
    for name in names:
        atoms = structure(name)
        needed_s = 30 if len(atoms) > 10000 else 5
        chunks = [0, CHUNK_EDGES[suite.quick]] if (len(atoms) >= 12288 or suite.quick) else [0]
        if not suite.has_time(needed_s):  # not even the neighbour list
            rows += [{"structure": name, "atoms": len(atoms), "kind": kind, "max_edges_per_chunk": chunk,
                      "skipped": "time budget"} for kind in MAIN_KINDS for chunk in chunks]
            continue
        data = batch(atoms, CUTOFF, torch.float32, suite.device)
        edges = int(data["edge_index"].shape[1])
        for kind in MAIN_KINDS:
            model = build(suite, kind, torch.float32)
            for chunk in chunks:
                row = {"structure": name, "atoms": len(atoms), "edges": edges, "kind": kind,
                       "max_edges_per_chunk": chunk}
                expected = bytes_per_atom.get(kind, 0.0) * len(atoms)
                if not suite.has_time(needed_s):
                    row["skipped"] = "time budget"
                elif chunk == 0 and expected > 0.8 * device_memory(suite.device):
                    row["skipped"] = f"one piece would need ~{expected / 2 ** 30:.0f} GiB"
                else:
                    try:
                        row.update(measure(suite, model, data, len(atoms), chunk))
                        if chunk == 0:
                            bytes_per_atom[kind] = row["peak_mib"] * 2 ** 20 / len(atoms)
                    except RuntimeError as error:
                        if not is_out_of_memory(error):
                            raise
                        row["skipped"] = "out of device memory"
                    free_device_memory(suite.device)
                rows.append(row)
                print(f"  timing {name} {kind} chunk={chunk}: {row.get('ms', row.get('skipped'))}", flush=True)
            del model
        del data
        free_device_memory(suite.device)
    return rows

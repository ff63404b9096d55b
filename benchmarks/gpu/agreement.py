"""GPU against CPU: the same weights and structure evaluated on both, energy, forces and (periodic)
stress compared as max |GPU - CPU| / max |CPU|. Thresholds: 1e-10 in float64 (round-off of a
different summation order), 1e-5 in float32. Also the chunked evaluation against the one-piece
one on the device (float64, the same threshold)."""
import torch

from common import ALL_KINDS, CUTOFF, Run, build, relative_difference
from structures import batch, structure

THRESHOLDS = {torch.float64: 1e-10, torch.float32: 1e-5}


def evaluate(model, atoms, dtype, device, stress):
    out = model(batch(atoms, CUTOFF, dtype, device), compute_forces=True, compute_stress=stress)
    return {key: out[key].detach().cpu() for key in ("energy", "forces", "stress") if key in out}


def compare(device_out, cpu_out, threshold):
    errors = {key: relative_difference(device_out[key], cpu_out[key]) for key in cpu_out}
    return {**{f"{key}_rel": value for key, value in errors.items()},
            "threshold": threshold, "pass": all(value <= threshold for value in errors.values())}


def run(suite: Run):
    from eqff.models.chunking import set_max_edges_per_chunk

    rows = []
    cpu = torch.device("cpu")
    # quick (the CPU check): the periodic box for two kinds only
    cases = [("ethanol", ALL_KINDS), ("water_48", ["schnet", "segnn"])] if suite.quick else \
        [("ethanol", ALL_KINDS), ("water_192", ALL_KINDS)]
    for name, kinds in cases:
        atoms = structure(name)
        stress = bool(atoms.pbc.all())
        for kind in kinds:
            if not suite.has_time(20):
                suite.notes.append(f"agreement: stopped before {kind} on {name} (time budget)")
                return rows
            for dtype in (torch.float64, torch.float32):
                cpu_model = build(suite, kind, dtype, cpu)
                on_cpu = evaluate(cpu_model, atoms, dtype, cpu, stress)
                model = cpu_model if suite.device == cpu else build(suite, kind, dtype)
                on_device = evaluate(model, atoms, dtype, suite.device, stress)
                rows.append({"structure": name, "kind": kind, "dtype": str(dtype).replace("torch.", ""),
                             "check": f"{suite.device.type} vs cpu", **compare(on_device, on_cpu, THRESHOLDS[dtype])})
                if dtype == torch.float64 and name != "ethanol":
                    set_max_edges_per_chunk(model, 97)  # small chunks, a short last one
                    chunked = evaluate(model, atoms, dtype, suite.device, stress)
                    rows.append({"structure": name, "kind": kind, "dtype": "float64",
                                 "check": f"chunked vs whole on {suite.device.type}",
                                 **compare(chunked, on_device, THRESHOLDS[dtype])})
    return rows

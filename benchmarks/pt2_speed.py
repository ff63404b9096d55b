"""Energy + forces per call: eager vs TorchScript export vs AOTInductor .pt2 export (issue 13).

Same model, same neighbour list (built once, outside the timing), one structure per call:
``eager`` is ``Potential.forward(data)``, ``torchscript`` the loaded TorchScript export's
``forward(data)``, ``pt2`` the compiled program itself (torch alone: positions, numbers,
edges, shifts, cell -> energy, atomic energies, forces, virial) and ``pt2 (eqff)`` the
``Pt2Potential`` wrapper the ASE calculator calls (adds the element and separation checks).
The .pt2 always computes the virial too; ``eager+stress`` is the eager model doing the same.

    OMP_NUM_THREADS=1 python benchmarks/pt2_speed.py --kinds ace,schnet,egnn --dtypes float32

Packages are cached in --workdir (compiling ace takes minutes). Prints one row per model,
dtype and structure: median milliseconds per call.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import ase.io
import torch

import eqff
from eqff.data import keys
from eqff.data.neighbors import neighbor_list
from eqff.export import export_potential, export_pt2, load_exported

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data")


def structures():
    ethanol = ase.io.read(os.path.join(DATA, "ethanol_20.xyz"), 0)
    water = ase.io.read(os.path.join(DATA, "water_192_3.xyz"), 0) * (2, 2, 2)
    return {"ethanol (9)": ethanol, f"water box ({len(water)}, periodic)": water}


def batch(atoms, cutoff, dtype):
    edge_index, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
    return {keys.POSITIONS: torch.tensor(atoms.positions, dtype=dtype),
            keys.ATOMIC_NUMBERS: torch.tensor(atoms.numbers, dtype=torch.long),
            keys.BATCH: torch.zeros(len(atoms), dtype=torch.long),
            keys.CELL: torch.tensor(atoms.cell.array, dtype=dtype).reshape(1, 3, 3),
            keys.PBC: torch.tensor(atoms.pbc).reshape(1, 3),
            keys.EDGE_INDEX: torch.tensor(edge_index, dtype=torch.long),
            keys.CELL_SHIFTS: torch.tensor(shifts, dtype=dtype)}


def median_ms(call, budget_s: float, warmup: int = 3, max_calls: int = 50) -> float:
    for _ in range(warmup):
        call()
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget_s and len(times) < max_calls):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="ace,schnet,egnn")
    parser.add_argument("--dtypes", default="float32")
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of timed calls per cell")
    parser.add_argument("--workdir", default="/tmp/eqff-pt2-speed")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'model':<8} {'dtype':<8} {'structure':<28} {'eager':>9} {'eager+stress':>13} {'torchscript':>12} "
          f"{'pt2':>9} {'pt2 (eqff)':>11}")
    for kind in args.kinds.split(","):
        for dtype_name in args.dtypes.split(","):
            dtype = getattr(torch, dtype_name)
            torch.manual_seed(0)
            model = eqff.build_model(kind, elements=["H", "C", "O"], cutoff=args.cutoff, dtype=dtype).eval()
            script_path = os.path.join(args.workdir, f"{kind}_{dtype_name}.pt")
            pt2_path = os.path.join(args.workdir, f"{kind}_{dtype_name}.pt2")
            export_potential(model, script_path)
            if not os.path.exists(pt2_path):  # cached: the model is seeded, so the same weights
                start = time.perf_counter()
                info = export_pt2(model, pt2_path)
                print(f"# compiled {pt2_path} in {time.perf_counter() - start:.0f} s (check {info['check_error']:.1e})")
            scripted, compiled = load_exported(script_path), load_exported(pt2_path)
            for name, atoms in structures().items():
                data = batch(atoms, args.cutoff, dtype)
                flat = (data[keys.POSITIONS], data[keys.ATOMIC_NUMBERS], data[keys.EDGE_INDEX],
                        data[keys.CELL_SHIFTS], data[keys.CELL][0])
                cells = [
                    median_ms(lambda: model(data, compute_forces=True), args.budget),
                    median_ms(lambda: model(data, compute_forces=True, compute_stress=True), args.budget),
                    median_ms(lambda: scripted(data, True, False, False), args.budget),
                    median_ms(lambda: compiled.runner(*flat), args.budget),
                    median_ms(lambda: compiled(data, compute_forces=True), args.budget),
                ]
                print(f"{kind:<8} {dtype_name:<8} {name:<28} {cells[0]:9.2f} {cells[1]:13.2f} {cells[2]:12.2f} "
                      f"{cells[3]:9.2f} {cells[4]:11.2f}", flush=True)


if __name__ == "__main__":
    main()

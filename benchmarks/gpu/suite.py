#!/usr/bin/env python
"""The GPU suite: what eqff does on a GPU, measured in one run and written to one JSON and one
Markdown file (gpu_suite.json, gpu_suite.md in --output).

    benchmarks/gpu/run.sh                          # on the GPU machine: unpacks the carried packages, then this
    python benchmarks/gpu/suite.py --device cpu --quick --output /tmp/gpu_suite   # the CPU check (tests/test_gpu_suite.py)

Sections, in order (each one's module says what it measures):
  agreement        GPU vs CPU, float64 (<= 1e-10) and float32 (<= 1e-5), every model kind; chunked vs whole
  timing           energy + forces per model (ace, schnet, egnn, segnn), ethanol .. water_98304, float32: ms, peak memory
  md               OpenMM CUDA platform, water, PythonForce (and TorchForce where openmmtorch imports): steps/s, ns/day
  training         structures/s of the default model's training on aspirin
  cuequivariance   cue's kernels against eqff's tensor products, where cue imports and runs

A section that fails is recorded with its traceback and the suite goes on; sections and
measurements that would overrun --budget-s (default 420 s: the run must end inside 8 minutes
with the unpacking) are skipped and say so. Exit status 0 when every section ran, 1 otherwise
(the files are written either way).
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
if ROOT not in sys.path:
    sys.path.insert(1, ROOT)

SECTIONS = ["agreement", "timing", "md", "training", "cuequivariance"]
# shares of the budget (of 420 s) kept for each section: time a section leaves unused goes to the next
SHARES = {"agreement": 70, "timing": 170, "md": 80, "training": 40, "cuequivariance": 60}


def source_hash() -> str:
    """SHA-256 (first 12 hex digits) of eqff's Python sources: ties the numbers to the code when
    the machine has no git history."""
    digest = hashlib.sha256()
    for folder, _, files in sorted(os.walk(os.path.join(ROOT, "eqff"))):
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, ROOT).encode())
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()[:12]


def environment(device) -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cpu_threads": torch.get_num_threads(), "eqff_sources": source_hash()}
    for package in ("e3nn", "numpy", "ase", "vesin", "openmm", "cuequivariance_torch"):
        try:
            module = __import__(package)
            info[package] = getattr(module, "__version__", "?")
        except Exception as error:  # a package that is missing is part of the record
            info[package] = f"missing ({type(error).__name__})"
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info["gpu"] = f"{properties.name}, {properties.total_memory / 2 ** 30:.0f} GiB, sm_{properties.major}{properties.minor}"
        info["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    else:
        info["cpu"] = platform.processor() or platform.machine()
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny models and structures: checks the suite, not the GPU")
    parser.add_argument("--output", default=os.path.join(HERE, "results"), help="folder for gpu_suite.json and .md")
    parser.add_argument("--budget-s", type=float, default=420.0, help="wall-time budget of all sections (s)")
    parser.add_argument("--sections", nargs="+", default=SECTIONS, choices=SECTIONS)
    args = parser.parse_args(argv)

    import torch

    from common import Run

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device; use --device cpu (with --quick for the check)")
    if args.quick:
        torch.set_num_threads(1)
    suite = Run(device=device, quick=args.quick, budget_s=args.budget_s)
    results = {"command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + (argv if argv is not None else sys.argv[1:])),
               "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "device": str(device), "quick": args.quick, "budget_s": args.budget_s,
               "environment": environment(device), "sections": {}, "notes": suite.notes}
    print(json.dumps(results["environment"]), flush=True)
    for name in args.sections:
        module = __import__({"cuequivariance": "cue_products"}.get(name, name))
        begin = time.perf_counter()
        later = args.sections[args.sections.index(name) + 1:]
        suite.reserved_s = args.budget_s * sum(SHARES[s] for s in later) / sum(SHARES.values())
        print(f"== {name} ({suite.left_s() - suite.reserved_s:.0f} s for it, {suite.left_s():.0f} s left)", flush=True)
        try:
            results["sections"][name] = module.run(suite)
        except Exception:
            results["sections"][name] = {"failed": traceback.format_exc()[-3000:]}
            print(results["sections"][name]["failed"], flush=True)
        suite.notes.append(f"{name}: {time.perf_counter() - begin:.1f} s")
        write(results, suite, args.output)  # after every section: a run stopped later keeps what it measured
    print(f"wrote {args.output}/gpu_suite.json and gpu_suite.md in {results['total_s']:.0f} s", flush=True)
    return 1 if any(isinstance(r, dict) for r in results["sections"].values()) else 0


def write(results: dict, suite, output: str) -> None:
    from report import markdown

    results["total_s"] = time.perf_counter() - suite.start
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, "gpu_suite.json"), "w") as handle:
        json.dump(results, handle, indent=1, default=str)
    with open(os.path.join(output, "gpu_suite.md"), "w") as handle:
        handle.write(markdown(results))


if __name__ == "__main__":
    sys.exit(main())

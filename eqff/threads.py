"""How many torch intra-op threads to use: the cores that are free when a run starts.

Why: torch's default is one thread per core. On a core that another process keeps busy, an
OpenMP thread spin-waits for a time slice it does not get, and every operator waits for it:
measured here (benchmarks/RESULTS.md, issue 12) an ace training step on aspirin took 105 ms
with 2 threads on 2 idle cores, 139 ms with 1 thread, and 433 ms with 2 threads when another
process kept one core busy (122 ms with 1 thread). So: all cores when they are idle, and one
thread fewer for each core that something else keeps busy.

An explicit choice always wins: a ``threads`` argument, or ``OMP_NUM_THREADS`` in the
environment (what torchrun and the benchmarks set), which torch has already applied.

Torch's threads belong to the process, so the deployed paths (the ASE calculator, the OpenMM
forces) decide once per process with ``deploy_threads``: the first of them that is built
without an explicit ``threads`` samples the cores, and later ones keep that choice.
"""
from __future__ import annotations

import os
import time
from typing import Dict, List, Optional, Tuple


def cpu_description() -> str:
    """The CPU model and the cores this process may use, e.g. "AMD EPYC, 2 cores": run folders keep
    it, so a model card says where its minutes were spent."""
    name = ""
    try:
        with open("/proc/cpuinfo") as handle:
            name = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:  # not Linux
        pass
    if not name:
        import platform

        name = platform.processor() or platform.machine() or "unknown CPU"
    cores = len(allowed_cpus())
    return f"{name}, {cores} core{'s' if cores != 1 else ''}"


def allowed_cpus() -> List[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def _cpu_times() -> Dict[int, Tuple[float, float]]:
    """{cpu: (busy jiffies, total jiffies)} from /proc/stat; {} where there is none."""
    times = {}
    try:
        with open("/proc/stat") as handle:
            for line in handle:
                name, *values = line.split()
                if not name.startswith("cpu") or name == "cpu":
                    continue
                numbers = [float(v) for v in values[:8]]
                idle = numbers[3] + numbers[4]  # idle + iowait
                times[int(name[3:])] = (sum(numbers) - idle, sum(numbers))
    except (OSError, ValueError, IndexError):
        return {}
    return times


def busy_cores(before: Dict[int, Tuple[float, float]], after: Dict[int, Tuple[float, float]],
               cpus: List[int], threshold: float = 0.5) -> int:
    """How many of ``cpus`` were busy more than ``threshold`` of the time between two samples."""
    count = 0
    for cpu in cpus:
        if cpu in before and cpu in after:
            total = after[cpu][1] - before[cpu][1]
            if total > 0 and (after[cpu][0] - before[cpu][0]) / total > threshold:
                count += 1
    return count


def free_cores(sample_s: float = 0.3) -> Tuple[int, int]:
    """(cores this process may use, of them busy with other work), sampled over ``sample_s``."""
    cpus = allowed_cpus()
    before = _cpu_times()
    if not before:
        return len(cpus), 0
    time.sleep(sample_s)
    return len(cpus), busy_cores(before, _cpu_times(), cpus)


def choose_threads(threads: Optional[int] = None) -> Tuple[int, str]:
    """Set torch's intra-op threads and say why: ``threads`` if given, else torch's setting when
    ``OMP_NUM_THREADS`` is set, else the cores not busy with other work (at least one)."""
    import torch

    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
        return threads, "as asked"
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads(), f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    cores, busy = free_cores()
    chosen = max(1, cores - busy)
    torch.set_num_threads(chosen)
    return chosen, f"{cores} cores, {busy} busy with other work"


_deploy_choice: Optional[Tuple[int, str]] = None  # set by the first deploy_threads() call of the process


def deploy_threads(threads: Optional[int] = None) -> Tuple[int, str]:
    """``choose_threads`` for the calculator and the OpenMM forces: an explicit ``threads`` is
    applied at once; otherwise the process's first call decides and later calls keep it."""
    global _deploy_choice
    if threads is not None or _deploy_choice is None:
        _deploy_choice = choose_threads(threads)
    return _deploy_choice

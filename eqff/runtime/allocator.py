"""Keep freed memory in the process, so that large tensors do not fault in fresh pages every call.

Why: glibc's malloc serves every allocation above its mmap threshold (128 KiB at first, at most
32 MiB) with fresh pages from ``mmap`` and hands them back to the kernel on ``free``. An energy +
forces call on a large system allocates and frees the same large tensors every time, so every
call faults in and zeroes its whole working set again. Measured here (SchNet, float32, one
thread): water 12,288 atoms, 1.8 million page faults and 3.6 s of kernel time in a 6.0 s call;
water 1,536 atoms, 45,000 faults in a 460 ms call. That kernel work, not the model, was what
made per-atom time grow 2x from 1,536 to 12,288 atoms (benchmarks/RESULTS.md, issue 16).

With ``mallopt(M_MMAP_MAX, 0)`` (no mmap'ed allocations) and ``mallopt(M_TRIM_THRESHOLD, -1)``
(never give the heap back), the next call reuses the same pages: 2.5 s (12,288 atoms) and 308 ms
(1,536) for the calls above, and per-atom time at 12,288 atoms within 4 % of that at 1,536.

The costs, measured: the process keeps its peak memory until it exits (MD and training reach
that peak every step anyway), and the heap's peak is higher than glibc's mappings': on 12,288
waters +5.5 GiB instead of +4.4 (SchNet), +8.3 instead of +6.6 (EGNN); on 1,536 the same within
the noise, flat over many calls. Chunked evaluation (``max_edges_per_chunk``) is where it goes
wrong: torch allocates with 64-byte alignment, and a same-size request cannot reuse a freed
aligned block of the heap once its neighbours are taken, so chunk after chunk takes new memory
(SEGNN, 12,288 waters in chunks: +21.6 GiB instead of +4.3). Memory-bounded evaluation therefore
leaves malloc as it is.

eqff applies this once per process in its deploy paths (the ASE calculator, the OpenMM forces)
unless they are asked for chunks, and in training, as it chooses torch's threads there
(eqff/threads.py). ``EQFF_KEEP_FREED_MEMORY=0`` in the environment leaves malloc as it is.
Linux with glibc only; elsewhere nothing is changed.
"""
from __future__ import annotations

import ctypes
import os
import sys
import warnings
from typing import Optional

# glibc's <malloc.h> parameter numbers
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
OPT_OUT = "EQFF_KEEP_FREED_MEMORY"

_applied: Optional[bool] = None  # the process's answer, decided by the first call


def keep_freed_memory(bounded: bool = False) -> bool:
    """Tell glibc's malloc to keep freed memory (module docstring); returns whether it is kept in
    this process. The first call that is not ``bounded`` decides for the process. ``bounded``:
    the caller evaluates in chunks to bound its memory, so nothing is changed (and a warning
    says so if an earlier call already changed malloc)."""
    global _applied
    if bounded:
        if _applied:
            warnings.warn(f"eqff: freed memory is kept in this process (an earlier calculator or force without "
                          f"chunks asked for it), so chunked evaluation may take more memory than it needs; set "
                          f"{OPT_OUT}=0 in the environment to bound it (eqff/runtime/allocator.py)", stacklevel=3)
        return bool(_applied)
    if _applied is None:
        _applied = _apply()
    return _applied


def freed_memory_kept() -> bool:
    """Whether this process keeps freed memory (changes nothing)."""
    return bool(_applied)


def _apply() -> bool:
    if os.environ.get(OPT_OUT, "1").strip() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):  # not glibc (musl's mallopt does nothing)
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, -1) == 1

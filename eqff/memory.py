"""Peak memory of one call: what the allocator hands out, not a timing.

On a GPU, CUDA's caching allocator counts it (``torch.cuda.max_memory_allocated``). On the CPU
torch has no such counter, so the call runs under ``torch.profiler`` with ``profile_memory``
and the allocation and free events of the CPU allocator are added up in time order: the
largest running total is the peak. Both count tensor storage only (not the interpreter, the
libraries or allocator caching), above what was allocated when the call began.
"""
from typing import Any, Callable, Tuple

import torch


def peak_bytes(function: Callable[[], Any], device: str = "cpu") -> Tuple[int, Any]:
    """(bytes of tensor memory at the peak of ``function()`` above its start, its result)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        result = function()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - start, result
    if device.type != "cpu":
        raise ValueError(f"peak_bytes measures cpu and cuda devices, not {device.type!r}")
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        result = function()
    changes = sorted((event.start_ns(), event.nbytes()) for event in profiler.profiler.kineto_results.events()
                     if event.name() == "[memory]" and event.device_type() == DeviceType.CPU)
    total = peak = 0
    for _, change in changes:
        total += change
        peak = max(peak, total)
    return peak, result

"""What every section of the GPU suite shares: the run's settings and time budget, models built
the same way everywhere, timing with device synchronisation, and relative errors."""
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List

import torch

MAIN_KINDS = ["ace", "schnet", "egnn", "segnn"]
ALL_KINDS = ["ace", "schnet", "egnn", "segnn", "pointconv", "lifted"]
# --quick: narrow models, so the CPU check of the suite runs in seconds
QUICK_HYPERPARAMETERS = {
    "ace": {"features": 8, "radial_features": 16}, "schnet": {"features": 16}, "egnn": {"features": 16},
    "segnn": {"features": 8, "radial_features": 16}, "pointconv": {"features": 16, "kernel_features": 16},
    "lifted": {"features": 8, "num_orientations": 14},
}
CUTOFF = 5.0


@dataclass
class Run:
    """The settings of one suite run and its clock."""

    device: torch.device
    quick: bool
    budget_s: float
    start: float = field(default_factory=time.perf_counter)
    notes: List[str] = field(default_factory=list)
    reserved_s: float = 0.0  # kept for the sections still to come

    def left_s(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)

    def has_time(self, needed_s: float) -> bool:
        """Whether a step of ``needed_s`` fits in what the current section may use."""
        return self.left_s() - self.reserved_s > needed_s

    def hyperparameters(self, kind: str) -> Dict:
        return QUICK_HYPERPARAMETERS.get(kind, {}) if self.quick else {}


ELEMENTS = [1, 6, 8]  # H, C, O: every structure of the suite, so one model per kind serves all
_models: Dict[tuple, torch.nn.Module] = {}


def build(run: Run, kind: str, dtype: torch.dtype, device=None):
    """An untrained potential of ``kind`` for H, C, O with seeded weights: built in float64
    (exact constants), copied to ``dtype``, on ``device`` (default: the run's), evaluated in
    one piece. Built once per run and then shared (e3nn's code generation makes a SEGNN take
    seconds to build)."""
    import eqff
    from eqff.models.chunking import set_max_edges_per_chunk
    from eqff.models.io import copy_potential

    device = torch.device(device if device is not None else run.device)
    key = (kind, dtype, str(device))
    if key not in _models:
        if (kind, torch.float64, "cpu") not in _models:
            torch.manual_seed(0)
            _models[kind, torch.float64, "cpu"] = eqff.build_model(kind, elements=ELEMENTS, cutoff=CUTOFF,
                                                                   dtype="float64", **run.hyperparameters(kind)).eval()
        reference = _models[kind, torch.float64, "cpu"]
        model = reference if dtype == torch.float64 else copy_potential(reference, dtype=dtype)
        _models[key] = (model if device.type == "cpu" else copy_potential(model).to(device)).eval()
    return set_max_edges_per_chunk(_models[key], 0)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(call: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> float:
    """Median wall time of ``call()`` after ``warmup`` calls, the device synchronised around each."""
    for _ in range(warmup):
        call()
    synchronize(device)
    seconds = []
    for _ in range(repeats):
        begin = time.perf_counter()
        call()
        synchronize(device)
        seconds.append(time.perf_counter() - begin)
    return statistics.median(seconds)


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (0 when both vanish)."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    scale = float(b.abs().max()) if b.numel() else 0.0
    difference = float((a - b).abs().max()) if b.numel() else 0.0
    return difference / scale if scale > 0 else difference


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


def free_device_memory(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()

"""Stepping OpenMM with eqff's forces on the CPU: TorchScript's executor optimisation off.

    with eqff.openmm.fast_steps(simulation):
        simulation.step(10000)

Why: inside a TorchForce, TorchScript's profiling executor differentiates the model with its own
symbolic gradients, which write the activations' derivatives as chains of small elementwise ops
where eager autograd calls one fused kernel (benchmarks/PROFILE.md). With the optimisation off
for the stepping thread (``torch.jit.optimized_execution(False)``, a public torch switch) the
force runs the plain graph with autograd's kernels: measured on 192 and 1,536 waters (SchNet,
EGNN, float32, CPU platform, one thread), a TorchForce step took 0.93-1.04x the bare model's
energy + forces call instead of 1.19-1.56x (benchmarks/RESULTS.md, "TorchForce at the bare
model's cost"). The numbers are the same (tests/test_openmm.py).

The switch belongs to the thread and lasts for the ``with`` block only, so other TorchScript
code of the process keeps its setting. On GPU platforms (CUDA, OpenCL, HIP) nothing is changed:
there TorchScript's fusers may pay, and this has not been measured. ``torch_force`` hands
OpenMM a frozen module, so the Context may also be built inside the block.
"""
from __future__ import annotations

import contextlib
from typing import Any, ContextManager

CPU_PLATFORMS = ("CPU", "Reference")


def platform_name(where: Any) -> str:
    """The platform name of an ``openmm.app.Simulation``, ``openmm.Context`` or ``openmm.Platform``,
    or ``where`` itself when it is a name."""
    import openmm

    if isinstance(where, str):
        return where
    if isinstance(where, openmm.Platform):
        return where.getName()
    context = getattr(where, "context", where)  # a Simulation holds its Context
    if isinstance(context, openmm.Context):
        return context.getPlatform().getName()
    raise TypeError(f"fast_steps needs a Simulation, Context, Platform or platform name, got {type(where).__name__}")


def fast_steps(where: Any) -> ContextManager:
    """A ``with`` block for ``simulation.step``: TorchScript's executor optimisation off on the
    CPU and Reference platforms (module docstring), nothing changed on others."""
    import torch

    # a torch without TorchScript's executor (deprecated since 2.10) has nothing to switch off
    if platform_name(where) in CPU_PLATFORMS and hasattr(torch.jit, "optimized_execution"):
        return torch.jit.optimized_execution(False)
    return contextlib.nullcontext()

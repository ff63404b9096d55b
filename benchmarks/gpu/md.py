"""OpenMM molecular dynamics of the water box through eqff: steps per second and ns/day
(LangevinMiddleIntegrator, 0.5 fs, 300 K) on OpenMM's CUDA platform (the CPU platform on a CPU
run), the model in float32 on the run's device through ``openmm.PythonForce``, and through
``openmmtorch.TorchForce`` where openmmtorch imports (it needs torch 2.9: on the GPU machine's
newer torch it does not; the row says why)."""
import time

import torch

from common import Run, build
from structures import structure

TIMESTEP_FS = 0.5


def platform_for(suite: Run):
    """(OpenMM platform name, its properties, a note on what was available): CUDA on a GPU run
    where its plugin loads, else CPU (the model runs on the run's device either way)."""
    import openmm

    names = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
    failures = [f for f in openmm.Platform.getPluginLoadFailures() if "OpenCL" not in f]
    note = f"platforms: {', '.join(names)}" + (f"; plugin load failures: {' | '.join(failures)[:600]}" if failures else "")
    if suite.device.type == "cuda" and "CUDA" in names:
        return "CUDA", {"DeviceIndex": str(suite.device.index or 0), "Precision": "mixed"}, note
    if suite.device.type == "cuda":  # the model still runs on the GPU; OpenMM integrates on the CPU
        return "CPU", {}, note + "; no CUDA platform: OpenMM's CPU platform, the model on the GPU"
    return "CPU", {"Threads": "1"}, note


def steps_per_second(simulation, seconds: float, warmup: int) -> float:
    simulation.step(warmup)
    steps, begin = 0, time.perf_counter()
    while time.perf_counter() - begin < seconds:
        simulation.step(5)
        steps += 5
    return steps / (time.perf_counter() - begin)


def run(suite: Run):
    from eqff.calculators.openmm_forces import import_openmmtorch

    platform, properties, note = platform_for(suite)
    rows = [{"note": note}]
    try:
        import_openmmtorch()
        implementations = ["pythonforce", "torchforce"]
    except ImportError as error:
        implementations = ["pythonforce"]
        rows.append({"implementation": "torchforce", "skipped": str(error)[:300]})
    cases = [("schnet", "water_48")] if suite.quick else [
        (kind, name) for name in ("water_192", "water_1536") for kind in ("ace", "schnet", "segnn")]
    for kind, name in cases:
        atoms = structure(name)
        model = build(suite, kind, torch.float32, device="cpu")
        for implementation in implementations:
            row = {"kind": kind, "structure": name, "atoms": len(atoms), "implementation": implementation}
            if not suite.has_time(40):
                rows.append({**row, "skipped": "time budget"})
                continue
            try:
                rate = simulate(suite, model, atoms, implementation, platform, properties)
            except Exception as error:  # a platform that fails at its first Context: the rest on the CPU platform
                rows.append({**row, "platform": platform, "error": f"{type(error).__name__}: {str(error)[:300]}"})
                if platform == "CPU":
                    continue
                platform, properties = "CPU", {}
                rate = simulate(suite, model, atoms, implementation, platform, properties)
            rows.append({**row, "platform": platform, "steps_per_s": rate,
                         "ns_per_day": rate * TIMESTEP_FS * 86400 / 1e6})
            print(f"  md {kind} {name} {implementation} on {platform}: {rate:.2f} steps/s", flush=True)
    return rows


def simulate(suite: Run, model, atoms, implementation: str, platform: str, properties: dict) -> float:
    """Steps per second of Langevin MD of ``atoms`` with ``model`` as the System's only force."""
    import openmm
    from openmm import unit

    import eqff.openmm

    options = {"device": str(suite.device)} if implementation == "pythonforce" else {}
    setup = eqff.openmm.system_from_atoms(atoms, model, implementation=implementation, molecules=False, **options)
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, TIMESTEP_FS * unit.femtosecond)
    simulation = setup.simulation(integrator, platform=platform, properties=properties)
    return steps_per_second(simulation, 0.5 if suite.quick else 8.0, 2 if suite.quick else 10)

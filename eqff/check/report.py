"""Validate a potential: symmetry, finite differences, cutoff smoothness, eager vs exported,
NVE energy drift and NVT stability; a Markdown report with PNG plots; pass/fail thresholds."""
from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import ase.io
import numpy as np
import torch
from ase import Atoms

from eqff import testing
from eqff.calculators.ase import EqffCalculator
from eqff.check import md
from eqff.check.plots import plot_cutoff_scan, plot_nve, plot_nvt
from eqff.data import keys
from eqff.errors import EqffError
from eqff.export import export_potential
from eqff.models.io import copy_potential
from eqff.models.registry import build_from_config
from eqff.predict import predict
from eqff.runtime import load_model

# Thresholds, printed with every report. Symmetry and finite differences are measured in
# float64, where a correct model is exact to round-off.
THRESHOLDS = {
    "symmetry": 1e-9,  # relative
    "finite_difference": 1e-5,  # relative to max |F|
    # |E(rc - d) - E(rc + d)| at d = 1e-5 Å, float64: a discontinuity shows as a jump that does not
    # shrink with d; a smooth envelope gives d^3 (energy) and d^2 (force), far below these
    "cutoff_energy_eV": 1e-6,
    "cutoff_force_eV_per_A": 1e-4,
    "export_agreement": 1e-5,  # relative, same dtype
    "nve_drift_meV_per_atom_per_ps": 0.5,
    "nvt_max_force_eV_per_A": 50.0,
    "nvt_max_bond_stretch": 1.6,
}


@dataclass
class CheckLine:
    name: str
    value: float
    threshold: float
    unit: str = ""
    detail: str = ""
    completed: bool = True  # False when the check itself had to stop (an MD run blew up)

    @property
    def passed(self) -> bool:
        return bool(self.completed and np.isfinite(self.value) and self.value <= self.threshold)


@dataclass
class CheckReport:
    model: str
    structure: str
    lines: List[CheckLine] = field(default_factory=list)
    plots: List[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(line.passed for line in self.lines)

    def markdown(self) -> str:
        rows = [f"# eqff check: {os.path.basename(self.model)}", "",
                f"- model: `{self.model}`", f"- structure: {self.structure}",
                f"- result: **{'PASS' if self.passed else 'FAIL'}** ({time.strftime('%Y-%m-%d')}, {self.seconds:.0f} s)", "",
                "| check | value | threshold | result | detail |", "|---|---|---|---|---|"]
        for line in self.lines:
            rows.append(f"| {line.name} | {line.value:.3g} {line.unit} | {line.threshold:.3g} {line.unit} | "
                        f"{'pass' if line.passed else '**FAIL**'} | {line.detail} |")
        rows.append("")
        for plot in self.plots:
            rows.append(f"![{plot}]({plot})")
        return "\n".join(rows) + "\n"

    def text(self) -> str:
        width = max(len(line.name) for line in self.lines)
        return "\n".join(f"{'PASS' if l.passed else 'FAIL'}  {l.name:<{width}}  {l.value:.3g} {l.unit} "
                         f"(threshold {l.threshold:.3g}) {l.detail}" for l in self.lines)


def load_both(path: str, workdir: str) -> Tuple[torch.nn.Module, torch.nn.Module, Optional[dict]]:
    """(eager Potential, exported module, example structure) from a checkpoint or a TorchScript export."""
    loaded = load_model(path)
    if loaded.format == "pt2":
        source = (loaded.metadata or {}).get("source_checkpoint") or "the checkpoint it was exported from"
        raise EqffError(f"{path}: a .pt2 package holds compiled code, not the eager model the check compares it "
                        f"with; run `eqff check` on {source} (it checks the TorchScript export of it)")
    if loaded.format == "torchscript":
        exported = loaded.module
        info = loaded.metadata
        eager = build_from_config(info["model_config"], dtype=info["dtype"])
        state = {k[len("potential."):]: v for k, v in exported.state_dict().items() if k.startswith("potential.")}
        missing, unexpected = eager.load_state_dict(state, strict=False)
        buffers = dict(eager.named_buffers())  # TorchScript also saves non-persistent buffers
        if [k for k in unexpected if k not in buffers] or [k for k in missing if "._w3j_" not in k]:
            raise EqffError(f"{path}: the exported weights do not match its model config")
        return eager, exported, loaded.example_structure
    eager = loaded.module.potential
    exported_path = os.path.join(workdir, "exported.pt")
    export_potential(eager, exported_path)
    return eager, load_model(exported_path).module, loaded.example_structure


def check_structure(path: Optional[str], example: Optional[dict], model: str) -> Tuple[Atoms, str]:
    """The structure a check runs on: ``path`` (its first frame), else the model's stored example."""
    if path:
        return ase.io.read(path, 0), path
    if example:
        atoms = Atoms(numbers=example["numbers"], positions=example["positions"], cell=example["cell"], pbc=example["pbc"])
        return atoms, "example structure stored in the model (a validation frame)"
    raise EqffError(f"{model} stores no example structure; pass --structure FILE")


def _order_text(order: float, jump: float) -> str:
    # a jump at float64 round-off (or exactly 0) has no measurable order: the fit would be noise
    if not math.isfinite(order) or jump < 1e-13:
        return "the jump is at float64 round-off (no order measurable)"
    return f"the jump shrinks as d^{order:.1f}"


def run_check(model: str, structure: Optional[str] = None, output: str = "check", nve_ps: float = 2.0,
              nvt_ps: float = 1.0, temperatures: Tuple[float, ...] = (300.0, 600.0), seed: int = 0) -> CheckReport:
    start = time.time()
    os.makedirs(output, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        eager, exported, example = load_both(model, workdir)
        atoms, described = check_structure(structure, example, model)
        report = CheckReport(model, described)
        eager64 = copy_potential(eager, dtype=torch.float64)

        symmetry = testing.check_euclidean_symmetry(eager64, atoms, tolerance=THRESHOLDS["symmetry"])
        report.lines.append(CheckLine("rotation/reflection/translation/permutation (float64)", symmetry.error,
                                      THRESHOLDS["symmetry"], "rel", "energy and forces"))
        fd = testing.check_forces_finite_difference(eager64, atoms, tolerance=THRESHOLDS["finite_difference"])
        report.lines.append(CheckLine("forces vs finite differences (float64)", fd.error, THRESHOLDS["finite_difference"], "rel"))
        if atoms.pbc.all():
            sd = testing.check_stress_finite_difference(eager64, atoms, tolerance=THRESHOLDS["finite_difference"])
            report.lines.append(CheckLine("stress vs finite differences (float64)", sd.error, THRESHOLDS["finite_difference"], "rel"))

        jump_e, jump_f, order = _cutoff_scan(eager64, sorted(set(int(z) for z in atoms.numbers)), output)
        report.plots.append("cutoff.png")
        report.lines.append(CheckLine("energy jump at the cutoff", jump_e, THRESHOLDS["cutoff_energy_eV"], "eV",
                                      "element pairs at rc ± 1e-5 Å; " + _order_text(order[0], jump_e)))
        report.lines.append(CheckLine("force jump at the cutoff", jump_f, THRESHOLDS["cutoff_force_eV_per_A"], "eV/Å",
                                      _order_text(order[1], jump_f)))

        a = predict(eager, [atoms], compute_stress=bool(atoms.pbc.all()))[0]
        b = predict(exported, [atoms], compute_stress=bool(atoms.pbc.all()))[0]
        agreement = max(abs(float(a[keys.ENERGY] - b[keys.ENERGY])) / max(abs(float(a[keys.ENERGY])), 1.0),
                        float(np.abs(a[keys.FORCES] - b[keys.FORCES]).max()) / max(float(np.abs(a[keys.FORCES]).max()), 1e-12))
        report.lines.append(CheckLine("eager vs exported TorchScript", agreement, THRESHOLDS["export_agreement"], "rel",
                                      f"dtype {next(eager.parameters()).dtype}".replace("torch.", "")))

        calculator = EqffCalculator(eager, dtype="float64")
        nve = md.nve_drift(atoms, calculator, picoseconds=nve_ps, seed=seed)
        plot_nve(nve, os.path.join(output, "nve.png"))
        report.plots.append("nve.png")
        report.lines.append(CheckLine("NVE energy drift", nve.drift_meV_per_atom_per_ps, THRESHOLDS["nve_drift_meV_per_atom_per_ps"],
                                      "meV/atom/ps", f"{nve_ps} ps, dt 0.5 fs, from 300 K; fluctuation "
                                      f"{nve.fluctuation_meV_per_atom:.3f} meV/atom; {nve.steps_per_second:.0f} steps/s"))
        nvt_runs = []
        for temperature in temperatures:
            run = md.nvt_stability(atoms, EqffCalculator(eager), temperature,
                                   picoseconds=nvt_ps, seed=seed, max_force=THRESHOLDS["nvt_max_force_eV_per_A"],
                                   max_stretch=THRESHOLDS["nvt_max_bond_stretch"])
            nvt_runs.append(run)
            detail = f"{nvt_ps} ps Langevin; max bond stretch {run.max_bond_stretch:.2f}, closest pair {run.min_distance_A:.2f} Å"
            if not run.completed:
                detail += f"; STOPPED: {run.reason}"
            report.lines.append(CheckLine(f"NVT {temperature:.0f} K stability (largest force)", run.max_force_eV_per_A,
                                          THRESHOLDS["nvt_max_force_eV_per_A"], "eV/Å", detail, completed=run.completed))
        plot_nvt(nvt_runs, os.path.join(output, "nvt.png"))
        report.plots.append("nvt.png")
    report.seconds = time.time() - start
    with open(os.path.join(output, "report.md"), "w") as handle:
        handle.write(report.markdown())
    return report


def _cutoff_scan(potential, numbers: List[int], output: str) -> Tuple[float, float, Tuple[float, float]]:
    """Energy and force of each element pair across the cutoff (plotted); returns the worst
    jumps |E(rc - d) - E(rc + d)|, |F(rc - d) - F(rc + d)| at d = 1e-5 Å and the order with which
    they shrink between d = 1e-4 and 1e-5 (3 and 2 for the polynomial envelope)."""
    rc = float(potential.cutoff)
    distances = np.concatenate([np.linspace(0.5 * rc, rc - 0.05, 40), np.linspace(rc - 0.05, rc + 0.05, 41),
                                np.linspace(rc + 0.05, rc + 0.5, 10)])
    scans = {}
    jumps = {1e-4: [0.0, 0.0], 1e-5: [0.0, 0.0]}
    pairs = [(a, b) for k, a in enumerate(numbers) for b in numbers[k:]]
    dimer = lambda a, b, r: Atoms(numbers=[a, b], positions=[[0, 0, 0], [r, 0, 0]])
    for a, b in pairs:
        results = predict(potential, [dimer(a, b, r) for r in distances], batch_size=len(distances))
        energies = np.array([float(r[keys.ENERGY]) for r in results])
        forces = np.array([float(r[keys.FORCES][1, 0]) for r in results])
        scans[(a, b)] = (energies - energies[-1], forces)
        for d in jumps:
            inside, outside = predict(potential, [dimer(a, b, rc - d), dimer(a, b, rc + d)])
            jumps[d][0] = max(jumps[d][0], abs(float(inside[keys.ENERGY] - outside[keys.ENERGY])))
            jumps[d][1] = max(jumps[d][1], float(np.abs(inside[keys.FORCES] - outside[keys.FORCES]).max()))
    plot_cutoff_scan(distances, scans, rc, os.path.join(output, "cutoff.png"))
    order = tuple(float(np.log10(max(jumps[1e-4][k], 1e-300) / max(jumps[1e-5][k], 1e-300))) for k in (0, 1))
    return jumps[1e-5][0], jumps[1e-5][1], order

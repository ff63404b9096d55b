"""TorchScript-free export: ``torch.export`` + AOTInductor, one ``.pt2`` package per model.

TorchScript is deprecated from torch 2.10. A ``.pt2`` holds the potential compiled ahead of
time (C++ kernels in a shared library, weights inside it) and runs with torch alone, no eqff,
e3nn or Python model code; the forces are in the compiled program. How it is made:

1. an export copy of the potential: e3nn built with ``jit_mode="eager"`` (its TorchScript
   spherical harmonics would fix the number of edges), and ace's neighbour table made
   traceable (``_TraceableSlots``: the table width, the most neighbours of any atom, becomes a
   data-dependent size inside the program instead of a Python ``int``);
2. ``make_fx(tracing_mode="symbolic")`` of ``EnergyForcesVirial``: ``torch.autograd.grad``
   is traced into plain aten ops, so forces and the virial are part of the graph (NequIP's
   recipe); duck shaping is off so that no atom or edge count is tied to a weight shape;
3. ``torch.export`` of that graph with dynamic numbers of atoms and of edges (each >= 2; the
   loader pads smaller structures with two far-away ghost atoms);
4. ``torch._inductor.aoti_compile_and_package``, then the loaded package is checked against
   the eager model on two structures of different sizes, one periodic.

The program, for one structure (Å, eV, in the export's dtype; neighbour list by the caller)::

    runner = torch._inductor.aoti_load_package("model.pt2")
    energy, atomic_energies, forces, virial = runner(positions, atomic_numbers, edge_index,
                                                     cell_shifts, cell)
    # positions [N,3], atomic_numbers [N] int64, edge_index [2,E] int64 (receiver i, sender j),
    # cell_shifts [E,3] (r_ij = x_j - x_i + shift @ cell), cell [3,3] (zeros if not periodic)
    # -> energy [], atomic_energies [N], forces [N,3], virial [3,3] (stress = -virial / volume)

Periodic and non-periodic structures share this one signature (the cell is an input; the
virial is always computed, it costs little). Elements the model lacks give a NaN energy.
``runner.get_metadata()["eqff_metadata.json"]`` (also ``extra/eqff_metadata.json`` in the
archive) holds the same metadata as a TorchScript export. ``load_pt2`` wraps the program as a
``Pt2Potential`` with the interface of a loaded TorchScript export (``forward(data)``,
``compute``, ``compute_openmm``), which the ASE calculator and ``openmm.PythonForce`` use.

A package runs on the CPU it was compiled for: inductor compiles with ``-march=native`` (the
metadata's ``cpu_capability``; loading on a CPU with fewer vector instructions is refused), and
it needs a torch whose AOTInductor runtime can load it (written with ``torch_version``). Its
kernels use as many threads as torch has when it runs (``cpp.dynamic_threads``).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import types
import zipfile
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from eqff import units
from eqff._version import __version__
from eqff.data import keys
from eqff.errors import ModelFileError
from eqff.export.archive import read_archive_json
from eqff.models.potential import Potential
from eqff.nn.neighborlist import neighbor_list_torch
from eqff.runtime.inputs import checked_cell, checked_positions, from_openmm, single_structure, to_openmm

PT2_FORMAT = "eqff-pt2-v1"
METADATA_FILE = "eqff_metadata.json"
INPUTS = ["positions", "atomic_numbers", "edge_index", "cell_shifts", "cell"]
OUTPUTS = ["energy", "atomic_energies", "forces", "virial"]
MIN_ATOMS = 2  # torch.export specialises sizes 0 and 1: the program takes >= 2 atoms and >= 2 edges
MIN_SEPARATION = 1e-3  # eqff.data.neighbors.MIN_SEPARATION
UNITS = {
    "length": "angstrom", "energy": "eV", "forces": "eV/angstrom", "virial": "eV",
    "stress": "eV/angstrom^3",
    "compute_openmm": {"positions": "nm", "box": "nm", "energy": "kJ/mol", "forces": "kJ/mol/nm"},
}


# ---------------------------------------------------------------------------------------------
# the traced function


class EnergyForcesVirial(nn.Module):
    """(positions, atomic_numbers, edge_index, cell_shifts, cell) -> (energy, atomic energies,
    forces, virial) of one structure: ``Potential.forward`` without its Python-side checks,
    flat tensors in and out, forces and virial by ``autograd.grad`` (traced by make_fx)."""

    def __init__(self, potential: Potential):
        super().__init__()
        self.potential = potential

    def forward(self, positions: Tensor, atomic_numbers: Tensor, edge_index: Tensor, cell_shifts: Tensor,
                cell: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        p = self.potential
        z = torch.clamp(atomic_numbers, 0, p.species_of_z.shape[0] - 1)
        # one species per position, said by an op: torch.export then knows the two inputs' sizes
        # are one number from the start (unified only at the end, a runtime check in ace's
        # neighbour table kept the numbers' own size symbol, undeclared in the C++: "s9 was not
        # declared in this scope")
        species = p.species_of_z[z].reshape(positions.shape[0])
        unknown = species < 0
        species = torch.where(unknown, torch.zeros_like(species), species)
        positions = positions.requires_grad_(True)
        strain = torch.zeros((3, 3), dtype=positions.dtype, device=positions.device, requires_grad=True)
        symmetric = 0.5 * (strain + strain.transpose(0, 1))
        strained_positions = positions + positions @ symmetric
        strained_cell = cell + cell @ symmetric
        vectors = (strained_positions[edge_index[1]] - strained_positions[edge_index[0]]
                   + cell_shifts @ strained_cell)
        raw = p.model(species, edge_index, vectors)
        atomic_energies = p.energy_scale[species] * raw + p.energy_shift[species]
        if p.use_zbl:
            atomic_energies = atomic_energies + p.zbl(species, edge_index, vectors)
        energy = atomic_energies.sum()
        gradient, strain_gradient = torch.autograd.grad([energy], [positions, strain])
        nan = torch.full_like(atomic_energies, float("nan"))
        atomic_energies = torch.where(unknown, nan, atomic_energies)
        return atomic_energies.sum(), atomic_energies, -gradient, -strain_gradient


class _TraceableSlots(nn.Module):
    """ace's ``NeighbourSlots`` for tracing: the same table, its width a data-dependent size
    (``.item()``) instead of ``int()``; returns width 0, and ``_TraceableEdgeMessages`` reads
    the true width from the table's length (ace passes the width through a tensor and
    ``int()``, which tracing cannot keep symbolic). Needs >= 2 edges (the loader pads)."""

    def forward(self, receivers: Tensor, num_nodes: int) -> Tuple[Tensor, Tensor, int]:
        edges = receivers.shape[0]
        device = receivers.device
        order = torch.argsort(receivers, stable=True)
        counts = torch.zeros(num_nodes, dtype=torch.long, device=device).index_add(0, receivers, torch.ones_like(receivers))
        # at least 2 slots (an empty slot adds exactly zero): with a width that may be 1, inductor
        # in torch 2.13 cannot choose a bmm layout ("Could not guard on ... Eq(u0, 1)")
        width = torch.clamp(counts.max(), min=2).item()
        torch.ops.aten.sym_constrain_range_for_size.default(width, min=2)  # an op: torch.export sees it
        torch._check(width <= edges)
        first = torch.cumsum(counts, 0) - counts
        sorted_receivers = receivers[order]
        slot = torch.arange(edges, device=device) - first[sorted_receivers]
        position = sorted_receivers * width + slot
        table = torch.zeros((num_nodes * width,), dtype=torch.long, device=device).index_put((position,), order)
        filled = torch.zeros((num_nodes * width,), dtype=torch.bool, device=device).index_put(
            (position,), torch.ones_like(order, dtype=torch.bool))
        return table, filled, 0


def _traceable_edge_messages(cls: type) -> type:
    class _TraceableEdgeMessages(cls):
        def forward(self, x: Tensor, harmonics: Tensor, radial: Tensor, senders: Tensor, table: Tensor,
                    filled: Tensor, width: int) -> List[Tensor]:
            return super().forward(x, harmonics, radial, senders, table, filled, table.shape[0] // x.shape[0])

    return _TraceableEdgeMessages


@contextlib.contextmanager
def _eager_e3nn():
    """e3nn modules built inside run eagerly (no TorchScript functions, which tracing cannot enter)."""
    import e3nn

    previous = dict(e3nn.get_optimization_defaults())
    e3nn.set_optimization_defaults(jit_mode="eager")
    try:
        yield
    finally:
        e3nn.set_optimization_defaults(jit_mode=previous["jit_mode"])


def traceable_copy(potential: Potential, dtype: Optional[torch.dtype] = None) -> Potential:
    """A copy of ``potential`` (CPU, ``dtype``) that make_fx can trace with symbolic sizes."""
    from eqff.models.ace import EdgeMessages, NeighbourSlots
    from eqff.models.io import copy_potential

    with _eager_e3nn():
        model = copy_potential(potential, dtype=dtype).eval()
    for name, module in list(model.named_modules()):
        if isinstance(module, NeighbourSlots):
            parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            setattr(parent, name.rsplit(".", 1)[-1], _TraceableSlots())
        elif isinstance(module, EdgeMessages):
            module.__class__ = _traceable_edge_messages(type(module))
    scripted = [name for name, module in model.named_modules() if isinstance(module, torch.jit.ScriptModule)]
    scripted += [f"{name}.{attr}" for name, module in model.named_modules() for attr, value in vars(module).items()
                 if isinstance(value, torch.jit.ScriptFunction)]
    if scripted:
        raise ModelFileError(f"model {model.kind!r} holds TorchScript parts ({scripted[:3]}) that torch.export "
                             "cannot trace; export it as TorchScript")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


# ---------------------------------------------------------------------------------------------
# example structures (tracing and the check after compiling)


def example_structures(potential: Potential) -> List[Dict[str, Any]]:
    """Two structures of the model's elements, different sizes: a jittered cluster (not
    periodic) and a small periodic box thinner than twice the cutoff (several images)."""
    numbers = [int(z) for z in potential.atomic_numbers.tolist()]
    cutoff = float(potential.cutoff)
    rng = np.random.default_rng(0)
    out = []
    for count, periodic in ((max(12, 3 * len(numbers)), False), (max(7, 2 * len(numbers) + 1), True)):
        z = np.array([numbers[k % len(numbers)] for k in range(count)])
        side = int(np.ceil(count ** (1 / 3)))
        grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:count]
        spacing = 0.45 * cutoff if not periodic else 0.55 * cutoff
        x = grid * spacing + rng.normal(scale=0.08 * spacing, size=(count, 3))
        cell = np.zeros((3, 3))
        if periodic:
            cell = np.diag([side * spacing] * 3) + rng.normal(scale=0.05 * spacing, size=(3, 3))
        out.append({"numbers": z, "positions": x, "cell": cell, "pbc": np.array([periodic] * 3)})
    return out


def _program_inputs(structure: Dict[str, Any], cutoff: float, dtype: torch.dtype) -> Tuple[Tensor, ...]:
    from eqff.data.neighbors import neighbor_list

    edge_index, shifts = neighbor_list(structure["positions"], structure["cell"], structure["pbc"], cutoff)
    return (torch.tensor(structure["positions"], dtype=dtype), torch.tensor(structure["numbers"], dtype=torch.long),
            torch.tensor(edge_index, dtype=torch.long), torch.tensor(shifts, dtype=dtype),
            torch.tensor(structure["cell"], dtype=dtype))


def eager_outputs(potential: Potential, positions: Tensor, atomic_numbers: Tensor, edge_index: Tensor,
                  cell_shifts: Tensor, cell: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """What the compiled program returns, from ``Potential.forward`` (the reference)."""
    data = {keys.POSITIONS: positions, keys.ATOMIC_NUMBERS: atomic_numbers,
            keys.BATCH: torch.zeros_like(atomic_numbers), keys.CELL: cell.reshape(1, 3, 3),
            keys.PBC: torch.ones((1, 3), dtype=torch.bool), keys.EDGE_INDEX: edge_index, keys.CELL_SHIFTS: cell_shifts}
    out = potential(data, compute_forces=True, compute_stress=True)
    return (out[keys.ENERGY][0].detach(), out[keys.ATOMIC_ENERGIES].detach(), out[keys.FORCES].detach(),
            out[keys.VIRIAL][0].detach())


def _relative_error(outputs: Tuple[Tensor, ...], reference: Tuple[Tensor, ...]) -> float:
    """Largest relative difference of energy (scale max(|E|, 1)) and forces, virial (scale: largest entry)."""
    errors = []
    for got, want in zip(outputs, reference):
        got, want = got.detach().double(), want.detach().double()
        scale = max(float(want.abs().max()) if want.numel() else 0.0, 1.0 if want.dim() == 0 else 1e-12)
        errors.append(float((got - want).abs().max()) / scale if want.numel() else 0.0)
    return max(errors)


# ---------------------------------------------------------------------------------------------
# export


def _metadata(model: Potential, dtype: torch.dtype, metadata: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    from ase.data import chemical_symbols

    from eqff.models.io import potential_state

    config = model.config()
    return {
        "format": PT2_FORMAT,
        "eqff_version": __version__,
        "torch_version": torch.__version__,
        "kind": config["kind"],
        "elements": config["elements"],
        "element_symbols": [chemical_symbols[z] for z in config["elements"]],
        "cutoff": config["cutoff"],
        "dtype": str(dtype).replace("torch.", ""),
        "device": "cpu",
        # inductor compiles with -march=native: the package needs a CPU with these vector instructions
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "units": UNITS,
        "inputs": INPUTS,
        "outputs": OUTPUTS,
        "min_atoms": MIN_ATOMS,
        "min_edges": MIN_ATOMS,
        "training_data_hash": None,
        "model_config": config,
        # of the weights compiled in (the checkpoint's model_state_sha256); not re-checked at load
        "weights_sha256": potential_state(model)["model_state_sha256"],
        **(metadata or {}),
    }


def export_program(potential: Potential, dtype: Optional[torch.dtype] = None
                   ) -> Tuple["torch.export.ExportedProgram", Potential, List[Tuple[Tensor, ...]]]:
    """(the exported program, the traced copy, the example inputs: traced, then checked):
    steps 1-3 of the module docstring, seconds; the program runs uncompiled too (``.module()``)."""
    from torch.export import Dim
    from torch.fx.experimental.proxy_tensor import make_fx

    model = traceable_copy(potential, dtype)
    dtype = model.energy_scale.dtype
    structures = [_program_inputs(s, model.cutoff, dtype) for s in example_structures(model)]
    example = structures[0]
    torch._dynamo.reset()
    previous_duck = torch.fx.experimental._config.use_duck_shape
    torch.fx.experimental._config.use_duck_shape = False  # no atom/edge count tied to a weight's size
    try:
        graph = make_fx(EnergyForcesVirial(model), tracing_mode="symbolic",
                        _allow_non_fake_inputs=True)(*[t.clone() for t in example])
    finally:
        torch.fx.experimental._config.use_duck_shape = previous_duck
    atoms, edges = Dim("num_atoms", min=MIN_ATOMS), Dim("num_edges", min=MIN_ATOMS)
    program = torch.export.export(graph, example, dynamic_shapes=({0: atoms}, {0: atoms}, {1: edges}, {0: edges}, None),
                                  strict=False)
    return program, model, structures


def export_pt2(potential: Potential, path: str | os.PathLike, dtype: Optional[torch.dtype] = None,
               metadata: Optional[Dict[str, Any]] = None, inductor_configs: Optional[Dict[str, Any]] = None
               ) -> Dict[str, Any]:
    """Compile ``potential`` (a copy, CPU, ``dtype``) into a ``.pt2`` package with its metadata,
    checked against the eager model; returns the metadata (with ``check_error``, the largest
    relative difference found). Minutes for ace (C++ compilation)."""
    from eqff.models.io import copy_potential

    path = os.fspath(path)
    if not path.endswith(".pt2"):
        raise ModelFileError(f"{path}: an AOTInductor package must be named *.pt2")
    program, model, structures = export_program(potential, dtype)
    dtype = model.energy_scale.dtype
    info = _metadata(model, dtype, metadata)

    # threads: omp_get_max_threads() when it runs (torch.set_num_threads, OMP_NUM_THREADS), not
    # the number of the compiling process, which inductor would otherwise write into the kernels
    configs = {"cpp.dynamic_threads": True, **(inductor_configs or {})}
    configs["aot_inductor.metadata"] = {METADATA_FILE: json.dumps(info, sort_keys=True)}
    folder = os.path.dirname(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(suffix=".pt2", dir=folder)
    os.close(handle)
    try:
        torch._inductor.aoti_compile_and_package(program, package_path=tmp, inductor_configs=configs)
        _add_extra_file(tmp, METADATA_FILE, json.dumps(info, indent=1, sort_keys=True))
        runner = torch._inductor.aoti_load_package(tmp)
        reference_model = copy_potential(potential, dtype=dtype).eval()  # the model as eqff runs it
        error = 0.0
        for inputs in structures:
            with torch.no_grad():
                got = tuple(runner(*inputs))
            error = max(error, _relative_error(got, eager_outputs(reference_model, *inputs)))
        tolerance = 1e-4 if dtype == torch.float32 else 1e-9
        if not error <= tolerance:
            raise ModelFileError(f"{path}: the compiled model differs from the eager one by {error:.2e} (relative; "
                                 f"tolerance {tolerance:.0e}); not written. Export as TorchScript and report this")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    info["check_error"] = error
    return info


def _add_extra_file(path: str, name: str, text: str) -> None:
    """Append ``<archive>/extra/<name>`` (where ``package_pt2(extra_files=...)`` puts it)."""
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_STORED) as archive:
        root = archive.namelist()[0].split("/")[0]
        archive.writestr(f"{root}/extra/{name}", text)


# ---------------------------------------------------------------------------------------------
# load


def is_pt2(path: str | os.PathLike) -> bool:
    """True for an AOTInductor package (a zip with ``data/aotinductor/``), eqff's or not."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/data/aotinductor/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def read_pt2_metadata(path: str | os.PathLike) -> Dict[str, Any]:
    path = os.fspath(path)
    info = read_archive_json(path, "/extra/" + METADATA_FILE, "an AOTInductor package")
    if not isinstance(info, dict) or info.get("format") != PT2_FORMAT:
        found = info.get("format") if isinstance(info, dict) else None
        raise ModelFileError(f"{path}: export format {found!r}; this eqff {__version__} reads {PT2_FORMAT!r} "
                             "packages: use the eqff version that wrote it or re-export")
    return info


class Pt2Potential(nn.Module):
    """A loaded ``.pt2`` with the interface of a loaded TorchScript export:
    ``forward(data, compute_forces, compute_stress)`` (a batch with its neighbour list, as
    ``Potential``), ``compute(atomic_numbers, positions, cell, pbc)`` (builds the neighbour list
    with eqff's pure-torch one) and ``compute_openmm(atomic_numbers, positions_nm, box_nm)``.

    It computes in the dtype it was compiled for (``self.dtype``): ``.to(dtype=...)`` does not
    change that (outputs come back in the dtype of the positions given); it runs on the CPU only.
    The checks the compiled program leaves out (unknown elements, coincident atoms, fewer than
    two atoms or edges) are done here."""

    def __init__(self, runner: Any, info: Dict[str, Any], path: str):
        super().__init__()
        self.runner = runner
        self.eqff_metadata = info
        self.path = path
        self.kind: str = info["kind"]
        self.cutoff: float = float(info["cutoff"])
        self.config_json: str = json.dumps(info["model_config"], sort_keys=True)
        self.dtype = getattr(torch, info["dtype"])
        self.compiled_dtype = self.dtype  # what the ASE calculator uses instead of its dtype argument
        self._file_bytes: Optional[bytes] = None
        # an empty parameter in the compiled dtype: code that asks a module's parameters for its
        # dtype (eqff.predict) sends positions in it; _apply keeps it in that dtype
        self.dtype_marker = nn.Parameter(torch.zeros(0, dtype=self.dtype), requires_grad=False)
        self.register_buffer("atomic_numbers", torch.tensor(info["elements"], dtype=torch.long))

    @property
    def potential(self):
        """What callers of a TorchScript export read of its ``potential``: the dtype."""
        return types.SimpleNamespace(energy_scale=torch.zeros(0, dtype=self.dtype))

    def config(self) -> Dict[str, Any]:
        return json.loads(self.config_json)

    def _apply(self, fn, recurse=True):
        probe = fn(torch.zeros(1))
        if probe.device.type != "cpu":
            raise ModelFileError(f"{self.path}: this .pt2 was compiled for the CPU; export again on a machine with "
                                 f"{probe.device.type} to run there")
        super()._apply(fn, recurse)
        self.dtype_marker.data = torch.zeros(0, dtype=self.dtype)
        return self

    def _run(self, positions: Tensor, atomic_numbers: Tensor, edge_index: Tensor, shifts: Tensor,
             cell: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """One structure; pads with two ghost atoms (and their one pair, beyond the cutoff) when
        it has fewer than two atoms or edges; returns energy, atomic energies, forces, virial."""
        n, e = positions.shape[0], edge_index.shape[1]
        x = positions.detach().to(self.dtype)
        shifts = shifts.detach().to(self.dtype)
        cell = cell.detach().to(self.dtype).reshape(3, 3)
        if n == 0:
            zero = torch.zeros((), dtype=self.dtype)
            return zero, torch.zeros(0, dtype=self.dtype), torch.zeros((0, 3), dtype=self.dtype), torch.zeros((3, 3), dtype=self.dtype)
        padded = n < MIN_ATOMS or e < MIN_ATOMS
        if padded:
            corner = x.max(dim=0).values + 3.0 * self.cutoff
            ghosts = torch.stack([corner, corner + torch.tensor([1.5 * self.cutoff, 0.0, 0.0], dtype=self.dtype)])
            x = torch.cat([x, ghosts])
            atomic_numbers = torch.cat([atomic_numbers, self.atomic_numbers[:1].expand(2)])
            edge_index = torch.cat([edge_index, torch.tensor([[n, n + 1], [n + 1, n]], dtype=torch.long)], dim=1)
            shifts = torch.cat([shifts, torch.zeros((2, 3), dtype=self.dtype)])
        with torch.no_grad():
            energy, atomic_energies, forces, virial = self.runner(
                x.contiguous(), atomic_numbers.to(torch.long).contiguous(), edge_index.to(torch.long).contiguous(),
                shifts.contiguous(), cell.contiguous())
        if padded:
            atomic_energies, forces = atomic_energies[:n], forces[:n]
            energy = atomic_energies.sum()
        return energy, atomic_energies, forces, virial

    def _check(self, atomic_numbers: Tensor, positions: Tensor, cell: Tensor, batch: Tensor, edge_index: Tensor,
               shifts: Tensor) -> None:
        known = self.atomic_numbers
        unknown = ~torch.isin(atomic_numbers, known)
        if bool(unknown.any()):
            raise ValueError("eqff: atomic numbers " + str(torch.unique(atomic_numbers[unknown]).tolist())
                             + " are not elements of this model, which knows " + str(known.tolist())
                             + "; use a model trained on these elements")
        if edge_index.shape[1] == 0:
            return
        x = positions.detach()
        vectors = x[edge_index[1]] - x[edge_index[0]] + torch.bmm(
            shifts.to(x.dtype).unsqueeze(1), cell.to(x.dtype)[batch[edge_index[0]]]).squeeze(1)
        distance_sq = (vectors * vectors).sum(dim=-1)
        closest = int(torch.argmin(distance_sq))
        if float(distance_sq[closest]) < MIN_SEPARATION ** 2:
            i, j = int(edge_index[0, closest]), int(edge_index[1, closest])
            raise ValueError(f"eqff: atoms {i} and {j} are {float(distance_sq[closest]) ** 0.5:.2g} Å apart "
                             "(coincident); remove duplicated atoms or check the coordinates")

    def forward(self, data: Dict[str, Tensor], compute_forces: bool = True, compute_stress: bool = False,
                create_graph: bool = False) -> Dict[str, Tensor]:
        if create_graph:
            raise ValueError("eqff: a .pt2 export returns numbers, not an autograd graph (create_graph=True is for "
                             "training: use the checkpoint)")
        positions = data[keys.POSITIONS]
        out_dtype = positions.dtype
        cell = data[keys.CELL].reshape(-1, 3, 3)
        batch = data[keys.BATCH]
        edge_index = data[keys.EDGE_INDEX]
        shifts = data[keys.CELL_SHIFTS]
        numbers = data[keys.ATOMIC_NUMBERS]
        self._check(numbers, positions, cell, batch, edge_index, shifts)
        num_graphs = cell.shape[0]
        counts = torch.bincount(batch, minlength=num_graphs).tolist()
        edge_graph = batch[edge_index[0]]
        results = []
        start = 0
        for b in range(num_graphs):
            stop = start + counts[b]
            mask = edge_graph == b
            results.append(self._run(positions[start:stop], numbers[start:stop], edge_index[:, mask] - start,
                                     shifts[mask], cell[b]))
            start = stop
        energy = torch.stack([r[0] for r in results]).to(out_dtype)
        out = {keys.ENERGY: energy, keys.ATOMIC_ENERGIES: torch.cat([r[1] for r in results]).to(out_dtype)}
        if compute_forces:
            out[keys.FORCES] = torch.cat([r[2] for r in results]).to(out_dtype)
        if compute_stress:
            virial = torch.stack([r[3] for r in results]).to(out_dtype)
            volume = torch.abs(torch.linalg.det(cell.to(out_dtype))).view(-1, 1, 1)
            safe = torch.where(volume > 0, volume, torch.ones_like(volume))
            out[keys.VIRIAL] = virial
            out[keys.STRESS] = torch.where(volume > 0, -virial / safe, torch.zeros_like(virial))
        return out

    def compute(self, atomic_numbers: Tensor, positions: Tensor, cell: Tensor, pbc: Tensor,
                compute_stress: bool = False) -> Dict[str, Tensor]:
        """One structure, Å and eV: builds the neighbour list (pure torch), like a TorchScript export."""
        if positions.dim() != 2 or positions.shape[1] != 3 or atomic_numbers.shape[0] != positions.shape[0]:
            raise ValueError("eqff: positions must be [N,3] with one atomic number per atom")
        positions = checked_positions(positions)
        cell = checked_cell(cell.to(positions.dtype).reshape(3, 3))
        pbc = pbc.to(torch.bool).reshape(3)
        edge_index, shifts = neighbor_list_torch(positions.detach().to(self.dtype), cell.to(self.dtype), pbc, self.cutoff)
        return self.forward(single_structure(atomic_numbers, positions, cell, pbc, edge_index, shifts), True,
                            compute_stress, False)

    def compute_openmm(self, atomic_numbers: Tensor, positions: Tensor,
                       box: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Energy (kJ/mol, 0-d float64) and forces (kJ/mol/nm, [N,3] float64) from nm; ``box`` None: not periodic."""
        x, cell, pbc = from_openmm(positions, box, self.dtype, units.NM_TO_ANGSTROM)
        out = self.compute(atomic_numbers, x, cell, pbc, False)
        return to_openmm(out[keys.ENERGY], out[keys.FORCES], units.EV_TO_KJ_PER_MOL,
                         units.EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM)

    def file_bytes(self) -> bytes:
        """The package file (OpenMM pickles a PythonForce's computation with it)."""
        if self._file_bytes is not None:
            return self._file_bytes
        with open(self.path, "rb") as handle:
            return handle.read()

    def keep_file_bytes(self, data: bytes) -> None:
        """Keep the package in memory (its file may be gone: a temporary copy, unpickled)."""
        self._file_bytes = data


def load_pt2(path: str | os.PathLike, map_location: str = "cpu") -> Pt2Potential:
    """A ``Pt2Potential`` from an eqff ``.pt2`` (its metadata in ``.eqff_metadata``)."""
    path = os.fspath(path)
    info = read_pt2_metadata(path)
    if torch.device(map_location).type != "cpu":
        raise ModelFileError(f"{path}: this .pt2 was compiled for the CPU and cannot run on {map_location}; export "
                             "again on a machine with that device")
    needed, here = info.get("cpu_capability"), torch.backends.cpu.get_cpu_capability()
    order = ["DEFAULT", "VSX", "ZVECTOR", "AVX2", "AVX512"]
    if needed in order and here in order and order.index(here) < order.index(needed):
        raise ModelFileError(f"{path}: compiled for a CPU with {needed} instructions; this one has {here}: export "
                             "again on this machine (or one of its CPU family)")
    with zipfile.ZipFile(path) as archive:
        corrupt = archive.testzip()
    if corrupt is not None:
        raise ModelFileError(f"{path}: {corrupt} in the archive fails its checksum: the file is corrupt; use an "
                             "intact copy or re-export")
    try:
        runner = torch._inductor.aoti_load_package(path)
    except Exception as error:
        raise ModelFileError(f"{path}: torch {torch.__version__} cannot load this AOTInductor package, written with "
                             f"torch {info.get('torch_version')} ({str(error)[:300]}); re-export it") from error
    return Pt2Potential(runner, info, os.path.abspath(path))

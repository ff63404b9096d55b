"""eqff potentials as OpenMM forces: ``openmmtorch.TorchForce`` and ``openmm.PythonForce``.

Both run one module, ``OpenMMModule``::

    forward(positions [n,3] nm, box [3,3] nm or None) -> (energy kJ/mol [], forces kJ/mol/nm [n,3])

which takes the ML atoms' positions (``positions[indices]`` when the force covers a subset of
the System), converts to Å, builds the neighbour list inside the model (pure torch, so the
TorchForce needs nothing but libtorch), evaluates the potential and returns energy and forces
in float64 (the TorchForce is set to take the forces, so OpenMM does not run a second backward).

    force = eqff.openmm.torch_force("ethanol.pt", topology=pdb.topology)          # whole system
    force = eqff.openmm.python_force("ethanol.pt", atoms=ml_atoms, topology=top)  # a subset
    system.addForce(force)

A ``.pt2`` export (AOTInductor, no TorchScript: eqff/export/aoti.py) runs in the PythonForce
only; TorchForce needs TorchScript and refuses it with a ``ConfigError``.

Decisions, documented here and tested in tests/test_openmm.py:

* Elements come from ``topology``: an ``openmm.app.Topology``, an ``ase.Atoms`` or a sequence
  of atomic numbers, describing every particle of the System. ``atoms`` (indices into the
  System, ``None``: all) picks the ML atoms; their atomic numbers are taken in the same order
  as their positions, so the energy does not depend on the order of ``atoms`` (openmm-ml#130).
  ``atoms`` may also be an ``ase.Atoms``: then it is the whole System and gives the elements.
  Without any element source the force cannot be built and a ``ConfigError`` says so.
* Periodicity: ``periodic=None`` follows the topology (box vectors set / ``pbc`` all True).
  A periodic force reads OpenMM's box every step and the ML atoms interact with all periodic
  images within the cutoff. This holds for a subset too: in a periodic ML/MM system the ML
  region is periodic (no minimum-image errors for a molecule OpenMM has split across the
  boundary: openmm-ml#52, #77). OpenMM does not wrap positions for a TorchForce; the in-model
  neighbour list wraps them itself.
* Box size: any box is computed exactly, also one thinner than twice the cutoff (the neighbour
  list takes several images). What raises instead of giving a number: a periodic force called
  without a box, a singular box, non-finite positions (a simulation that blew up), elements
  the model lacks (at construction), ASE cells periodic in only some directions (OpenMM has no
  such boundary condition).
"""
from __future__ import annotations

import io
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from e3nn.util.jit import compile_mode, script as e3nn_script
from torch import Tensor, nn

from eqff import units
from eqff.data import keys
from eqff.nn.neighborlist import neighbor_list_torch
from eqff.errors import ConfigError, UnknownElementError, element_names
from eqff.threads import deploy_threads

ModelLike = Union[str, os.PathLike, nn.Module]
_DTYPES = {"float32": torch.float32, "float64": torch.float64, "single": torch.float32, "double": torch.float64,
           torch.float32: torch.float32, torch.float64: torch.float64}


@compile_mode("script")
class OpenMMModule(nn.Module):
    """An exported eqff potential in OpenMM units, for the whole System or a subset of it.

    ``model`` is an ``ExportedPotential`` (eager or scripted, e.g. a loaded export file);
    ``atomic_numbers`` are those of the ML atoms; ``indices`` (optional) are the ML atoms'
    particle indices in the System (then ``forward`` gets the positions of every particle and
    returns forces for every particle, zero outside the ML atoms).

    Neighbour list with a skin (``skin`` Å > 0, the default 1 Å): the module keeps the pairs
    within ``cutoff + skin`` of the positions (and box) of its last rebuild, and each step
    keeps those within the cutoff; it rebuilds when an atom has moved more than ``skin / 2``
    from its reference position, when the box changed or when the number of atoms changed, so
    the model sees exactly the pairs a fresh list finds (tests/test_speed_paths.py). The
    edges may come in another order than from a fresh list, so sums differ by round-off only.
    ``skin=0`` builds a fresh list every step (through ``model.compute_openmm``).
    """

    def __init__(self, model: nn.Module, atomic_numbers: Tensor, indices: Optional[Tensor] = None,
                 periodic: bool = False, skin: float = 1.0):
        super().__init__()
        self.model = model
        self.register_buffer("atomic_numbers", torch.as_tensor(atomic_numbers, dtype=torch.long).clone())
        self.use_indices: bool = indices is not None
        if indices is None:
            indices = torch.zeros(0, dtype=torch.long)
        self.register_buffer("indices", torch.as_tensor(indices, dtype=torch.long).clone())
        self.periodic: bool = bool(periodic)
        if not float(skin) >= 0.0:
            raise ConfigError(f"skin must be >= 0 Å, got {skin}")
        self.skin: float = float(skin)
        self.cutoff: float = float(model.cutoff)
        self.nm_to_angstrom: float = units.NM_TO_ANGSTROM
        self.ev_to_kj_per_mol: float = units.EV_TO_KJ_PER_MOL
        self.ev_per_angstrom_to_kj_per_mol_nm: float = units.EV_PER_ANGSTROM_TO_KJ_PER_MOL_NM
        self.neighbor_list_builds: int = 0
        # the cache: positions (Å) and cell of the last rebuild, and its pairs within cutoff + skin
        self.register_buffer("reference_positions", torch.zeros((0, 3), dtype=torch.float64), persistent=False)
        self.register_buffer("reference_cell", torch.zeros((3, 3), dtype=torch.float64), persistent=False)
        self.register_buffer("cached_edge_index", torch.zeros((2, 0), dtype=torch.long), persistent=False)
        self.register_buffer("cached_shifts", torch.zeros((0, 3), dtype=torch.float64), persistent=False)

    def forward(self, positions: Tensor, box: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        # No calls of this module's own methods here: openmmtorch freezes the module, which drops
        # every method but forward, and without the executor's optimisation (jit_optimize=False)
        # such calls are not inlined (free functions are fine).
        if self.periodic and box is None:
            raise ValueError("eqff: this force is periodic but got no box vectors; call "
                             "setUsesPeriodicBoundaryConditions(True) on the force or build it with periodic=False")
        x = positions.detach()
        if self.use_indices:
            x = x.index_select(0, self.indices)
        if x.shape[0] != self.atomic_numbers.shape[0]:
            raise ValueError("eqff: got the positions of " + str(x.shape[0]) + " atoms, but the force was built for "
                             + str(self.atomic_numbers.shape[0]) + " ML atoms")
        cell_nm: Optional[Tensor] = None
        if self.periodic and box is not None:
            cell_nm = box.detach()
        if self.skin > 0.0:  # model.compute_openmm with the cached neighbour list (same checks, same units)
            dtype = self.model.potential.energy_scale.dtype
            xa = _angstrom_positions(x, dtype, self.nm_to_angstrom)
            cell, pbc = _angstrom_cell(cell_nm, dtype, xa.device, self.nm_to_angstrom)
            rebuilt, full_edges, full_shifts, edge_index, shifts = _skin_neighbours(
                xa, cell, pbc, self.cutoff, self.skin, self.reference_positions, self.reference_cell,
                self.cached_edge_index, self.cached_shifts)
            if rebuilt:
                self.reference_positions = xa.clone()
                self.reference_cell = cell.clone()
                self.cached_edge_index = full_edges
                self.cached_shifts = full_shifts
                self.neighbor_list_builds += 1
            data: Dict[str, Tensor] = {
                keys.POSITIONS: xa, keys.ATOMIC_NUMBERS: self.atomic_numbers,
                keys.BATCH: torch.zeros_like(self.atomic_numbers), keys.CELL: cell.reshape(1, 3, 3),
                keys.PBC: pbc.reshape(1, 3), keys.EDGE_INDEX: edge_index, keys.CELL_SHIFTS: shifts,
            }
            out = self.model(data, True, False, False)
            energy = out[keys.ENERGY].sum().to(torch.float64) * self.ev_to_kj_per_mol
            forces = out[keys.FORCES].to(torch.float64) * self.ev_per_angstrom_to_kj_per_mol_nm
        else:
            energy, forces = self.model.compute_openmm(self.atomic_numbers, x, cell_nm)
        if self.use_indices:
            full = torch.zeros((positions.shape[0], 3), dtype=forces.dtype, device=forces.device)
            forces = full.index_copy(0, self.indices, forces)
        return energy.detach(), forces.detach()


def _angstrom_positions(positions_nm: Tensor, dtype: torch.dtype, nm_to_angstrom: float) -> Tensor:
    x = positions_nm.to(dtype) * nm_to_angstrom
    if not bool(torch.isfinite(x).all()):
        bad: List[int] = torch.nonzero(~torch.isfinite(x).all(dim=1)).flatten()[:10].tolist()
        raise ValueError("eqff: positions of atoms " + str(bad) + " are not finite (NaN or inf); "
                         "the structure or the simulation is broken")
    return x


def _angstrom_cell(box_nm: Optional[Tensor], dtype: torch.dtype, device: torch.device,
                   nm_to_angstrom: float) -> Tuple[Tensor, Tensor]:
    if box_nm is None:
        return torch.zeros((3, 3), dtype=dtype, device=device), torch.zeros(3, dtype=torch.bool, device=device)
    cell = box_nm.to(dtype).reshape(3, 3) * nm_to_angstrom
    if not bool(torch.isfinite(cell).all()):
        raise ValueError("eqff: the cell is not finite (NaN or inf)")
    return cell, torch.ones(3, dtype=torch.bool, device=device)


def _skin_neighbours(x: Tensor, cell: Tensor, pbc: Tensor, cutoff: float, skin: float, reference: Tensor,
                     reference_cell: Tensor, cached_edge_index: Tensor, cached_shifts: Tensor
                     ) -> Tuple[bool, Tensor, Tensor, Tensor, Tensor]:
    """(rebuilt, pairs within cutoff + skin, their shifts, pairs within the cutoff, their shifts).

    The list at ``cutoff + skin`` is rebuilt when the number of atoms, the dtype or the cell
    changed or an atom moved more than ``skin / 2`` from its reference position; the pairs
    within the cutoff are filtered from it every call."""
    stale = reference.shape[0] != x.shape[0] or reference.dtype != x.dtype
    if not stale:
        stale = not bool(torch.equal(cell, reference_cell))
    if not stale:
        moved = x - reference
        stale = bool(((moved * moved).sum(dim=1) > 0.25 * skin * skin).any())
    edge_index = cached_edge_index
    shifts = cached_shifts
    if stale:
        edge_index, shifts = neighbor_list_torch(x, cell, pbc, cutoff + skin)
    vectors = x.index_select(0, edge_index[1]) - x.index_select(0, edge_index[0]) + shifts @ cell
    inside = torch.nonzero((vectors * vectors).sum(dim=1) < cutoff * cutoff).flatten()
    return stale, edge_index, shifts, edge_index.index_select(1, inside), shifts.index_select(0, inside)


# ---------------------------------------------------------------------------------------------
# building blocks


def load_for_openmm(model: ModelLike, dtype: Union[str, torch.dtype, None] = None, script: bool = True,
                    device: Union[str, torch.device] = "cpu") -> nn.Module:
    """An ``ExportedPotential`` (scripted when ``script``) from a checkpoint or export file, a
    ``Potential``, an ``ExportedPotential`` or a loaded export. ``dtype`` None keeps the model's.

    The caller's model is never changed: in-memory models are copied."""
    from eqff.export import ExportedPotential, Pt2Potential, is_exported, load_exported, load_pt2
    from eqff.models.io import copy_potential, load_checkpoint, potential_from_state
    from eqff.models.potential import Potential

    target = _resolve_dtype(dtype)
    if _is_pt2_model(model):
        if script:
            raise ConfigError(_PT2_NOT_TORCHSCRIPT)
        loaded = model if isinstance(model, Pt2Potential) else load_pt2(model, map_location=str(device))
        if target is not None and target != loaded.dtype:
            raise ConfigError(f"{loaded.path}: a .pt2 export computes in the dtype it was compiled for "
                              f"({str(loaded.dtype).replace('torch.', '')}), not {str(target).replace('torch.', '')}; "
                              "pass dtype=None or export the checkpoint again with that --dtype")
        return loaded
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if is_exported(path):
            return _cast_exported(load_exported(path, map_location=str(device)), target, path).to(device)
        potential = potential_from_state(load_checkpoint(path), source=path, dtype=target)
    elif isinstance(model, Potential):
        potential = copy_potential(model, dtype=target)
    elif isinstance(model, ExportedPotential):
        potential = copy_potential(model.potential, dtype=target)
    elif isinstance(model, torch.jit.ScriptModule) and hasattr(model, "compute_openmm"):
        buffer = io.BytesIO()
        torch.jit.save(model, buffer)  # a private copy: casting is in place for ScriptModules
        buffer.seek(0)
        copy = torch.jit.load(buffer, map_location=str(device))
        return _cast_exported(copy, target, "the given TorchScript model").to(device)
    else:
        raise ConfigError(f"cannot use a {type(model).__name__} as an eqff model: give a checkpoint or export path, "
                          "an eqff Potential or a loaded eqff export")
    exported = ExportedPotential(potential.eval())
    if script:
        exported = e3nn_script(exported)
    return exported.to(device)


_PT2_NOT_TORCHSCRIPT = ("an eqff .pt2 export (AOTInductor) is not TorchScript, which openmmtorch.TorchForce needs: "
                        "use eqff.openmm.python_force (implementation='pythonforce') for it, or export the "
                        "checkpoint with `eqff export --format torchscript` for a TorchForce")


def _is_pt2_model(model: Any) -> bool:
    """A ``.pt2`` export: a path to one or a loaded ``Pt2Potential``."""
    from eqff.export import Pt2Potential, is_pt2

    if isinstance(model, (str, os.PathLike)):
        return is_pt2(os.fspath(model))
    return isinstance(model, Pt2Potential)


def _cast_exported(module: torch.jit.ScriptModule, dtype: Optional[torch.dtype], source: str) -> torch.jit.ScriptModule:
    current = module.potential.energy_scale.dtype
    if dtype is None or dtype == current:
        return module
    if dtype == torch.float64 and current == torch.float32:
        warnings.warn(f"{source}: a float32 export cast to float64 keeps its float32 constants (equivariance to "
                      "~1e-7); export the checkpoint in float64 for float64-exact numbers", stacklevel=3)
    return module.to(dtype)


def _resolve_dtype(dtype: Union[str, torch.dtype, None]) -> Optional[torch.dtype]:
    if dtype is None:
        return None
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype must be 'float32' or 'float64' (or 'single'/'double'), got {dtype!r}")
    return _DTYPES[dtype]


def system_atomic_numbers(topology: Any) -> List[int]:
    """Atomic numbers of every particle: from an ``openmm.app.Topology``, an ``ase.Atoms`` or a
    sequence of atomic numbers."""
    if topology is None:
        raise ConfigError("eqff needs the elements of the System: pass topology= an openmm.app.Topology, "
                          "an ase.Atoms or a list of atomic numbers")
    if hasattr(topology, "atoms") and hasattr(topology, "getPeriodicBoxVectors"):
        numbers = []
        for atom in topology.atoms():
            if atom.element is None:
                raise UnknownElementError(
                    f"topology atom {atom.index} ({atom.name} in residue {atom.residue.name} {atom.residue.id}) has no "
                    "element (a virtual site or extra particle?); it cannot be an ML atom: leave it out of atoms=")
            numbers.append(int(atom.element.atomic_number))
        return numbers
    if hasattr(topology, "get_atomic_numbers"):
        return [int(z) for z in topology.get_atomic_numbers()]
    return [int(z) for z in np.asarray(topology, dtype=np.int64).reshape(-1)]


def topology_is_periodic(topology: Any) -> bool:
    if hasattr(topology, "getPeriodicBoxVectors"):
        return topology.getPeriodicBoxVectors() is not None
    if hasattr(topology, "pbc"):
        pbc = np.asarray(topology.pbc, dtype=bool)
        if pbc.any() and not pbc.all():
            raise ConfigError(f"the structure is periodic along {pbc.tolist()}: OpenMM is periodic in all three "
                              "directions or none; pass periodic=True or False")
        return bool(pbc.all())
    return False


def ml_atoms(atoms: Optional[Sequence[int]], num_particles: int) -> Optional[List[int]]:
    """Validated ML atom indices (None: all particles)."""
    if atoms is None:
        return None
    indices = [int(i) for i in atoms]
    if len(set(indices)) != len(indices):
        raise ConfigError("atoms= holds duplicate indices")
    bad = [i for i in indices if not 0 <= i < num_particles]
    if bad:
        raise ConfigError(f"atoms= indices {bad[:10]} are outside the System's {num_particles} particles")
    if not indices:
        raise ConfigError("atoms= is empty")
    return indices


def openmm_module(model: ModelLike, topology: Any = None, atoms: Optional[Sequence[int]] = None,
                  periodic: Optional[bool] = None, dtype: Union[str, torch.dtype, None] = None,
                  subset_positions: bool = True, script: bool = True,
                  device: Union[str, torch.device] = "cpu", skin: float = 1.0,
                  threads: Optional[int] = None) -> OpenMMModule:
    """The module a TorchForce (``subset_positions=True``: forward gets every particle) or a
    PythonForce with ``setParticles`` (``subset_positions=False``: forward gets the ML atoms
    only) runs. See the module docstring for the arguments; ``skin`` (Å) is the neighbour-list
    skin of ``OpenMMModule`` (0: a fresh list every step); ``threads``: torch's intra-op threads
    (None: eqff chooses once per process, eqff/threads.py; the TorchForce's libtorch is this
    process's torch, so the choice applies to it too)."""
    deploy_threads(threads)
    if hasattr(atoms, "get_atomic_numbers"):  # an ase.Atoms as atoms=: the whole system, its elements
        if topology is not None:
            raise ConfigError("atoms= is an ase.Atoms (the whole system); do not pass topology= as well")
        topology, atoms = atoms, None
    numbers = system_atomic_numbers(topology)
    indices = ml_atoms(atoms, len(numbers))
    if periodic is None:
        periodic = topology_is_periodic(topology)
    ml_numbers = numbers if indices is None else [numbers[i] for i in indices]
    exported = load_for_openmm(model, dtype=dtype, script=script, device=device)
    known = set(int(z) for z in exported.atomic_numbers.tolist())
    unknown = sorted(set(ml_numbers) - known)
    if unknown:
        system_index = np.asarray(indices if indices is not None else range(len(numbers)))
        where = system_index[np.isin(ml_numbers, unknown)][:10].tolist()
        raise UnknownElementError(f"ML atoms {where} are {element_names(unknown)}, which this model does not know "
                                  f"(it knows {element_names(known)}); use a model trained on these elements")
    module_indices = torch.tensor(indices, dtype=torch.long) if (indices is not None and subset_positions) else None
    module = OpenMMModule(exported, torch.tensor(ml_numbers, dtype=torch.long), module_indices, bool(periodic),
                          skin=skin)
    module = module.to(device)
    if script:
        module = torch.jit.script(module) if isinstance(exported, torch.jit.ScriptModule) else e3nn_script(module)
    return module


# ---------------------------------------------------------------------------------------------
# TorchForce


def torch_force(model: ModelLike, atoms: Optional[Sequence[int]] = None, periodic: Optional[bool] = None,
                topology: Any = None, dtype: Union[str, torch.dtype, None] = None, skin: float = 1.0,
                threads: Optional[int] = None):
    """An ``openmmtorch.TorchForce`` running the potential (it returns forces itself).

    ``model``: checkpoint or export path, ``Potential`` or loaded export; ``atoms``: ML atom
    indices in the System (None: all); ``topology``: Topology, ase.Atoms or atomic numbers of
    the whole System; ``periodic``: None follows the topology; ``dtype``: None keeps the model's;
    ``skin``: neighbour-list skin in Å (the list is rebuilt when an atom moved skin/2; 0: every step);
    ``threads``: torch's intra-op threads (None: eqff chooses once per process, eqff/threads.py).
    A ``.pt2`` export raises ``ConfigError``: TorchForce runs TorchScript only (use ``python_force``)."""
    if _is_pt2_model(model):
        raise ConfigError(_PT2_NOT_TORCHSCRIPT)
    openmmtorch = import_openmmtorch()
    module = openmm_module(model, topology, atoms, periodic, dtype, subset_positions=True, script=True, skin=skin,
                           threads=threads)
    force = openmmtorch.TorchForce(module)
    force.setOutputsForces(True)
    force.setUsesPeriodicBoundaryConditions(bool(module.periodic))
    force.setName("eqff TorchForce")
    return force


def import_openmmtorch():
    """``openmmtorch``, or a clear error: it must be imported after torch (it links torch's
    libraries) and works only with the torch it was built for (torch 2.9 for openmmtorch 1.5)."""
    import torch  # noqa: F401  (loads the libraries openmmtorch links against)

    try:
        import openmmtorch
    except ImportError as error:
        raise ImportError(f"openmmtorch cannot be imported with torch {torch.__version__} ({error}); use "
                          "eqff.openmm.python_force (implementation='pythonforce'), which works with any torch") from error
    _reload_torch_plugins()
    return openmmtorch


def _torch_plugin_failures() -> List[str]:
    """OpenMM's failed plugin loads that concern the TorchForce kernels (OpenCL ones fail on any
    machine without OpenCL and do not matter here)."""
    import openmm

    return [f for f in openmm.Platform.getPluginLoadFailures() if "OpenMMTorch" in f and "libOpenCL" not in f]


def _plugin_directory() -> str:
    """Where ``import openmm`` loaded its plugins from (openmm/__init__.py): the wheel's own
    folder unless OPENMM_PLUGIN_DIR is set (getDefaultPluginsDirectory() is /usr/local/openmm
    for a pip install, which holds nothing)."""
    import openmm
    from openmm import version

    if os.getenv("OPENMM_PLUGIN_DIR") is None and os.path.isdir(version.openmm_library_path):
        return os.path.join(version.openmm_library_path, "plugins")
    return openmm.Platform.getDefaultPluginsDirectory()


def _reload_torch_plugins() -> None:
    """A script that imports openmm before torch has OpenMM load its plugins before torch put
    libnvrtc and libtorch on the path: the TorchForce kernels fail to load and every Context with
    a TorchForce fails ("does not support all required kernels"). Loading the plugins again now
    that torch is imported fixes it (once per process; a no-op when openmm came after torch)."""
    import openmm

    if not _torch_plugin_failures():
        return
    openmm.Platform.loadPluginsFromDirectory(_plugin_directory())
    still = _torch_plugin_failures()
    if still:
        raise ImportError("OpenMM cannot load the TorchForce kernels (" + still[0] + "); use "
                          "eqff.openmm.python_force (implementation='pythonforce') instead")


# ---------------------------------------------------------------------------------------------
# PythonForce


class PythonForceComputation:
    """The function ``openmm.PythonForce`` calls: State (nm) -> (energy kJ/mol, forces kJ/mol/nm).

    Picklable (OpenMM pickles it to serialise or copy a System): the module travels as
    TorchScript bytes."""

    def __init__(self, module: nn.Module, device: Union[str, torch.device] = "cpu"):
        self.module = module
        self.device = torch.device(device)
        self.periodic = bool(module.periodic)

    def __call__(self, state):
        from openmm import unit

        positions = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        x = torch.as_tensor(np.asarray(positions), dtype=torch.float64, device=self.device)
        box = None
        if self.periodic:
            vectors = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)
            box = torch.as_tensor(np.asarray(vectors), dtype=torch.float64, device=self.device)
        with torch.enable_grad():
            energy, forces = self.module(x, box)
        return float(energy), forces.detach().cpu().numpy()

    def __getstate__(self):
        module = self.module
        if _is_pt2_model(getattr(module, "model", None)):  # the package bytes and the module's settings
            return {"pt2": module.model.file_bytes(), "device": str(self.device),
                    "atomic_numbers": module.atomic_numbers.tolist(),
                    "indices": module.indices.tolist() if module.use_indices else None,
                    "periodic": module.periodic, "skin": module.skin}
        if not isinstance(module, torch.jit.ScriptModule):
            module = e3nn_script(module)
        buffer = io.BytesIO()
        torch.jit.save(module, buffer)
        return {"module": buffer.getvalue(), "device": str(self.device)}

    def __setstate__(self, state):
        if "pt2" in state:
            import tempfile

            from eqff.export import load_pt2

            handle, path = tempfile.mkstemp(suffix=".pt2", prefix="eqff-openmm-")
            with os.fdopen(handle, "wb") as file:
                file.write(state["pt2"])
            indices = None if state["indices"] is None else torch.tensor(state["indices"], dtype=torch.long)
            try:
                model = load_pt2(path)
            finally:
                os.remove(path)  # loading extracted what runs; the bytes stay in memory for the next pickle
            model.keep_file_bytes(state["pt2"])
            module = OpenMMModule(model, torch.tensor(state["atomic_numbers"], dtype=torch.long), indices,
                                  state["periodic"], skin=state["skin"])
            self.__init__(module, state["device"])
            return
        module = torch.jit.load(io.BytesIO(state["module"]), map_location=state["device"])
        self.__init__(module, state["device"])


def python_force(model: ModelLike, atoms: Optional[Sequence[int]] = None, periodic: Optional[bool] = None,
                 topology: Any = None, dtype: Union[str, torch.dtype, None] = None,
                 device: Union[str, torch.device] = "cpu", script: bool = False, skin: float = 1.0,
                 threads: Optional[int] = None):
    """An ``openmm.PythonForce`` running the potential with any torch, on ``device`` (e.g.
    "cuda" when TorchForce is unavailable). Same arguments as ``torch_force``; ``script=False``
    runs an in-memory or checkpoint model eagerly (TorchScript exports run scripted anyway, a
    ``.pt2`` export compiled)."""
    import openmm

    module = openmm_module(model, topology, atoms, periodic, dtype, subset_positions=False, script=script,
                           device=device, skin=skin, threads=threads)
    force = openmm.PythonForce(PythonForceComputation(module, device))
    if atoms is not None:
        force.setParticles([int(i) for i in atoms])
    force.setUsesPeriodicBoundaryConditions(bool(module.periodic))
    force.setName("eqff PythonForce")
    return force


def ml_force(model: ModelLike, implementation: str = "auto", **kwargs):
    """``torch_force`` or ``python_force`` by name: "torchforce", "pythonforce" or "auto"
    (TorchForce when openmmtorch imports, else PythonForce)."""
    name = implementation.lower().replace("_", "").replace("-", "")
    if name == "auto" and _is_pt2_model(model):
        name = "pythonforce"  # TorchForce cannot run a .pt2
    if name == "auto":
        try:
            import_openmmtorch()
            name = "torchforce"
        except ImportError as error:
            warnings.warn(f"{error}; using openmm.PythonForce", stacklevel=2)
            name = "pythonforce"
    if name == "torchforce":
        kwargs.pop("device", None)  # TorchForce runs on the Context's platform device
        kwargs.pop("script", None)
        return torch_force(model, **kwargs)
    if name == "pythonforce":
        return python_force(model, **kwargs)
    raise ConfigError(f"implementation must be 'torchforce', 'pythonforce' or 'auto', got {implementation!r}")


# ---------------------------------------------------------------------------------------------
# structures -> OpenMM


def topology_from_atoms(atoms, residue_name: str = "MOL"):
    """``(topology, positions_nm, order)`` for an ``ase.Atoms``: one residue per bonded molecule
    (ASE covalent radii x 1.25, periodic images included), waters named HOH/O/H1/H2 so that
    OpenMM's water force fields and Modeller recognise them; box vectors when periodic.

    OpenMM keeps a residue's atoms together, so topology atom ``k`` is ``atoms[order[k]]``
    (``order`` is ``0..n-1`` when the file already lists molecule by molecule); ``positions_nm``
    are in topology order."""
    from ase.neighborlist import natural_cutoffs, neighbor_list
    from openmm import app, unit
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(atoms)
    i, j = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.25))
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    _, molecule = connected_components(graph, directed=False)
    topology = app.Topology()
    chain = topology.addChain()
    atom_objects = [None] * n
    first_of = {}
    for k in range(n):
        first_of.setdefault(molecule[k], k)
    order = []
    for m in sorted(first_of, key=lambda m: first_of[m]):
        members = [k for k in range(n) if molecule[k] == m]
        order.extend(members)
        symbols = sorted(atoms.get_chemical_symbols()[k] for k in members)
        is_water = symbols == ["H", "H", "O"]
        residue = topology.addResidue("HOH" if is_water else residue_name, chain)
        hydrogens = 0
        counts = {}
        for k in members:
            element = app.Element.getByAtomicNumber(int(atoms.numbers[k]))
            if is_water:
                if element.symbol == "O":
                    name = "O"
                else:
                    hydrogens += 1
                    name = f"H{hydrogens}"
            else:
                counts[element.symbol] = counts.get(element.symbol, 0) + 1
                name = f"{element.symbol}{counts[element.symbol]}"
            atom_objects[k] = topology.addAtom(name, element, residue)
    for a, b in zip(i, j):
        if a < b:
            topology.addBond(atom_objects[a], atom_objects[b])
    if atoms.pbc.all():
        topology.setPeriodicBoxVectors(atoms.cell.array * units.ANGSTROM_TO_NM * unit.nanometer)
    elif atoms.pbc.any():
        raise ConfigError(f"the structure is periodic along {atoms.pbc.tolist()} only: OpenMM needs all or none")
    positions = atoms.positions[order] * units.ANGSTROM_TO_NM
    return topology, positions, np.asarray(order, dtype=np.int64)

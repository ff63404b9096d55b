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

import contextlib
import io
import logging
import os
import warnings
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from e3nn.util.jit import compile_mode, script as e3nn_script
from torch import Tensor, nn

from eqff import units
from eqff.data import keys
from eqff.errors import ConfigError, UnknownElementError
from eqff.nn.neighborlist import neighbor_list_torch
from eqff.runtime.inputs import check_elements, from_openmm, single_structure, to_openmm
from eqff.runtime.allocator import keep_freed_memory
from eqff.runtime.loading import PT2_NOT_TORCHSCRIPT, ModelLike, is_pt2_model, load_model
from eqff.runtime.skin import pairs_within, skin_is_stale
from eqff.threads import deploy_threads


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
            x, cell, pbc = from_openmm(x, cell_nm, self.model.potential.energy_scale.dtype, self.nm_to_angstrom)
            if skin_is_stale(x, cell, self.reference_positions, self.reference_cell, self.skin):
                edges, cell_shifts = neighbor_list_torch(x, cell, pbc, self.cutoff + self.skin)
                self.reference_positions = x.clone()
                self.reference_cell = cell.clone()
                self.cached_edge_index = edges
                self.cached_shifts = cell_shifts
                self.neighbor_list_builds += 1
            edge_index, shifts, _ = pairs_within(x, cell, self.cached_edge_index, self.cached_shifts, self.cutoff)
            out = self.model(single_structure(self.atomic_numbers, x, cell, pbc, edge_index, shifts), True, False, False)
            energy, forces = to_openmm(out[keys.ENERGY], out[keys.FORCES], self.ev_to_kj_per_mol,
                                       self.ev_per_angstrom_to_kj_per_mol_nm)
        else:
            energy, forces = self.model.compute_openmm(self.atomic_numbers, x, cell_nm)
        if self.use_indices:
            full = torch.zeros((positions.shape[0], 3), dtype=forces.dtype, device=forces.device)
            forces = full.index_copy(0, self.indices, forces)
        return energy.detach(), forces.detach()


# ---------------------------------------------------------------------------------------------
# building blocks


def load_for_openmm(model: ModelLike, dtype: Union[str, torch.dtype, None] = None, script: bool = True,
                    device: Union[str, torch.device] = "cpu", max_edges_per_chunk: Optional[int] = None) -> nn.Module:
    """The module ``OpenMMModule`` wraps: ``eqff.runtime.load_model(...).module`` (see there for
    the dtype policy and ``max_edges_per_chunk``; the caller's model is never changed)."""
    return load_model(model, dtype=dtype, device=device, script=script, max_edges_per_chunk=max_edges_per_chunk).module


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
                  threads: Optional[int] = None, max_edges_per_chunk: Optional[int] = None) -> OpenMMModule:
    """The module a TorchForce (``subset_positions=True``: forward gets every particle) or a
    PythonForce with ``setParticles`` (``subset_positions=False``: forward gets the ML atoms
    only) runs. See the module docstring for the arguments; ``skin`` (Å) is the neighbour-list
    skin of ``OpenMMModule`` (0: a fresh list every step); ``threads``: torch's intra-op threads
    (None: eqff chooses once per process, eqff/threads.py; the TorchForce's libtorch is this
    process's torch, so the choice applies to it too)."""
    deploy_threads(threads)
    keep_freed_memory(bounded=bool(max_edges_per_chunk))  # no page faults every step (eqff/runtime/allocator.py)
    if hasattr(atoms, "get_atomic_numbers"):  # an ase.Atoms as atoms=: the whole system, its elements
        if topology is not None:
            raise ConfigError("atoms= is an ase.Atoms (the whole system); do not pass topology= as well")
        topology, atoms = atoms, None
    numbers = system_atomic_numbers(topology)
    indices = ml_atoms(atoms, len(numbers))
    if periodic is None:
        periodic = topology_is_periodic(topology)
    ml_numbers = numbers if indices is None else [numbers[i] for i in indices]
    exported = load_for_openmm(model, dtype=dtype, script=script, device=device, max_edges_per_chunk=max_edges_per_chunk)
    check_elements(ml_numbers, exported.atomic_numbers.tolist(), "ML atoms", index=indices)
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
    if is_pt2_model(model):
        raise ConfigError(PT2_NOT_TORCHSCRIPT)
    openmmtorch = import_openmmtorch()
    module = openmm_module(model, topology, atoms, periodic, dtype, subset_positions=True, script=True, skin=skin,
                           threads=threads)
    # Frozen here, with the executor's optimisation on, so that every method forward calls is
    # inlined: openmmtorch freezes again when the Context is built, and if the thread's
    # optimisation is off then (`torch.jit.optimized_execution(False)`, which makes CPU steps
    # 1.2-1.5x faster: README) that freeze drops the methods instead of inlining them.
    periodic = bool(module.periodic)  # frozen modules keep no attributes
    with torch.jit.optimized_execution(True):
        module = torch.jit.freeze(module.eval())
    force = openmmtorch.TorchForce(module)
    force.setOutputsForces(True)
    force.setUsesPeriodicBoundaryConditions(periodic)
    force.setName("eqff TorchForce")
    return force


def import_openmmtorch():
    """``openmmtorch``, or a clear error: it must be imported after torch (it links torch's
    libraries) and works only with the torch it was built for (torch 2.9 for openmmtorch 1.5)."""
    import torch  # noqa: F401  (loads the libraries openmmtorch links against)

    try:
        with _quiet_simtk_warning():
            import openmmtorch
    except ImportError as error:
        raise ImportError(f"openmmtorch cannot be imported with torch {torch.__version__} ({error}); use "
                          "eqff.openmm.python_force (implementation='pythonforce'), which works with any torch") from error
    _reload_torch_plugins()
    return openmmtorch


@contextlib.contextmanager
def _quiet_simtk_warning():
    """openmmtorch 1.5 imports the deprecated ``simtk.openmm``, which logs "importing 'simtk.openmm'
    is deprecated" on the root logger: a warning about openmmtorch's code, not the user's, so it is
    dropped while openmmtorch loads (every other log record passes)."""
    def drop(record) -> bool:
        return "simtk.openmm" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


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
        if is_pt2_model(getattr(module, "model", None)):  # the package bytes and the module's settings
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
                 threads: Optional[int] = None, max_edges_per_chunk: Optional[int] = None):
    """An ``openmm.PythonForce`` running the potential with any torch, on ``device`` (e.g.
    "cuda" when TorchForce is unavailable). Same arguments as ``torch_force``; ``script=False``
    runs an in-memory or checkpoint model eagerly (TorchScript exports run scripted anyway, a
    ``.pt2`` export compiled). ``max_edges_per_chunk`` bounds the memory of an eager model on
    large systems (``eqff.runtime.load_model``)."""
    import openmm

    module = openmm_module(model, topology, atoms, periodic, dtype, subset_positions=False, script=script,
                           device=device, skin=skin, threads=threads, max_edges_per_chunk=max_edges_per_chunk)
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
    if name == "auto" and is_pt2_model(model):
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

"""The energy model wrapper: per-atom energies -> total energy, forces, stress.

One wrapper serves every architecture (NequIP/MACE practice). Edge vectors are computed here,
inside autograd, from positions, integer cell shifts and the cell, so

    forces = -dE/dx            (exact gradient: conservative, equivariant)
    virial = -dE/d(strain)     (symmetric strain applied to positions and cell)
    stress = -virial / V       (ASE sign: (1/V) dE/d(strain))

all come from one ``torch.autograd.grad`` call. The model maps atomic numbers to its own
species indices and refuses elements it does not know.
"""
import json
from typing import Any, Dict, List, Optional

import torch
from e3nn.util.jit import compile_mode
from torch import Tensor, nn

from eqff.data import keys
from eqff.models.priors import ZBLRepulsion
from eqff.nn.geometry import edge_vectors
from eqff.nn.scatter import scatter_sum


@compile_mode("script")
class Potential(nn.Module):
    def __init__(self, model: nn.Module, config: Dict[str, Any]):
        super().__init__()
        self.model = model
        self.kind: str = str(config["kind"])
        self.cutoff: float = float(config["cutoff"])
        self.config_json: str = json.dumps(config, sort_keys=True)
        numbers = [int(z) for z in config["elements"]]
        self.register_buffer("atomic_numbers", torch.tensor(numbers, dtype=torch.long))
        species_of_z = torch.full((119,), -1, dtype=torch.long)
        species_of_z[torch.tensor(numbers, dtype=torch.long)] = torch.arange(len(numbers))
        self.register_buffer("species_of_z", species_of_z)
        # E_i = scale[s_i] * e_i + shift[s_i]; set from the training data (E0s, force RMS).
        self.register_buffer("energy_scale", torch.ones(len(numbers)))
        self.register_buffer("energy_shift", torch.zeros(len(numbers)))
        # optional physical prior (see eqff/models/priors.py); built always, used if configured
        self.use_zbl: bool = config.get("prior") == "zbl"
        self.zbl = ZBLRepulsion(numbers)

    @torch.jit.ignore
    def config(self) -> Dict[str, Any]:
        return json.loads(self.config_json)

    def species(self, atomic_numbers: Tensor) -> Tensor:
        in_range = (atomic_numbers >= 0) & (atomic_numbers < 119)
        species = self.species_of_z[torch.where(in_range, atomic_numbers, torch.zeros_like(atomic_numbers))]
        species = torch.where(in_range, species, torch.full_like(species, -1))
        if bool((species < 0).any()):
            unknown: List[int] = torch.unique(atomic_numbers[species < 0]).tolist()
            known: List[int] = self.atomic_numbers.tolist()
            raise ValueError(
                "eqff: atomic numbers " + str(unknown) + " are not elements of this model, which knows "
                + str(known) + "; use a model trained on these elements"
            )
        return species

    def check_separation(self, vectors: Tensor, edge_index: Tensor) -> None:
        """Coincident atoms (r -> 0) have no defined energy model: refuse them instead of
        returning NaN (radial bases and harmonics divide by r)."""
        if vectors.shape[0] == 0:
            return
        distance_sq = (vectors.detach() * vectors.detach()).sum(dim=-1)
        closest = int(torch.argmin(distance_sq))
        if float(distance_sq[closest]) < 1e-6:  # eqff.data.neighbors.MIN_SEPARATION ** 2 (TorchScript reads no globals)
            i = int(edge_index[0, closest])
            j = int(edge_index[1, closest])
            raise ValueError("eqff: atoms " + str(i) + " and " + str(j) + " are "
                             + str(float(torch.sqrt(distance_sq[closest]))) + " Å apart (coincident); "
                             + "remove duplicated atoms or check the coordinates")

    def forward(self, data: Dict[str, Tensor], compute_forces: bool = True, compute_stress: bool = False,
                create_graph: bool = False, compute_features: bool = False) -> Dict[str, Tensor]:
        positions = data[keys.POSITIONS]
        cell = data[keys.CELL]
        batch = data[keys.BATCH]
        num_graphs = cell.shape[0]
        species = self.species(data[keys.ATOMIC_NUMBERS])

        inputs: List[Tensor] = []
        if compute_forces:
            positions = positions.detach().requires_grad_(True)
            inputs.append(positions)
        if compute_stress:
            strain = torch.zeros((num_graphs, 3, 3), dtype=positions.dtype, device=positions.device).requires_grad_(True)
            symmetric = 0.5 * (strain + strain.transpose(1, 2))
            inputs.append(strain)
            positions = positions + torch.bmm(positions.unsqueeze(1), symmetric[batch]).squeeze(1)
            cell = cell + torch.bmm(cell, symmetric)

        vectors = edge_vectors(positions, cell, batch, data[keys.EDGE_INDEX], data[keys.CELL_SHIFTS])
        self.check_separation(vectors, data[keys.EDGE_INDEX])
        raw, features = self.model.energies_and_features(species, data[keys.EDGE_INDEX], vectors)
        atomic_energies = self.energy_scale[species] * raw + self.energy_shift[species]
        if self.use_zbl:
            atomic_energies = atomic_energies + self.zbl(species, data[keys.EDGE_INDEX], vectors)
        energy = scatter_sum(atomic_energies, batch, num_graphs)
        out: Dict[str, Tensor] = {keys.ENERGY: energy, keys.ATOMIC_ENERGIES: atomic_energies}
        if compute_features:  # scaled so that E_i is linear in them (eqff/runtime/llpr.py)
            out[keys.NODE_FEATURES] = (self.energy_scale[species].unsqueeze(-1) * features).detach()
        if len(inputs) == 0:
            return out

        grad_outputs: List[Optional[Tensor]] = [torch.ones_like(energy)]
        grads = torch.autograd.grad([energy], inputs, grad_outputs=grad_outputs,
                                    create_graph=create_graph, allow_unused=True)
        k = 0
        if compute_forces:
            gradient = grads[0]
            out[keys.FORCES] = -gradient if gradient is not None else torch.zeros_like(positions)
            k = 1
        if compute_stress:
            gradient = grads[k]
            if gradient is None:
                gradient = torch.zeros((num_graphs, 3, 3), dtype=positions.dtype, device=positions.device)
            volume = torch.abs(torch.linalg.det(data[keys.CELL])).view(-1, 1, 1)
            safe_volume = torch.where(volume > 0, volume, torch.ones_like(volume))
            out[keys.VIRIAL] = -gradient
            out[keys.STRESS] = torch.where(volume > 0, gradient / safe_volume, torch.zeros_like(gradient))
        return out

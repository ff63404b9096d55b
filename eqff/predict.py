"""Energies, forces and stress of many structures with a potential (eager or exported)."""
from __future__ import annotations

from typing import Dict, List, Sequence, Union

import numpy as np
import torch
from ase import Atoms

from eqff.data import keys
from eqff.data.frames import Frame, validate_frame
from eqff.data.graph import collate, frame_to_graph


def model_dtype(potential: torch.nn.Module) -> torch.dtype:
    for tensor in potential.parameters():
        return tensor.dtype
    return torch.get_default_dtype()


def model_device(potential: torch.nn.Module) -> torch.device:
    for tensor in potential.parameters():
        return tensor.device
    return torch.device("cpu")


def predict(
    potential: torch.nn.Module,
    structures: Sequence[Union[Atoms, Frame]],
    compute_stress: bool = False,
    batch_size: int = 16,
    compute_forces: bool = True,
) -> List[Dict[str, np.ndarray]]:
    """One dict per structure: energy (eV), forces (eV/Å), atomic_energies, stress (eV/Å³, 3x3)."""
    frames = [s if isinstance(s, Frame) else Frame.from_atoms(s, source=f"structure {k}") for k, s in enumerate(structures)]
    for frame in frames:
        validate_frame(frame, require_energy=False, require_forces=False)
    dtype, device = model_dtype(potential), model_device(potential)
    results: List[Dict[str, np.ndarray]] = []
    for start in range(0, len(frames), batch_size):
        chunk = frames[start : start + batch_size]
        batch = collate([frame_to_graph(f, potential.cutoff) for f in chunk], dtype=dtype, device=device)
        with torch.set_grad_enabled(compute_forces or compute_stress):
            out = potential(batch, compute_forces=compute_forces, compute_stress=compute_stress)
        out = {k: v.detach().cpu().numpy() for k, v in out.items()}
        atom_batch = batch[keys.BATCH].cpu().numpy()
        for b in range(len(chunk)):
            atoms_of_b = atom_batch == b
            result = {
                keys.ENERGY: out[keys.ENERGY][b],
                keys.ATOMIC_ENERGIES: out[keys.ATOMIC_ENERGIES][atoms_of_b],
            }
            if compute_forces:
                result[keys.FORCES] = out[keys.FORCES][atoms_of_b]
            if compute_stress:
                result[keys.STRESS] = out[keys.STRESS][b]
            results.append(result)
    return results

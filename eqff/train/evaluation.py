"""Predictions and error metrics of a potential over a list of graphs (validation, test,
``eqff evaluate``)."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from eqff.data import keys
from eqff.data.graph import collate
from eqff.predict import model_device, model_dtype
from eqff.train.metrics import error_metrics


def split_predictions(out: Dict[str, torch.Tensor], batch: Dict[str, torch.Tensor]) -> List[Dict[str, np.ndarray]]:
    """A batch's outputs as one numpy dict per structure (energy, forces, stress if present)."""
    atom_batch = batch[keys.BATCH].cpu().numpy()
    energy = out[keys.ENERGY].detach().cpu().double().numpy()
    forces = out[keys.FORCES].detach().cpu().double().numpy()
    stress = out[keys.STRESS].detach().cpu().double().numpy() if keys.STRESS in out else None
    energy_std = out[keys.ENERGY_STD].detach().cpu().double().numpy() if keys.ENERGY_STD in out else None
    forces_std = out[keys.FORCES_STD].detach().cpu().double().numpy() if keys.FORCES_STD in out else None
    predictions = []
    for b in range(len(energy)):
        prediction = {"energy": energy[b], "forces": forces[atom_batch == b]}
        if stress is not None:
            prediction["stress"] = stress[b]
        if energy_std is not None:  # an uncertainty (a committee's, or last-layer: eqff/runtime/llpr.py)
            prediction["energy_std"] = energy_std[b]
            prediction["forces_std"] = forces_std[atom_batch == b]
        predictions.append(prediction)
    return predictions


def predict_graphs(potential: torch.nn.Module, graphs: Sequence[Dict[str, np.ndarray]], batch_size: int,
                   compute_stress: bool) -> List[Dict[str, np.ndarray]]:
    dtype, device = model_dtype(potential), model_device(potential)
    predictions: List[Dict[str, np.ndarray]] = []
    for start in range(0, len(graphs), batch_size):
        batch = collate(graphs[start : start + batch_size], dtype=dtype, device=device)
        out = potential(batch, compute_forces=True, compute_stress=compute_stress)
        predictions.extend(split_predictions(out, batch))
    return predictions


def references(graphs: Sequence[Dict[str, np.ndarray]]) -> List[Dict[str, np.ndarray]]:
    refs = []
    for g in graphs:
        refs.append({
            "energy": float(g[keys.ENERGY]),
            "forces": g[keys.FORCES] if bool(g[keys.HAS_FORCES]) else None,
            "stress": g[keys.STRESS] if bool(g[keys.HAS_STRESS]) else None,
            "n_atoms": len(g[keys.ATOMIC_NUMBERS]),
        })
    return refs


def evaluate_graphs(potential: torch.nn.Module, graphs: Sequence[Dict[str, np.ndarray]], batch_size: int = 16
                    ) -> Tuple[Dict[str, float], List[Dict[str, np.ndarray]], List[Dict[str, np.ndarray]]]:
    refs = references(graphs)
    with_stress = any(r["stress"] is not None for r in refs)
    predictions = predict_graphs(potential, graphs, batch_size, with_stress)
    return error_metrics(predictions, refs), predictions, refs


def evaluate_file(potential: torch.nn.Module, path: str, config=None, batch_size: int = 16,
                  energy_key: str = "energy", forces_key: str = "forces", stress_key: str = "stress"):
    """Metrics of ``potential`` on every non-isolated frame of ``path``; an element the model
    does not know is an ``UnknownElementError`` naming it."""
    if config is not None:
        energy_key, forces_key, stress_key = config.energy_key, config.forces_key, config.stress_key
        batch_size = config.valid_batch_size
    graphs = graphs_of_file(potential, path, energy_key, forces_key, stress_key)
    return evaluate_graphs(potential, graphs, batch_size)


def graphs_of_file(potential: torch.nn.Module, path: str, energy_key: str = "energy", forces_key: str = "forces",
                   stress_key: str = "stress") -> List[Dict[str, np.ndarray]]:
    """The non-isolated frames of ``path`` as graphs at the potential's cutoff (labels where present)."""
    from eqff.data.frames import read_frames
    from eqff.data.graph import frame_to_graph
    from eqff.errors import UnknownElementError, element_names

    frames = [f for f in read_frames(path, energy_key=energy_key, forces_key=forces_key, stress_key=stress_key,
                                     require_forces=False) if not f.is_isolated_atom]
    known = set(int(z) for z in potential.atomic_numbers.tolist())
    present = set(int(z) for f in frames for z in f.numbers)
    if present - known:
        raise UnknownElementError(f"{path}: holds {element_names(present - known)}, which the model does not know "
                                  f"(it knows {element_names(known)}); use a model trained on these elements")
    return [frame_to_graph(f, float(potential.cutoff)) for f in frames]

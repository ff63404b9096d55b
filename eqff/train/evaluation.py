"""Predictions and error metrics of a potential over a list of graphs (validation, test,
``eqff evaluate``)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

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
                  energy_key: str = "energy", forces_key: str = "forces", stress_key: str = "stress",
                  group_key: Optional[str] = None):
    """Metrics of ``potential`` on every non-isolated frame of ``path``; an element the model
    does not know is an ``UnknownElementError`` naming it. With ``group_key`` (an ``atoms.info``
    key such as config_type), also the metrics of each group of frames when there are two or more:
    ``metrics["by_group"]``. A training ``config`` gives the label keys, batch size and group key."""
    if config is not None:
        energy_key, forces_key, stress_key = config.energy_key, config.forces_key, config.stress_key
        batch_size, group_key = config.valid_batch_size, config.config_type_key
    frames = labelled_frames(potential, path, energy_key, forces_key, stress_key, group_key or "config_type")
    return evaluate_frames(potential, frames, batch_size, group_key)


def evaluate_frames(potential: torch.nn.Module, frames: Sequence, batch_size: int = 16,
                    group_key: Optional[str] = None):
    """``evaluate_file`` on frames already read (``labelled_frames``)."""
    from eqff.data.graph import frame_to_graph

    graphs = [frame_to_graph(f, float(potential.cutoff)) for f in frames]
    metrics, predictions, refs = evaluate_graphs(potential, graphs, batch_size)
    groups = [f.config_type for f in frames]
    if group_key is not None and len(set(groups)) > 1:  # one group (or none): the table says it all
        metrics["by_group"] = errors_by_group(predictions, refs, groups)
        metrics["group_key"] = group_key
    return metrics, predictions, refs


def errors_by_group(predictions: Sequence[Dict[str, np.ndarray]], refs: Sequence[Dict[str, np.ndarray]],
                    groups: Sequence[Optional[str]]) -> Dict[str, Dict[str, float]]:
    """``error_metrics`` of each group of structures (frames without a group: "(none)")."""
    names = ["(none)" if g is None else str(g) for g in groups]
    return {name: error_metrics([p for p, n in zip(predictions, names) if n == name],
                                [r for r, n in zip(refs, names) if n == name])
            for name in sorted(set(names))}


def graphs_of_file(potential: torch.nn.Module, path: str, energy_key: str = "energy", forces_key: str = "forces",
                   stress_key: str = "stress") -> List[Dict[str, np.ndarray]]:
    """The non-isolated frames of ``path`` as graphs at the potential's cutoff (labels where present)."""
    from eqff.data.graph import frame_to_graph

    return [frame_to_graph(f, float(potential.cutoff))
            for f in labelled_frames(potential, path, energy_key, forces_key, stress_key)]


def labelled_frames(potential: torch.nn.Module, path: str, energy_key: str = "energy", forces_key: str = "forces",
                    stress_key: str = "stress", config_type_key: str = "config_type") -> list:
    """The non-isolated frames of ``path``, checked against the potential's elements."""
    from eqff.data.frames import read_frames
    from eqff.errors import UnknownElementError, element_names

    frames = [f for f in read_frames(path, energy_key=energy_key, forces_key=forces_key, stress_key=stress_key,
                                     require_forces=False, config_type_key=config_type_key) if not f.is_isolated_atom]
    known = set(int(z) for z in potential.atomic_numbers.tolist())
    present = set(int(z) for f in frames for z in f.numbers)
    if present - known:
        raise UnknownElementError(f"{path}: holds {element_names(present - known)}, which the model does not know "
                                  f"(it knows {element_names(known)}); use a model trained on these elements")
    return frames

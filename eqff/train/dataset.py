"""Training data: read, split (seeded), E0s and statistics, neighbour lists computed once."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch

from eqff.data import keys
from eqff.data.frames import Frame, frames_hash, read_frames
from eqff.data.graph import collate, frame_to_graph
from eqff.errors import ConfigError, DataError
from eqff.train.config import TrainConfig
from eqff.train import statistics


@dataclass
class PreparedData:
    train: List[Dict[str, np.ndarray]]  # graphs
    valid: List[Dict[str, np.ndarray]]
    elements: List[int]
    e0s: Dict[int, float]
    stats: Dict[str, float]
    avg_num_neighbors: float
    data_hash: str
    stress_weight: float
    energy_weight: float  # the config's, or chosen from the data (statistics.auto_energy_weight)
    stage_two_at: Optional[float]  # the config's, or chosen from the data (statistics.auto_stage_two_at)


def _read(path: str, config: TrainConfig, require_forces: bool) -> List[Frame]:
    return read_frames(path, energy_key=config.energy_key, forces_key=config.forces_key,
                       stress_key=config.stress_key, require_forces=require_forces,
                       config_type_key=config.config_type_key)


def weigh(graphs: List[Dict[str, np.ndarray]], frames: List[Frame], config: TrainConfig) -> None:
    """Give every graph its config type's loss weight (keys.WEIGHT), when weights are set."""
    if not config.config_type_weights:
        return
    present = sorted({str(f.config_type) for f in frames if f.config_type is not None})
    missing = sorted(set(config.config_type_weights) - set(present))
    if missing:
        raise ConfigError(f"config_type_weights names {missing}, which no training or validation frame has as "
                          f"'{config.config_type_key}' (the frames have {present or 'none'}); check the names, "
                          "or set config_type_key to the atoms.info key that holds them")
    for graph, frame in zip(graphs, frames):
        graph[keys.WEIGHT] = np.asarray(float(config.config_type_weights.get(str(frame.config_type), 1.0)))


def split_frames(frames: List[Frame], config: TrainConfig) -> tuple[List[Frame], List[Frame]]:
    """Seeded split of one file into training and validation frames."""
    order = np.random.default_rng(config.seed).permutation(len(frames))
    n_valid = config.n_valid if config.n_valid is not None else int(round(config.valid_fraction * len(frames)))
    if config.valid_file is None and n_valid < 1:
        raise ConfigError(f"{config.train_file}: the validation split is empty; raise valid_fraction or give valid_file")
    valid = [frames[i] for i in order[:n_valid]]
    train = [frames[i] for i in order[n_valid:]]
    return train, valid


def prepare_data(config: TrainConfig) -> PreparedData:
    require_forces = config.forces_weight > 0
    frames = _read(config.train_file, config, require_forces)
    isolated = [f for f in frames if f.is_isolated_atom]
    frames = [f for f in frames if not f.is_isolated_atom]
    if not frames:
        raise DataError(f"{config.train_file}: holds only isolated atoms, nothing to train on")
    if config.valid_file:
        train = frames
        valid = [f for f in _read(config.valid_file, config, require_forces) if not f.is_isolated_atom]
        if config.n_train is not None:
            order = np.random.default_rng(config.seed).permutation(len(train))
            train = [train[i] for i in order]
    else:
        train, valid = split_frames(frames, config)
    if config.n_train is not None:
        if config.n_train > len(train):
            raise ConfigError(f"n_train is {config.n_train} but only {len(train)} training frames are available")
        train = train[: config.n_train]
    stress_weight = config.stress_weight
    if stress_weight is None:
        stress_weight = 1.0 if any(f.stress is not None for f in train) else 0.0
    statistics.check_labels(train, config.forces_weight, stress_weight, config.train_file)

    elements = statistics.elements_of(train + isolated)
    unknown = sorted(set(statistics.elements_of(valid)) - set(elements))
    if unknown:
        raise DataError(f"{config.valid_file or config.train_file}: validation frames hold elements {unknown} absent from training")
    e0s = statistics.resolve_e0s(config.e0s, train, isolated, elements, config.energy_key)
    stats = statistics.energy_statistics(train, e0s)
    energy_weight = config.energy_weight
    if energy_weight is None:
        energy_weight = statistics.auto_energy_weight(train, e0s, config.forces_weight)
    stage_two_at = config.stage_two_at
    if stage_two_at == "auto":
        stage_two_at = statistics.auto_stage_two_at(train, e0s, config.forces_weight)
    elif stage_two_at == "off":
        stage_two_at = None
    train_graphs = [frame_to_graph(f, config.cutoff) for f in train]
    valid_graphs = [frame_to_graph(f, config.cutoff) for f in valid]
    weigh(train_graphs + valid_graphs, train + valid, config)
    return PreparedData(
        train=train_graphs, valid=valid_graphs, elements=elements, e0s=e0s, stats=stats,
        avg_num_neighbors=statistics.average_num_neighbors(train_graphs),
        data_hash=frames_hash(train + valid), stress_weight=stress_weight, energy_weight=energy_weight,
        stage_two_at=stage_two_at,
    )


def epoch_batches(n: int, batch_size: int, epoch: int, seed: int, rank: int = 0, world_size: int = 1) -> List[List[int]]:
    """Training batches of one epoch (the ragged last batch is dropped). The same seeded
    permutation serves any number of processes: process r takes every world_size-th index, so
    the union of the processes' k-th batches is exactly the single-process k-th batch."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=generator).tolist()
    n_batches = max(n // batch_size, 1)
    return [order[k * batch_size : (k + 1) * batch_size][rank::world_size] for k in range(n_batches)]


def sequential_batches(n: int, batch_size: int) -> List[List[int]]:
    return [list(range(start, min(start + batch_size, n))) for start in range(0, n, batch_size)]


def iterate(graphs: Sequence[Dict[str, np.ndarray]], batches: List[List[int]], dtype: torch.dtype,
            device: torch.device) -> Iterator[Dict[str, torch.Tensor]]:
    for indices in batches:
        yield collate([graphs[i] for i in indices], dtype=dtype, device=device)

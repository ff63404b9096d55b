"""Fitting potentials: config, data preparation, loss, EMA, schedule, checkpoints, the trainer."""
from eqff.train.config import TrainConfig, make_config
from eqff.train.trainer import Trainer, TrainingDiverged, train

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "make_config", "train"]

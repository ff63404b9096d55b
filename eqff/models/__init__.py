"""Energy models on one message-passing frame, and the potential wrapper around them."""
from eqff.models.potential import Potential
from eqff.models.registry import MODELS, build_from_config, build_model, hyperparameter_defaults

__all__ = ["MODELS", "Potential", "build_from_config", "build_model", "hyperparameter_defaults"]

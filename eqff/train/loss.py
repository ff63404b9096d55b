"""Weighted loss on energy per atom, force components and stress (MSE or Huber).

Structures without a label (masks ``has_energy``/``has_forces``/``has_stress``) do not
contribute to that term; a term with no labelled structure in the batch contributes zero.
A batch with per-structure weights (``weight``: TrainConfig.config_type_weights) scales each
structure's energy and stress errors and its atoms' force errors by its weight, inside the mean
(as MACE's config_type_weights), so weights of 1 give the unweighted loss exactly.
"""
from typing import Dict, Optional

import torch
from torch import Tensor

from eqff.data import keys


class WeightedLoss:
    def __init__(self, energy_weight: float, forces_weight: float, stress_weight: float,
                 kind: str = "mse", huber_delta: float = 0.01):
        self.weights = {keys.ENERGY: energy_weight, keys.FORCES: forces_weight, keys.STRESS: stress_weight}
        self.kind = kind
        self.huber_delta = huber_delta

    def _error(self, predicted: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        """Mean error over the rows of ``predicted``; ``weight`` [rows] scales each row's errors."""
        if predicted.numel() == 0:
            return predicted.sum() * 0.0
        if self.kind == "huber":
            error = torch.nn.functional.huber_loss(predicted, target, delta=self.huber_delta, reduction="none")
        else:
            error = (predicted - target) ** 2
        if weight is not None:
            error = error * weight.reshape((-1,) + (1,) * (error.dim() - 1))
        return torch.mean(error)

    def terms(self, predicted: Dict[str, Tensor], batch: Dict[str, Tensor]) -> Dict[str, Tensor]:
        atoms_per_structure = torch.bincount(batch[keys.BATCH], minlength=batch[keys.CELL].shape[0]).to(predicted[keys.ENERGY].dtype)
        terms: Dict[str, Tensor] = {}
        weight = batch.get(keys.WEIGHT)  # [B] or None
        has_energy = batch[keys.HAS_ENERGY]
        terms[keys.ENERGY] = self._error((predicted[keys.ENERGY] / atoms_per_structure)[has_energy],
                                         (batch[keys.ENERGY] / atoms_per_structure)[has_energy],
                                         None if weight is None else weight[has_energy])
        if self.weights[keys.FORCES] > 0:
            atom_has_forces = batch[keys.HAS_FORCES][batch[keys.BATCH]]
            terms[keys.FORCES] = self._error(predicted[keys.FORCES][atom_has_forces], batch[keys.FORCES][atom_has_forces],
                                             None if weight is None else weight[batch[keys.BATCH]][atom_has_forces])
        if self.weights[keys.STRESS] > 0:
            has_stress = batch[keys.HAS_STRESS]
            terms[keys.STRESS] = self._error(predicted[keys.STRESS][has_stress], batch[keys.STRESS][has_stress],
                                             None if weight is None else weight[has_stress])
        return terms

    def __call__(self, predicted: Dict[str, Tensor], batch: Dict[str, Tensor]) -> Tensor:
        terms = self.terms(predicted, batch)
        return sum(self.weights[k] * v for k, v in terms.items())

    @property
    def needs_stress(self) -> bool:
        return self.weights[keys.STRESS] > 0

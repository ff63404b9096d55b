"""Weighted loss on energy per atom, force components and stress (MSE or Huber).

Structures without a label (masks ``has_energy``/``has_forces``/``has_stress``) do not
contribute to that term; a term with no labelled structure in the batch contributes zero.
"""
from typing import Dict

import torch
from torch import Tensor

from eqff.data import keys


class WeightedLoss:
    def __init__(self, energy_weight: float, forces_weight: float, stress_weight: float,
                 kind: str = "mse", huber_delta: float = 0.01):
        self.weights = {keys.ENERGY: energy_weight, keys.FORCES: forces_weight, keys.STRESS: stress_weight}
        self.kind = kind
        self.huber_delta = huber_delta

    def _error(self, predicted: Tensor, target: Tensor) -> Tensor:
        if predicted.numel() == 0:
            return predicted.sum() * 0.0
        if self.kind == "huber":
            return torch.nn.functional.huber_loss(predicted, target, delta=self.huber_delta)
        return torch.mean((predicted - target) ** 2)

    def terms(self, predicted: Dict[str, Tensor], batch: Dict[str, Tensor]) -> Dict[str, Tensor]:
        atoms_per_structure = torch.bincount(batch[keys.BATCH], minlength=batch[keys.CELL].shape[0]).to(predicted[keys.ENERGY].dtype)
        terms: Dict[str, Tensor] = {}
        has_energy = batch[keys.HAS_ENERGY]
        terms[keys.ENERGY] = self._error((predicted[keys.ENERGY] / atoms_per_structure)[has_energy],
                                         (batch[keys.ENERGY] / atoms_per_structure)[has_energy])
        if self.weights[keys.FORCES] > 0:
            atom_has_forces = batch[keys.HAS_FORCES][batch[keys.BATCH]]
            terms[keys.FORCES] = self._error(predicted[keys.FORCES][atom_has_forces], batch[keys.FORCES][atom_has_forces])
        if self.weights[keys.STRESS] > 0:
            has_stress = batch[keys.HAS_STRESS]
            terms[keys.STRESS] = self._error(predicted[keys.STRESS][has_stress], batch[keys.STRESS][has_stress])
        return terms

    def __call__(self, predicted: Dict[str, Tensor], batch: Dict[str, Tensor]) -> Tensor:
        terms = self.terms(predicted, batch)
        return sum(self.weights[k] * v for k, v in terms.items())

    @property
    def needs_stress(self) -> bool:
        return self.weights[keys.STRESS] > 0

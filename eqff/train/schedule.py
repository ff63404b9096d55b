"""Learning rate: linear warm-up from lr/10, then reduce-on-plateau or cosine decay.

One small class with an exact state_dict, so ``--resume`` continues the same schedule.
"""
import math
from typing import Dict

import torch


class LearningRateSchedule:
    def __init__(self, optimizer: torch.optim.Optimizer, lr: float, warmup_steps: int, mode: str,
                 total_steps: int, plateau_factor: float, plateau_patience: int, min_lr: float):
        self.optimizer = optimizer
        self.base_lr = lr
        self.warmup_steps = max(int(warmup_steps), 0)
        self.mode = mode
        self.total_steps = max(int(total_steps), 1)
        self.factor = plateau_factor
        self.patience = plateau_patience
        self.min_lr = min_lr
        self.step_count = 0
        self.plateau_lr = lr  # current ceiling under reduce-on-plateau
        self.best = math.inf
        self.bad_epochs = 0
        self._apply()

    def current(self) -> float:
        if self.step_count < self.warmup_steps:
            return self.base_lr * (0.1 + 0.9 * self.step_count / self.warmup_steps)
        if self.mode == "cosine":
            progress = min((self.step_count - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 1.0)
            return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))
        return self.plateau_lr

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.current()

    def step_batch(self) -> None:
        self.step_count += 1
        self._apply()

    def step_epoch(self, valid_loss: float) -> None:
        if self.mode != "plateau" or self.step_count < self.warmup_steps:
            return
        if valid_loss < self.best * (1.0 - 1e-4):
            self.best = valid_loss
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                self.plateau_lr = max(self.plateau_lr * self.factor, self.min_lr)
                self.bad_epochs = 0
        self._apply()

    def scale(self, factor: float) -> None:
        """Multiply the learning rate from now on (after a roll-back from divergence)."""
        self.base_lr *= factor
        self.plateau_lr = max(self.plateau_lr * factor, self.min_lr)
        self._apply()

    def state_dict(self) -> Dict:
        return {k: getattr(self, k) for k in ("step_count", "plateau_lr", "best", "bad_epochs", "base_lr")}

    def load_state_dict(self, state: Dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self._apply()

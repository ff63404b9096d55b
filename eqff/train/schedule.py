"""Learning rate: linear warm-up from lr/10, then reduce-on-plateau, or a cosine decay over the
run's budget.

The budget is whichever ends first of ``max_epochs`` and the wall-time limit ``max_time_min``:
progress = max(steps / total steps, elapsed / time limit). Decaying to the end of the budget the
user gave, rather than waiting for a plateau that a short run never reaches, is what makes a
fixed-budget run accurate (Li et al., "Budgeted training", ICLR 2020; measured in
benchmarks/RESULTS.md, issue 12). One small class with an exact state_dict, so ``--resume``
continues the same schedule (the elapsed time of earlier sessions is part of the checkpoint).
"""
import math
from typing import Dict, Optional

import torch


class LearningRateSchedule:
    def __init__(self, optimizer: torch.optim.Optimizer, lr: float, warmup_steps: int, mode: str,
                 total_steps: int, plateau_factor: float, plateau_patience: int, min_lr: float,
                 time_budget_s: Optional[float] = None):
        self.optimizer = optimizer
        self.base_lr = lr
        self.warmup_steps = max(int(warmup_steps), 0)
        self.mode = mode
        self.total_steps = max(int(total_steps), 1)
        self.time_budget_s = time_budget_s
        self.factor = plateau_factor
        self.patience = plateau_patience
        self.min_lr = min_lr
        self.step_count = 0
        self.elapsed_s = 0.0
        self.plateau_lr = lr  # current ceiling under reduce-on-plateau
        self.best = math.inf
        self.bad_epochs = 0
        self._apply()

    def progress(self) -> float:
        """Fraction of the budget used, 0..1 (steps or wall time, whichever is further)."""
        fraction = self.step_count / self.total_steps
        if self.time_budget_s:
            fraction = max(fraction, self.elapsed_s / self.time_budget_s)
        return min(fraction, 1.0)

    def current(self) -> float:
        if self.step_count < self.warmup_steps:
            return self.base_lr * (0.1 + 0.9 * self.step_count / self.warmup_steps)
        if self.mode == "cosine":
            # cosine over the part of the budget after the warm-up
            start = self.warmup_steps / self.total_steps
            progress = min(max((self.progress() - start) / max(1.0 - start, 1e-9), 0.0), 1.0)
            return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))
        return self.plateau_lr

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.current()

    def step_batch(self, elapsed_s: Optional[float] = None) -> None:
        """After each optimizer step; ``elapsed_s``: wall time of the whole run so far."""
        self.step_count += 1
        if elapsed_s is not None:
            self.elapsed_s = float(elapsed_s)
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
        return {k: getattr(self, k) for k in ("step_count", "plateau_lr", "best", "bad_epochs", "base_lr", "elapsed_s")}

    def load_state_dict(self, state: Dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self._apply()

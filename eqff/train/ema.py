"""Exponential moving average of the weights, used for validation and for the saved model.

Kept as plain tensors (``copy.deepcopy`` of e3nn models fails, and a state_dict is what a
checkpoint stores anyway). The effective decay ramps up as min(decay, (1+n)/(10+n)) so the
first updates do not drag the average towards the random initialisation.
"""
from contextlib import contextmanager
from typing import Dict, Iterator

import torch


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.updates = 0
        self.shadow: Dict[str, torch.Tensor] = {
            name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad
        }

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for name, p in model.named_parameters():
            if name in self.shadow:
                self.shadow[name].mul_(decay).add_(p.detach(), alpha=1.0 - decay)

    @contextmanager
    def applied(self, model: torch.nn.Module) -> Iterator[None]:
        """Temporarily load the averaged weights into ``model`` (no-op if decay is 0)."""
        if self.decay <= 0:
            yield
            return
        backup = {name: p.detach().clone() for name, p in model.named_parameters() if name in self.shadow}
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in self.shadow:
                    p.copy_(self.shadow[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if name in backup:
                        p.copy_(backup[name])

    @torch.no_grad()
    def reset(self, model: torch.nn.Module) -> None:
        """Start averaging again from the weights ``model`` has now."""
        for name, p in model.named_parameters():
            if name in self.shadow:
                self.shadow[name].copy_(p.detach())

    def state_dict(self) -> Dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: Dict, model: torch.nn.Module) -> None:
        """Restore the average saved with ``model``'s parameters. The averaged weights pass through
        ``model.load_state_dict`` so that the model's own checkpoint migrations (renamed parameters
        of older versions) apply to them too; ``model`` keeps the weights it had."""
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        kept = {name: value.detach().clone() for name, value in model.state_dict().items()}
        try:
            result = model.load_state_dict(state["shadow"], strict=False)  # the shadow has no buffers
            missing = [name for name in result.missing_keys if name in self.shadow]
            if result.unexpected_keys or missing:
                raise KeyError(f"the saved weight average does not match this model: parameters it lacks "
                               f"{missing}, parameters the model lacks {result.unexpected_keys}")
            self.reset(model)
        finally:
            model.load_state_dict(kept)

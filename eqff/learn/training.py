"""One round's committee: N models trained with eqff's own trainer, different seeds, each warm
started from the same member of the previous round (TrainConfig.init_from). A member whose run
was interrupted continues from its own last.pt (TrainConfig.resume)."""
from __future__ import annotations

import os
from typing import Any, Dict

from eqff.learn.config import LearnConfig
from eqff.train.config import TrainConfig, make_config

# A warm round starts from a trained model: at round 0's peak learning rate it first unlearns (rMD17
# aspirin, EGNN, lr 0.01: validation forces 73.8 -> 111 meV/A in the first epochs of round 1), so
# unless train_warm names an lr, warm rounds fine-tune at this fraction of round 0's.
WARM_LR_FACTOR = 0.2


def member_folder(round_dir: str, member: int) -> str:
    return os.path.join(round_dir, f"model_{member}")


def member_config(config: LearnConfig, round_index: int, member: int, round_dir: str, previous_round_dir: str,
                  train_path: str, valid_path: str) -> TrainConfig:
    values: Dict[str, Any] = {"progress": False}
    values.update(config.train)
    if round_index > 0:
        if config.warm_start and "lr" not in config.train_warm:
            values["lr"] = WARM_LR_FACTOR * float(values.get("lr", TrainConfig.lr))
        values.update(config.train_warm)
    if config.threads is not None:
        values.setdefault("threads", config.threads)
    output = member_folder(round_dir, member)
    values.update(train_file=train_path, valid_file=valid_path, output=output, seed=config.seed + member,
                  device=config.device, resume=os.path.exists(os.path.join(output, "last.pt")))
    if round_index > 0 and config.warm_start:
        values["init_from"] = os.path.join(member_folder(previous_round_dir, member), "best.pt")
    return make_config(None, values)


def train_member(config: TrainConfig) -> Dict[str, Any]:
    """Train one member; a compact, JSON-ready summary of the run."""
    from eqff.train.trainer import train

    summary = train(config)
    out = {k: summary.get(k) for k in ("stop_reason", "epochs", "best_epoch", "best_loss")}
    out["valid_forces_mae_meV_per_A"] = (summary.get("valid_metrics") or {}).get("forces_mae_meV_per_A")
    out["checkpoint"] = os.path.join(config.output, "best.pt")
    out["warm_start_from"] = config.init_from
    out.update(training_time(config.output))
    return out


def training_time(output: str) -> Dict[str, float]:
    """Wall and CPU seconds of the run in ``output`` over all its sessions (its last.pt keeps them:
    a round interrupted and resumed still counts every minute it trained)."""
    from eqff.models.io import load_checkpoint

    trainer = load_checkpoint(os.path.join(output, "last.pt")).get("trainer", {})
    return {"wall_s": round(float(trainer.get("elapsed_s", 0.0)), 3), "cpu_s": round(float(trainer.get("cpu_s", 0.0)), 3)}

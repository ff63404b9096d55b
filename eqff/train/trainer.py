"""The training loop: AdamW, warm-up + plateau/cosine schedule, EMA, gradient clipping, early
stopping, wall-time limit, atomic checkpoints with exact resume, DDP under torchrun."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import sys
import time
from typing import Any, Dict, List, Optional

import torch
from tqdm import tqdm

from eqff._version import __version__
from eqff.data import keys
from eqff.errors import ConfigError, EqffError
from eqff.models.io import load_checkpoint, load_weights, potential_from_state, potential_state, tensor_checksum
from eqff.export.torchscript import is_exported, state_from_exported
from eqff.models.potential import Potential
from eqff.dtypes import resolve_dtype
from eqff.models.registry import build_model
from eqff.runtime.allocator import keep_freed_memory
from eqff.threads import choose_threads, cpu_description
from eqff.train import plots
from eqff.train.augment import augment_rotations
from eqff.train.checkpoint import save_atomic
from eqff.train.config import TrainConfig, save_yaml
from eqff.train.dataset import PreparedData, epoch_batches, iterate, prepare_data, sequential_batches
from eqff.train.distributed import DistributedContext, setup
from eqff.train.ema import EMA
from eqff.train.evaluation import evaluate_graphs, references, split_predictions
from eqff.train.metrics import error_metrics
from eqff.train.loss import WeightedLoss
from eqff.train.schedule import LearningRateSchedule


MAX_ROLLBACKS = 5  # per session: a run that keeps diverging needs a lower lr, not more retries


class TrainingDiverged(EqffError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Trainer:
    def __init__(self, config: TrainConfig):
        self.config = config
        self.ctx: DistributedContext = setup(config.device)
        self.device = self.ctx.device
        self.dtype = resolve_dtype(config.dtype)
        if config.batch_size % self.ctx.world_size:
            raise ConfigError(f"batch_size {config.batch_size} must be divisible by the number of processes {self.ctx.world_size}")
        self.output = config.output
        self.last_path = os.path.join(self.output, "last.pt")
        self.best_path = os.path.join(self.output, "best.pt")
        self._check_output_folder()
        random.seed(config.seed)
        torch.manual_seed(config.seed)
        threads, why = choose_threads(config.threads)
        kept = keep_freed_memory()  # no page faults for each batch's large tensors (eqff/runtime/allocator.py)
        self.log(f"eqff {__version__} training {config.model} on {config.train_file} "
                 f"({self.ctx.world_size} process(es), {self.device}, {config.dtype}, {threads} thread(s): {why}"
                 f"{'; freed memory kept for reuse' if kept else ''})")
        self.data: PreparedData = prepare_data(config)
        self.log(f"data: {len(self.data.train)} training, {len(self.data.valid)} validation structures; "
                 f"elements {self.data.elements}; avg neighbours {self.data.avg_num_neighbors:.2f}; "
                 f"E0s {json.dumps({str(k): round(v, 6) for k, v in self.data.e0s.items()})}")
        self.log(f"loss weights: energy {self.data.energy_weight:g}"
                 f"{' (from the data)' if config.energy_weight is None else ''}, forces {config.forces_weight:g}, "
                 f"stress {self.data.stress_weight:g}; "
                 + ("one stage" if self.data.stage_two_at is None else
                    f"stage two from {self.data.stage_two_at:.0%} of the budget: energy weight "
                    f"{config.stage_two_energy_weight:g}")
                 + (" (from the data)" if config.stage_two_at == "auto" else ""))
        self.potential = self._build_model()
        self.loss = WeightedLoss(self.data.energy_weight, config.forces_weight, self.data.stress_weight,
                                 config.loss, config.huber_delta)
        self.optimizer = torch.optim.AdamW(self.potential.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                           amsgrad=config.amsgrad)
        steps_per_epoch = len(epoch_batches(len(self.data.train), config.batch_size, 0, config.seed))
        self.schedule = LearningRateSchedule(
            self.optimizer, config.lr, int(config.warmup_epochs * steps_per_epoch), config.scheduler,
            config.max_epochs * steps_per_epoch, config.plateau_factor, config.plateau_patience, config.min_lr,
            time_budget_s=None if config.max_time_min is None else config.max_time_min * 60.0)
        self.stage = 1  # 2 after stage_two_at of the budget: higher energy weight (see TrainConfig)
        self.ema = EMA(self.potential, config.ema_decay)
        self.epoch = 0
        self.best_loss = math.inf
        self.best_epoch = -1
        self.best_stage = 1  # the stage of the best epoch
        self.history: List[Dict[str, float]] = []
        self.rollbacks = 0  # roll-backs from divergence in this session
        self.elapsed_before = 0.0  # wall time of earlier (interrupted) sessions of this run
        self.cpu_before = 0.0  # CPU time of this process's work in earlier sessions (model cards quote it)
        self.cpu_unrecorded_wall_s = 0.0  # wall time of earlier sessions whose checkpoints kept no CPU time
        self.machines = [cpu_description()]  # the distinct CPUs of the run's sessions, as first seen (model cards quote them)
        if config.resume and os.path.exists(self.last_path):
            self._resume()
        self.model = self.potential
        if self.ctx.enabled:
            self.model = torch.nn.parallel.DistributedDataParallel(self.potential)

    # ----- setup -----
    def log(self, message: str) -> None:
        if self.ctx.is_main:
            print(message, flush=True)
            os.makedirs(self.output, exist_ok=True)
            with open(os.path.join(self.output, "train.log"), "a") as handle:
                handle.write(message + "\n")

    def _check_output_folder(self) -> None:
        if os.path.exists(self.last_path) and not self.config.resume:
            raise ConfigError(f"{self.output} already holds a run (last.pt); pass --resume to continue it "
                              "or choose another --output")
        if self.ctx.is_main:
            os.makedirs(self.output, exist_ok=True)
            save_yaml(self.config, os.path.join(self.output, "config.yaml"))

    def _build_model(self) -> Potential:
        if self.config.init_from:
            return self._warm_start_model()
        hyperparameters = dict(self.config.hyperparameters)
        hyperparameters.setdefault("avg_num_neighbors", round(self.data.avg_num_neighbors, 4))
        potential = build_model(self.config.model, self.data.elements, self.config.cutoff, dtype=self.dtype,
                                prior=self.config.prior, **hyperparameters)
        with torch.no_grad():
            species_e0 = torch.tensor([self.data.e0s[z] for z in self.data.elements], dtype=self.dtype)
            potential.energy_shift.copy_(species_e0 + self.data.stats["mean_energy_per_atom"])
            potential.energy_scale.fill_(self.data.stats["scale"])
        n_parameters = sum(p.numel() for p in potential.parameters())
        self.log(f"model: {self.config.model}, {n_parameters} parameters, scale {self.data.stats['scale']:.4f} eV/Å")
        return potential.to(self.device)

    def _warm_start_model(self) -> Potential:
        """The model of ``init_from`` (TrainConfig), checked against this run's config and data."""
        path = self.config.init_from
        # a checkpoint (best.pt / last.pt), or an exported model.pt: fine-tuning a shipped potential
        state = state_from_exported(path) if is_exported(path) else load_checkpoint(path)
        potential = potential_from_state(state, source=path, dtype=self.dtype)
        saved = {"model": potential.kind, "cutoff": potential.cutoff, "prior": state["model_config"].get("prior")}
        wanted = {"model": self.config.model, "cutoff": float(self.config.cutoff), "prior": self.config.prior}
        differ = [f"{k} {saved[k]!r} (config: {wanted[k]!r})" for k in saved if saved[k] != wanted[k]]
        if differ:
            raise ConfigError(f"init_from {path}: the checkpoint has {', '.join(differ)}; set these keys to the "
                              "checkpoint's values or drop init_from")
        missing = sorted(set(self.data.elements) - set(int(z) for z in potential.atomic_numbers.tolist()))
        if missing:
            raise ConfigError(f"init_from {path}: the training data holds elements {missing} the checkpoint was not "
                              "built for; start from a fresh model (drop init_from)")
        n_parameters = sum(p.numel() for p in potential.parameters())
        self.log(f"model: {potential.kind}, {n_parameters} parameters, warm start from {path} (its weights, "
                 "hyperparameters and energy scale)")
        return potential.to(self.device)

    # ----- checkpoints -----
    def _state(self, best: bool) -> Dict[str, Any]:
        with self.ema.applied(self.potential):
            state = potential_state(self.potential)  # EMA weights: what load_potential / export use
        state.update({
            "train_config": self.config.to_dict(),
            "data_hash": self.data.data_hash,
            "e0s": {str(k): v for k, v in self.data.e0s.items()},
            "example_structure": self._example_structure(),
            "epoch": self.epoch,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "best_stage": self.best_stage,
            "history": self.history,
        })
        if not best:
            state["trainer"] = {
                "raw_model_state": {k: v.detach().cpu().clone() for k, v in self.potential.state_dict().items()},
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "ema": self.ema.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "python_rng": random.getstate(),
                "elapsed_s": self.elapsed_before + (time.time() - self.start_time),
                "cpu_s": self.cpu_before + (time.process_time() - self.start_cpu),
                "cpu_unrecorded_wall_s": self.cpu_unrecorded_wall_s,
                "machines": self.machines,
            }
        return state

    def _example_structure(self) -> Dict[str, Any]:
        """A validation frame, kept in checkpoints and exports so ``eqff check`` has a structure."""
        graph = self.data.valid[0]
        return {name: graph[key].tolist() for name, key in (("numbers", keys.ATOMIC_NUMBERS), ("positions", keys.POSITIONS),
                                                               ("cell", keys.CELL), ("pbc", keys.PBC))}

    def _save(self, path: str, best: bool) -> None:
        if self.ctx.is_main:
            save_atomic(self._state(best), path)

    def _resume(self) -> None:
        state = load_checkpoint(self.last_path, map_location="cpu")
        if state.get("data_hash") != self.data.data_hash:
            raise ConfigError(f"{self.last_path}: was trained on other data (hash {state.get('data_hash')} vs "
                              f"{self.data.data_hash}); resume with the same files and split, or start a new --output")
        if state["model_config"] != json.loads(json.dumps(self.potential.config())):
            raise ConfigError(f"{self.last_path}: the model config differs from this run's; resume with the same model settings")
        trainer = state["trainer"]
        self.potential.load_state_dict({k: v.to(self.device) for k, v in trainer["raw_model_state"].items()})
        self.optimizer.load_state_dict(trainer["optimizer"])
        self.schedule.load_state_dict(trainer["schedule"])
        self.ema.load_state_dict(trainer["ema"], self.potential)
        torch.set_rng_state(trainer["torch_rng"])
        random.setstate(_as_tuple(trainer["python_rng"]))
        self.elapsed_before = float(trainer["elapsed_s"])
        self.cpu_before = float(trainer.get("cpu_s", 0.0))
        # checkpoints written before the CPU time was kept: their sessions' wall time, said as such
        self.cpu_unrecorded_wall_s = float(trainer.get("cpu_unrecorded_wall_s", 0.0 if "cpu_s" in trainer
                                                       else self.elapsed_before))
        earlier = [str(m) for m in trainer.get("machines", [])]
        self.machines = earlier + [m for m in self.machines if m not in earlier]
        self.epoch = int(state["epoch"])
        self.best_loss = float(state["best_loss"])
        self.best_epoch = int(state["best_epoch"])
        self.best_stage = int(state.get("best_stage", 1))
        self.history = list(state["history"])
        self.log(f"resumed {self.last_path} after epoch {self.epoch} (best validation loss {self.best_loss:.6g} at epoch {self.best_epoch})")

    # ----- loop -----
    def train_epoch(self, deadline: Optional[float]) -> float:
        self.model.train()
        batches = epoch_batches(len(self.data.train), self.config.batch_size, self.epoch, self.config.seed,
                                self.ctx.rank, self.ctx.world_size)
        bar = tqdm(total=len(batches), desc=f"epoch {self.epoch + 1}", leave=False, file=sys.stderr,
                   disable=not (self.config.progress and self.ctx.is_main), dynamic_ncols=True)
        total, count = 0.0, 0
        for batch in iterate(self.data.train, batches, self.dtype, self.device):
            if self.config.augment_rotations:
                batch = augment_rotations(batch)
            self.optimizer.zero_grad(set_to_none=True)
            predicted = self.model(batch, compute_forces=self.config.forces_weight > 0,
                                   compute_stress=self.loss.needs_stress, create_graph=True)
            loss = self.loss(predicted, batch)
            value = self.ctx.all_reduce_mean(float(loss.detach()))
            if not math.isfinite(value):
                bar.close()
                raise TrainingDiverged(
                    f"the training loss became {value} in epoch {self.epoch + 1}; stopping. The last good "
                    f"checkpoint ({self.last_path}) is kept; lower lr, raise grad_clip or check the data")
            loss.backward()
            if self.config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.potential.parameters(), self.config.grad_clip)
            self.optimizer.step()
            self.schedule.step_batch(self.elapsed_before + time.time() - self.start_time)
            self.ema.update(self.potential)
            total += value
            count += 1
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4g}", lr=f"{self.optimizer.param_groups[0]['lr']:.2e}")
            if deadline is not None and time.time() > deadline:
                break
        bar.close()
        return total / max(count, 1)

    def validate(self) -> Dict[str, float]:
        """Loss and error metrics of the EMA weights on the validation set (every process
        evaluates all of it: the result is identical everywhere, no communication needed)."""
        self.potential.eval()
        total, count = 0.0, 0
        predictions = []
        refs = references(self.data.valid)
        with_stress = any(r["stress"] is not None for r in refs)
        batches = sequential_batches(len(self.data.valid), self.config.valid_batch_size)
        with self.ema.applied(self.potential):
            for batch in iterate(self.data.valid, batches, self.dtype, self.device):
                predicted = self.potential(batch, compute_forces=True, compute_stress=with_stress)
                size = int(batch[keys.CELL].shape[0])
                total += float(self.loss(predicted, batch).detach()) * size
                count += size
                predictions.extend(split_predictions(predicted, batch))
        metrics = error_metrics(predictions, refs)
        metrics["loss"] = total / max(count, 1)
        return metrics

    def run(self) -> Dict[str, Any]:
        config = self.config
        self.start_time = time.time()
        self.start_cpu = time.process_time()
        deadline = None
        if config.max_time_min is not None:
            deadline = self.start_time + config.max_time_min * 60.0 - self.elapsed_before
        stop_reason = "max_epochs"
        try:
            while self.epoch < config.max_epochs:
                if deadline is not None and time.time() > deadline:
                    stop_reason = "max_time"
                    break
                patience = config.early_stopping_patience
                if patience is not None and self.epoch - self.best_epoch > patience and self.best_epoch >= 0:
                    stop_reason = "early_stopping"
                    break
                self._enter_stage_two_if_due()
                epoch_start = time.time()
                train_loss = self.train_epoch(deadline)
                valid = self.validate()
                self.schedule.step_epoch(valid["loss"])
                self.epoch += 1
                row = {"epoch": self.epoch, "wall_time_s": round(self.elapsed_before + time.time() - self.start_time, 2),
                       "epoch_time_s": round(time.time() - epoch_start, 2), "lr": self.optimizer.param_groups[0]["lr"],
                       "train_loss": train_loss, "valid_loss": valid["loss"]}
                row.update({f"valid_{k}": v for k, v in valid.items() if k not in ("loss", "n_structures", "n_atoms")})
                self.history.append(row)
                if self._diverged(valid["loss"]):
                    self._roll_back(valid["loss"])
                improved = valid["loss"] < self.best_loss
                if improved:
                    self.best_loss, self.best_epoch, self.best_stage = valid["loss"], self.epoch, self.stage
                    self._save(self.best_path, best=True)
                if self.epoch % config.checkpoint_every == 0 or self.epoch == config.max_epochs:
                    self._save(self.last_path, best=False)
                self._write_metrics_csv()
                self.log(self._summary_line(row, improved))
                self.ctx.barrier()
            self._save(self.last_path, best=False)
        finally:
            self.ctx.barrier()
        self.log(f"stopped: {stop_reason} after epoch {self.epoch}; best validation loss {self.best_loss:.6g} at epoch {self.best_epoch}")
        cpu_min = (self.cpu_before + time.process_time() - self.start_cpu) / 60.0
        wall_min = (self.elapsed_before + time.time() - self.start_time) / 60.0
        unrecorded = (f" + {self.cpu_unrecorded_wall_s / 60.0:.1f} min wall of earlier sessions whose CPU time was not "
                      "recorded" if self.cpu_unrecorded_wall_s else "")
        self.log(f"training time: {wall_min:.1f} min wall, {cpu_min:.1f} min CPU (this process){unrecorded}")
        summary = {"stop_reason": stop_reason, "epochs": self.epoch, "best_epoch": self.best_epoch, "best_loss": self.best_loss}
        if self.ctx.is_main:
            summary.update(self._finish())
        self.ctx.close()
        return summary

    def _enter_stage_two_if_due(self) -> None:
        """MACE's second stage: for the last part of the budget, weight the energy more (the
        force term dominates the loss otherwise and energies stay coarse). The best-model
        record restarts, since validation losses of the two stages are not comparable. Decided
        from the schedule's progress, so a resumed run enters it at the same point."""
        at = self.data.stage_two_at
        if self.stage == 2 or at is None or self.schedule.progress() < at:
            return
        self.stage = 2
        self.loss = WeightedLoss(self.config.stage_two_energy_weight, self.config.forces_weight, self.data.stress_weight,
                                 self.config.loss, self.config.huber_delta)
        if self.best_stage != 2:
            self.best_loss = math.inf
        self.log(f"epoch {self.epoch + 1}: stage two ({self.schedule.progress():.0%} of the budget): energy weight "
                 f"{self.config.stage_two_energy_weight:g}, forces weight {self.config.forces_weight:g}")

    def _diverged(self, valid_loss: float) -> bool:
        factor = self.config.divergence_factor
        return factor is not None and self.best_epoch >= 0 and not valid_loss <= factor * self.best_loss

    def _roll_back(self, valid_loss: float) -> None:
        """Back to the best (EMA) weights, fresh optimizer moments, half the lr. Every process
        takes the same decision (the validation loss is the same everywhere) and reads the same
        best.pt, so DDP replicas stay identical."""
        self.rollbacks += 1
        if self.rollbacks > MAX_ROLLBACKS:
            raise TrainingDiverged(
                f"the validation loss diverged again in epoch {self.epoch} ({valid_loss:.4g} vs best {self.best_loss:.4g}) "
                f"after {MAX_ROLLBACKS} roll-backs; stopping. best.pt (epoch {self.best_epoch}) is kept; lower lr or "
                "raise grad_clip")
        self.ctx.barrier()  # best.pt is written by rank 0
        load_weights(self.potential, load_checkpoint(self.best_path)["model_state"], self.best_path)
        self.ema.reset(self.potential)
        self.optimizer.state.clear()
        self.schedule.scale(0.5)
        self.log(f"epoch {self.epoch}: validation loss {valid_loss:.4g} is over {self.config.divergence_factor:g}x the best "
                 f"({self.best_loss:.4g}); rolled back to the best weights (epoch {self.best_epoch}), reset the "
                 f"optimizer moments, lr now {self.optimizer.param_groups[0]['lr']:.3g}")

    def _summary_line(self, row: Dict[str, float], improved: bool) -> str:
        parts = [f"epoch {row['epoch']:4d}", f"{row['epoch_time_s']:.1f}s", f"lr {row['lr']:.2e}",
                 f"train {row['train_loss']:.5g}", f"valid {row['valid_loss']:.5g}",
                 f"E {row['valid_energy_mae_meV_per_atom']:.3f} meV/atom"]
        if "valid_forces_mae_meV_per_A" in row:
            parts.append(f"F {row['valid_forces_mae_meV_per_A']:.2f} meV/Å")
        if "valid_stress_mae_meV_per_A3" in row:
            parts.append(f"S {row['valid_stress_mae_meV_per_A3']:.3f} meV/Å³")
        return " | ".join(parts) + ("  *" if improved else "")

    def _write_metrics_csv(self) -> None:
        if not self.ctx.is_main or not self.history:
            return
        fields = list(self.history[-1].keys())
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.history)
        path = os.path.join(self.output, "metrics.csv")
        with open(path + ".tmp", "w") as handle:
            handle.write(buffer.getvalue())
        os.replace(path + ".tmp", path)

    def _refit_energy_shift(self, path: str) -> Dict[str, Any]:
        """The closing refit of the energy shift of checkpoint ``path`` (its
        model_state: the EMA weights), written back atomically; logged."""
        from eqff.train.shift_refit import refit_energy_shift

        state = load_checkpoint(path)
        potential = potential_from_state(state, source=path).to(self.device)
        refit = refit_energy_shift(potential, self.data.train, self.config.valid_batch_size)
        if not refit:
            return refit
        # only the weights that are used (evaluate, export); the raw training state of last.pt is
        # left as it was, so that extending the run with --resume continues it exactly
        state["model_state"]["energy_shift"] = potential.energy_shift.detach().cpu().clone()
        state["model_state_sha256"] = tensor_checksum(state["model_state"])
        save_atomic(state, path)
        shifts = ", ".join(f"{symbol} {1000 * value:+.2f} meV" for symbol, value in refit["shift_eV"].items())
        self.log(f"energy shift refit on the {len(self.data.train)} training frames ({os.path.basename(path)}; "
                 f"least absolute deviations, forces unchanged): {shifts}; training energy MAE "
                 f"{refit['train_energy_mae_before_meV_per_atom']:.3f} -> {refit['train_energy_mae_after_meV_per_atom']:.3f} "
                 "meV/atom")
        return refit

    def _finish(self) -> Dict[str, Any]:
        """Plots and test metrics with the best (EMA) model."""
        out: Dict[str, Any] = {}
        if not self.history or not os.path.exists(self.best_path):
            return out
        if self.config.refit_energy_shift:
            out["energy_shift_refit"] = {os.path.basename(path): self._refit_energy_shift(path)
                                         for path in (self.best_path, self.last_path) if os.path.exists(path)}
        plots.learning_curves(self.history, os.path.join(self.output, "learning_curves.png"))
        best = potential_from_state(load_checkpoint(self.best_path), source=self.best_path).to(self.device)
        metrics, predicted, reference = evaluate_graphs(best, self.data.valid, self.config.valid_batch_size)
        plots.parity(predicted, reference, os.path.join(self.output, "parity_valid.png"), "validation (best model)")
        out["valid_metrics"] = metrics
        if self.config.test_file:
            from eqff.train.evaluation import evaluate_file

            metrics, predicted, reference = evaluate_file(best, self.config.test_file, self.config)
            plots.parity(predicted, reference, os.path.join(self.output, "parity_test.png"), "test (best model)")
            with open(os.path.join(self.output, "test_metrics.json"), "w") as handle:
                json.dump(metrics, handle, indent=1)
            out["test_metrics"] = metrics
            self.log("test set, best model:\n" + _table(metrics))
        return out


def _table(metrics: Dict[str, Any]) -> str:
    from eqff.train.metrics import format_group_table, format_table

    table = format_table(metrics)
    if "by_group" in metrics:  # test frames with config types
        table += "\n" + format_group_table(metrics["by_group"], metrics["group_key"])
    return table


def _as_tuple(value: Any) -> Any:
    """random.setstate needs tuples; checkpoints may hand back lists."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuple(v) for v in value)
    return value


def train(config: TrainConfig) -> Dict[str, Any]:
    return Trainer(config).run()

"""The active-learning loop: train a committee, explore with it, label what it is unsure of, repeat.

Run folder (``output``)::

    state.json        where the run stands (round, next stage, status) and one summary per round
    learn.log         what was done, as it was done
    config.yaml       the learn config of the latest session
    valid.extxyz      the validation frames (σ calibration, validation of every member)
    round_000/        train.extxyz (what this round trains on), model_0/ ... (eqff train runs),
                      round.json (everything measured), selected.extxyz, labels/, *.png
    summary.png       over rounds

Each round moves through three stages, recorded in ``state.json`` (written atomically) before
the next begins, so a rerun with ``--resume`` picks up at the stage that was interrupted:
``train`` (members already trained are skipped, an interrupted one resumes from its last.pt),
``explore`` (calibrate σ on the validation frames, run MD, select; redone from the start if
interrupted: it is cheap and seeded), ``label`` (one file per labelled frame, so none is
labelled twice). The run stops when no explored frame has σ above ``sigma_threshold`` and no
trajectory was lost (converged) or after ``max_rounds``; the last round trains and explores but labels nothing,
so the final committee is trained on every label and its exploration is the final measurement.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Any, Dict, List

import numpy as np

from eqff.data.frames import read_frames
from eqff.errors import ConfigError, DataError
from eqff.learn import plots
from eqff.learn.config import FIXED_ON_RESUME, LearnConfig, save_learn_yaml
from eqff.learn.contacts import ContactFloor
from eqff.data.frames_io import frame_to_atoms, read_images, write_atomic
from eqff.learn.stages import calibrated_committee, explore_and_select, label_selected
from eqff.learn.state import read_json, write_json_atomic
from eqff.learn.training import member_config, train_member

STATE_VERSION = 1


class ActiveLearning:
    def __init__(self, config: LearnConfig):
        self.config = config
        self.root = config.output
        self.state_path = os.path.join(self.root, "state.json")
        self.valid_path = os.path.join(self.root, "valid.extxyz")
        if os.path.exists(self.state_path):
            self.state = self._reopen()
        else:
            self.state = self._start()
        save_learn_yaml(config, os.path.join(self.root, "config.yaml"))

    # ----- paths, log, state -----
    def round_dir(self, k: int) -> str:
        return os.path.join(self.root, f"round_{k:03d}")

    def log(self, message: str) -> None:
        print(message, flush=True)
        with open(os.path.join(self.root, "learn.log"), "a") as handle:
            handle.write(message + "\n")

    def _save_state(self, **changes: Any) -> None:
        self.state.update(changes)
        write_json_atomic(self.state, self.state_path)

    def _record(self, k: int) -> Dict[str, Any]:
        path = os.path.join(self.round_dir(k), "round.json")
        return read_json(path) if os.path.exists(path) else {"round": k, "times": {}}

    def _save_record(self, k: int, record: Dict[str, Any]) -> None:
        write_json_atomic(record, os.path.join(self.round_dir(k), "round.json"))

    # ----- a new run, or the one in the folder -----
    def _start(self) -> Dict[str, Any]:
        config = self.config
        os.makedirs(self.root, exist_ok=True)
        keys = dict(energy_key=config.energy_key, forces_key=config.forces_key, stress_key=config.stress_key)
        frames = read_frames(config.train_file, **keys)
        isolated = [f for f in frames if f.is_isolated_atom]
        structures = [f for f in frames if not f.is_isolated_atom]
        if config.valid_file:
            valid = [f for f in read_frames(config.valid_file, **keys) if not f.is_isolated_atom]
            train = structures
        else:
            if len(structures) < 2:
                raise DataError(f"{config.train_file}: {len(structures)} structure(s); the validation split needs at "
                                "least two, or give valid_file")
            order = np.random.default_rng(config.seed).permutation(len(structures))
            n_valid = min(max(1, int(round(config.valid_fraction * len(structures)))), len(structures) - 1)
            valid = [structures[i] for i in order[:n_valid]]
            train = [structures[i] for i in sorted(order[n_valid:])]
        if not valid:
            raise DataError(f"{config.valid_file}: holds no structures to validate on")
        write_atomic([frame_to_atoms(f) for f in valid], self.valid_path)
        write_atomic([frame_to_atoms(f) for f in isolated + train], os.path.join(self.round_dir(0), "train.extxyz"))
        state = {"version": STATE_VERSION, "status": "running", "round": 0, "stage": "train",
                 "config": config.to_dict(), "rounds": []}
        write_json_atomic(state, self.state_path)
        self.log(f"eqff learn: new run in {self.root}: {len(train)} training + {len(isolated)} isolated-atom frames, "
                 f"{len(valid)} validation frames (from {config.valid_file or config.train_file}); labeller "
                 f"{config.labeller}")
        return state

    def _reopen(self) -> Dict[str, Any]:
        if not self.config.resume:
            raise ConfigError(f"{self.root} already holds an active-learning run (state.json); pass --resume to "
                              "continue it, or choose another output")
        state = read_json(self.state_path)
        before, now = state.get("config", {}), self.config.to_dict()
        fixed = [k for k in FIXED_ON_RESUME if before.get(k) != now[k]]
        if fixed:
            raise ConfigError(f"{self.state_path}: the run was started with other {', '.join(fixed)} "
                              f"({', '.join(f'{k}: {before.get(k)!r}' for k in fixed)}); these cannot change in a "
                              "run: set them back, or start a new output")
        changed = [k for k in now if before.get(k) != now[k] and k != "resume"]
        if state["status"] == "running" and state["round"] >= self.config.max_rounds:
            raise ConfigError(f"{self.state_path}: the run is at round {state['round']} already; max_rounds "
                              f"{self.config.max_rounds} would end it before it began: raise max_rounds")
        if state["status"] == "max_rounds" and state["round"] + 1 < self.config.max_rounds:
            state["status"] = "running"  # more rounds were asked for: label the last round's selection and go on
        state["config"] = now
        write_json_atomic(state, self.state_path)
        self.log(f"eqff learn: resumed {self.root} at round {state['round']}, stage {state['stage']} "
                 f"(status {state['status']})" + (f"; changed keys: {', '.join(changed)}" if changed else ""))
        return state

    # ----- the loop -----
    def run(self) -> Dict[str, Any]:
        while self.state["status"] == "running":
            k, stage = self.state["round"], self.state["stage"]
            if stage == "train":
                self.train(k)
                self._save_state(stage="explore")
            elif stage == "explore":
                converged = self.explore(k)
                if converged:
                    self._save_state(status="converged")
                elif k + 1 >= self.config.max_rounds:
                    self._save_state(stage="label", status="max_rounds")
                else:
                    self._save_state(stage="label")
            elif k + 1 >= self.config.max_rounds:  # max_rounds lowered on resume: this was the last round
                self._save_state(status="max_rounds")
            else:  # label
                self.label(k)
                self._save_state(round=k + 1, stage="train")
        self._finish()
        return self.state

    @contextmanager
    def _timed(self, record: Dict[str, Any], stage: str):
        wall, cpu = time.time(), time.process_time()
        yield
        record["times"][stage] = {"wall_s": round(time.time() - wall, 3), "cpu_s": round(time.process_time() - cpu, 3)}

    def train(self, k: int) -> None:
        record = self._record(k)
        members: List[Dict[str, Any]] = record.setdefault("members", [])
        train_path = os.path.join(self.round_dir(k), "train.extxyz")
        n_frames = len(read_images(train_path))
        self.log(f"round {k}: training {self.config.members} model(s) on {n_frames} frames ({train_path})")
        with self._timed(record, "train"):
            for m in range(len(members), self.config.members):
                config = member_config(self.config, k, m, self.round_dir(k), self.round_dir(k - 1), train_path,
                                       self.valid_path)
                members.append(train_member(config))
                record["training_frames"] = n_frames
                self._save_record(k, record)  # a member done is never trained again
                mae = members[-1]["valid_forces_mae_meV_per_A"]
                self.log(f"round {k}: model {m} done: {members[-1]['epochs']} epochs"
                         + (f", validation force MAE {mae:.2f} meV/Å" if mae is not None else ""))
        # the stage's own clock saw only this session: the members' checkpoints kept every session's
        record["times"]["train"] = {key: round(sum(m.get(key, 0.0) for m in members), 3) for key in ("wall_s", "cpu_s")}
        self._save_record(k, record)

    def explore(self, k: int) -> bool:
        """Calibrate, run MD, select; True when no frame was above the threshold and no trajectory
        was lost (converged)."""
        config, record = self.config, self._record(k)
        with self._timed(record, "calibrate"):
            loaded, record["calibration"] = calibrated_committee(config, self.round_dir(k), self.valid_path)
        mae = record["calibration"]["forces_mae_meV_per_A"]
        what = "committee" if config.uncertainty == "committee" else "model"
        self.log(f"round {k}: {what} validation force MAE {mae if mae is None else round(mae, 2)} meV/Å, "
                 f"σ scale {record['calibration']['uncertainty_scale']:.3g}")
        with self._timed(record, "explore"):
            record.update(explore_and_select(config, loaded, self._starts(), k, self.round_dir(k), self.log,
                                             self._contacts()))
        if k + 1 >= config.max_rounds and record["explore"]["frames_above_threshold"]:
            self.log(f"round {k}: the last round (max_rounds {config.max_rounds}): the selection is kept in "
                     "selected.extxyz but not labelled; rerun with a higher max_rounds and --resume to go on")
        self._save_record(k, record)
        self._summarise(k, record)
        return record["explore"]["frames_above_threshold"] == 0 and record["explore"]["trajectories_lost"] == 0

    def label(self, k: int) -> None:
        record = self._record(k)
        train_path = os.path.join(self.round_dir(k), "train.extxyz")
        with self._timed(record, "label"):
            labelled, record["label"] = label_selected(self.config, self.round_dir(k), k, self.log)
            write_atomic(read_images(train_path) + labelled, os.path.join(self.round_dir(k + 1), "train.extxyz"))
        self._save_record(k, record)
        self._summarise(k, record)
        self.log(f"round {k}: {len(labelled)} labelled frame(s) added; round {k + 1} trains on "
                 f"{os.path.join(self.round_dir(k + 1), 'train.extxyz')}")

    def _contacts(self) -> ContactFloor:
        """From round 0's frames (the user's): frames the loop added never lower the floor."""
        frames = read_images(os.path.join(self.round_dir(0), "train.extxyz"))
        return ContactFloor.from_frames(frames, self.config.min_contact_factor)

    def _starts(self):
        config = self.config
        if config.start_file:
            images = [f.to_atoms() for f in read_frames(config.start_file, require_energy=False, require_forces=False)]
        else:
            images = [a for a in read_images(os.path.join(self.round_dir(0), "train.extxyz")) if len(a) > 1]
        if not images:
            raise DataError(f"{config.start_file or config.train_file}: no start structures for the MD")
        if config.n_starts is None or config.n_starts >= len(images):
            return images
        picks = np.unique(np.linspace(0, len(images) - 1, config.n_starts).round().astype(int))
        return [images[i] for i in picks]

    # ----- summaries -----
    def _summarise(self, k: int, record: Dict[str, Any]) -> None:
        """The round's line in state.json: what the summary plot draws."""
        explore = record.get("explore", {})
        row = {
            "round": k,
            "training_frames": record.get("training_frames"),
            "valid_forces_mae_meV_per_A": record.get("calibration", {}).get("forces_mae_meV_per_A"),
            "uncertainty_scale": record.get("calibration", {}).get("uncertainty_scale"),
            "frames_explored": explore.get("frames_explored"),
            "frames_above_threshold": explore.get("frames_above_threshold"),
            "sigma_max": explore.get("sigma_max"),
            "sigma_median": explore.get("sigma_median"),
            "frames_selected": record.get("select", {}).get("selected"),
            "frames_added": record.get("label", {}).get("frames_added", 0),
            "times": record.get("times", {}),
        }
        rounds = [r for r in self.state["rounds"] if r["round"] != k] + [row]
        self._save_state(rounds=sorted(rounds, key=lambda r: r["round"]))

    def _finish(self) -> None:
        status, k = self.state["status"], self.state["round"]
        if self.state["rounds"]:
            plots.summary(self.state["rounds"], os.path.join(self.root, "summary.png"))
        final = os.path.join(self.round_dir(k), "model_*", "best.pt" if self.config.uncertainty == "committee"
                             else "best_llpr.pt")
        what = {"converged": f"converged in round {k}: no explored frame above sigma_threshold "
                             f"{self.config.sigma_threshold:g} eV/Å and no trajectory lost",
                "max_rounds": f"stopped after max_rounds {self.config.max_rounds}"}[status]
        self.log(f"eqff learn: {what}; the final model(s): {final}; summary: {os.path.join(self.root, 'summary.png')}")


def run_active_learning(config: LearnConfig) -> Dict[str, Any]:
    """Run (or continue, with ``config.resume``) the loop; the final state (state.json)."""
    return ActiveLearning(config).run()

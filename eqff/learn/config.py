"""The active-learning config: one dataclass, documented defaults, read from YAML.

    eqff learn learn.yaml [--resume]

Every key is checked when the file is read; an error names the key and says what to do. The
``train`` mapping holds ``eqff train`` keys (eqff/train/config.py) for every committee member;
the loop sets the data files, output folder, seed, resume and warm start itself.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import yaml

from eqff.errors import ConfigError
from eqff.train.config import FIELDS as TRAIN_FIELDS, make_config, read_yaml_mapping, unknown_key_hints

UNCERTAINTIES = ("committee", "llpr")
# keys of `train` that the loop owns: each member and round gets its own
LOOP_OWNED_TRAIN_KEYS = ("train_file", "valid_file", "valid_fraction", "n_train", "n_valid", "test_file", "output",
                         "seed", "resume", "init_from", "energy_key", "forces_key", "stress_key", "device")
# keys whose change would mix two different runs in one folder
FIXED_ON_RESUME = ("train_file", "valid_file", "valid_fraction", "energy_key", "forces_key", "stress_key", "labeller",
                   "labeller_kwargs", "label_stress", "uncertainty", "committee_size", "seed")


@dataclass
class LearnConfig:
    # --- data ---
    train_file: Optional[str] = None  # the labelled frames to start from (any ASE-readable file); never modified
    valid_file: Optional[str] = None  # validation frames (calibration of σ); else a seeded split of train_file
    valid_fraction: float = 0.1  # of train_file, when there is no valid_file (at least one frame)
    energy_key: str = "energy"  # labels in the user's files (the run's own files use energy/forces/stress)
    forces_key: str = "forces"
    stress_key: str = "stress"
    # --- labeller: "module:factory" returning an ASE calculator (factory(**labeller_kwargs)), e.g.
    # "ase.calculators.emt:EMT", or "pyscf" (eqff/learn/pyscf_labeller.py: functional, basis, charge, spin)
    labeller: Optional[str] = None
    labeller_kwargs: Dict[str, Any] = field(default_factory=dict)
    label_stress: bool = False  # also label stress (periodic frames; the labeller must implement it)
    skip_failed_labels: bool = False  # a frame the labeller fails on is logged and skipped (else the run stops)
    # --- the models and their uncertainty ---
    # "committee": committee_size models per round, their calibrated spread (eqff/runtime/committee.py);
    # "llpr": one model per round with its last-layer uncertainty (eqff/runtime/llpr.py): 1/N the training
    uncertainty: str = "committee"
    committee_size: int = 3  # models per round (uncertainty: committee), seeds seed, seed+1, ...
    train: Dict[str, Any] = field(default_factory=dict)  # `eqff train` keys for every round
    # on top of `train` for rounds >= 1 (e.g. fewer epochs); without an lr here, warm rounds take 0.2x train's lr
    train_warm: Dict[str, Any] = field(default_factory=dict)
    warm_start: bool = True  # rounds >= 1 start from the previous round's models (train key init_from)
    # --- exploration: Langevin MD with the committee ---
    start_file: Optional[str] = None  # start structures; else the training frames
    n_starts: Optional[int] = 2  # start structures, evenly spread over the file; null: all
    temperatures: List[float] = field(default_factory=lambda: [300.0])  # K; one trajectory per start and temperature
    timestep_fs: float = 1.0
    friction_per_fs: float = 0.01
    md_steps: int = 1000  # per trajectory
    # --- selection; σ = max over atoms of the calibrated results["forces_std"], eV/Å ---
    sigma_threshold: float = 0.05  # frames above it are candidates; none above it in a round: converged
    sigma_stop: float = 0.5  # a trajectory stops above it (the potential is lost there); such frames are not labelled
    # a trajectory stops when two atoms come closer than this times the closest pair of their elements in
    # train_file (eqff/learn/contacts.py: σ is no guide there); 0: no such stop
    min_contact_factor: float = 0.5
    max_new_frames: int = 20  # per round
    min_step_gap: int = 10  # MD steps between two selected frames of one trajectory (diversity)
    calibrate: bool = True  # scale σ each round to the committee's force errors on the validation frames
    # --- run ---
    output: str = "runs/learn"  # run folder: state.json, learn.log, round_000/, ...
    max_rounds: int = 5  # rounds of train + explore (+ select and label, except in the last round)
    seed: int = 0
    device: str = "cpu"
    threads: Optional[int] = None  # torch threads for training and MD; null: eqff's choice (eqff/threads.py)
    resume: bool = False  # continue the run in output (like `eqff train --resume`)

    @property
    def members(self) -> int:
        """Models trained per round."""
        return self.committee_size if self.uncertainty == "committee" else 1

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> "LearnConfig":
        _check_types(self)
        if not self.train_file:
            raise ConfigError("train_file is required: the labelled frames to start from (extxyz or any ASE format)")
        if not self.labeller:
            raise ConfigError("labeller is required: 'module:factory' returning an ASE calculator (e.g. "
                              "'ase.calculators.emt:EMT') or 'pyscf'")
        if self.uncertainty not in UNCERTAINTIES:
            raise ConfigError(f"uncertainty must be one of {', '.join(UNCERTAINTIES)}, got {self.uncertainty!r}")
        if self.uncertainty == "committee" and self.committee_size < 2:
            raise ConfigError(f"committee_size must be at least 2 (a committee's spread is the uncertainty), got "
                              f"{self.committee_size}; or set uncertainty: llpr for one model")
        for key in ("md_steps", "max_new_frames", "max_rounds"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if self.min_step_gap < 0:
            raise ConfigError(f"min_step_gap must be 0 or more (MD steps), got {self.min_step_gap}")
        if self.n_starts is not None and self.n_starts < 1:
            raise ConfigError(f"n_starts must be at least 1 (or null: every frame of the start file), got {self.n_starts}")
        for key in ("timestep_fs", "friction_per_fs", "sigma_threshold"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key} must be positive, got {getattr(self, key)}")
        if not self.sigma_stop > self.sigma_threshold:
            raise ConfigError(f"sigma_stop ({self.sigma_stop}) must be above sigma_threshold ({self.sigma_threshold}): "
                              "frames between the two are the ones labelled")
        if not 0.0 <= self.min_contact_factor < 1.0:
            raise ConfigError(f"min_contact_factor must be in [0, 1) (a fraction of the closest pair of the training "
                              f"frames; 0 turns the check off), got {self.min_contact_factor}")
        if not self.temperatures or any(not t > 0 for t in self.temperatures):
            raise ConfigError(f"temperatures must be a list of positive temperatures in K, got {self.temperatures}")
        if not 0.0 < self.valid_fraction < 1.0:
            raise ConfigError(f"valid_fraction must be in (0, 1), got {self.valid_fraction}; or give valid_file")
        for key in ("train", "train_warm", "labeller_kwargs"):
            if not isinstance(getattr(self, key), dict):
                raise ConfigError(f"{key} must be a mapping of key: value, got {getattr(self, key)!r}")
        for key in ("train", "train_warm"):
            _check_train_keys(getattr(self, key), key)
        try:  # the values too, now rather than at the first training
            make_config(None, {**self.train, **self.train_warm, "train_file": self.train_file})
        except ConfigError as error:
            raise ConfigError(f"train: {error}") from error
        return self


def _check_types(config: LearnConfig) -> None:
    """Each value of the type its key documents (YAML gives strings for mistyped numbers)."""
    for name, hint in typing.get_type_hints(LearnConfig).items():
        value, text = getattr(config, name), str(hint)
        if value is None:
            if "Optional" not in text:
                raise ConfigError(f"{name} must be set (it has no null value); remove the key to get its default")
            continue
        for marker, kinds, noun in (("Dict", (dict,), "a mapping"), ("List", (list,), "a list"), ("bool", (bool,), "true or false"),
                                    ("int", (int,), "an integer"), ("float", (int, float), "a number"), ("str", (str,), "a string")):
            if marker in text:
                if not isinstance(value, kinds) or (marker in ("int", "float") and isinstance(value, bool)):
                    raise ConfigError(f"{name} must be {noun}, got {value!r}")
                break
    if any(isinstance(t, bool) or not isinstance(t, (int, float)) for t in config.temperatures):
        raise ConfigError(f"temperatures must be a list of numbers (K), got {config.temperatures!r}")


def _check_train_keys(values: Dict[str, Any], where: str) -> None:
    owned = [k for k in values if k in LOOP_OWNED_TRAIN_KEYS]
    if owned:
        raise ConfigError(f"{where}: {owned} are set by the active-learning loop; remove them (data keys and "
                          "files go at the top level of the learn config)")
    hint = unknown_key_hints(values, TRAIN_FIELDS)
    if hint:
        raise ConfigError(f"{where}: unknown `eqff train` key(s) {hint}; see `eqff train --help`")


FIELDS = {f.name: f for f in dataclasses.fields(LearnConfig)}


def make_learn_config(yaml_path: Optional[str] = None, overrides: Optional[Dict[str, Any]] = None) -> LearnConfig:
    """Defaults <- YAML file <- overrides (command-line flags)."""
    values: Dict[str, Any] = {}
    if yaml_path:
        values.update(read_yaml_mapping(yaml_path))
    values.update(overrides or {})
    hint = unknown_key_hints(values, FIELDS)
    if hint:
        raise ConfigError(f"{yaml_path or 'learn config'}: unknown key(s) {hint}. Valid keys: {', '.join(FIELDS)}")
    try:
        return LearnConfig(**values).validate()
    except ConfigError as error:
        raise ConfigError(f"{yaml_path}: {error}" if yaml_path else str(error)) from error


def save_learn_yaml(config: LearnConfig, path: str) -> None:
    with open(path, "w") as handle:
        yaml.safe_dump(config.to_dict(), handle, sort_keys=False)

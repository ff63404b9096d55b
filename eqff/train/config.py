"""Training configuration: one dataclass, documented defaults, YAML in and out, every key a flag.

    eqff train config.yaml --max-epochs 50 --lr 5e-4
    eqff train --train-file train.xyz --model segnn --cutoff 5 --output runs/x

Keys are written with underscores in YAML and dashes on the command line. An unknown key is an
error that lists the valid ones. The fully resolved config is saved as ``config.yaml`` in the
run folder.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Union

import yaml

from eqff.errors import ConfigError


@dataclass
class TrainConfig:
    # --- data ---
    train_file: Optional[str] = None  # any ASE-readable file (or MD17 .npz) with energies and forces
    valid_file: Optional[str] = None  # separate validation file; else a seeded split of train_file
    valid_fraction: float = 0.05  # fraction of train_file held out for validation
    n_train: Optional[int] = None  # use at most this many training frames (after the seeded shuffle)
    n_valid: Optional[int] = None  # validation frames from the split (overrides valid_fraction)
    test_file: Optional[str] = None  # evaluated with the best model at the end (test_metrics.json)
    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"
    # per-element reference energies: "auto" (isolated-atom frames in train_file, else least
    # squares), "least_squares", a file of isolated atoms, or a mapping {symbol: eV}
    e0s: Union[str, Dict[str, float]] = "auto"
    # --- model ---
    # ace (default: message-passing ACE, the best error per CPU-minute measured, issue 12) | segnn
    # | egnn | schnet | lifted | pointconv (a baseline: use augment_rotations)
    model: str = "ace"
    cutoff: float = 5.0  # Å
    hyperparameters: Dict[str, Any] = field(default_factory=dict)  # model-specific (see eqff.models)
    dtype: str = "float32"  # float32 | float64
    prior: Optional[str] = None  # None | zbl: short-range nuclear repulsion added to the learned energy
    # at the end, refit the per-element energy shift of best.pt and last.pt by least squares on
    # the training frames' energies (forces untouched; eqff/train/shift_refit.py)
    refit_energy_shift: bool = True
    # --- loss ---
    loss: str = "mse"  # mse | huber
    huber_delta: float = 0.01
    # on energy per atom (eV/atom); null: from the data (statistics.auto_energy_weight): 1 for
    # molecular data (rMD17, liquid water), raised where per-atom energies spread as much as the
    # forces (materials with surfaces, vacancies, strains: ~75 for mlearn Mo)
    energy_weight: Optional[float] = None
    forces_weight: float = 100.0  # on force components (eV/Å)
    stress_weight: Optional[float] = None  # on stress (eV/Å³); default 1.0 if the data has stress, else 0
    # stage two (MACE's second stage): from this fraction of the budget on (see scheduler), the
    # energy weight becomes stage_two_energy_weight; null or "off": one stage; "auto": from the
    # data (statistics.auto_stage_two_at): at half the budget where the energies are starved as
    # in materials (mlearn Mo, 60 minutes, final weights: test energy -36 %, stress -29 %, forces
    # -1 %; benchmarks/RESULTS.md), one stage for molecular sets, where it was not measured
    stage_two_at: Union[float, str, None] = "auto"
    stage_two_energy_weight: float = 1000.0
    # weight of the loss terms of structures by config type, e.g. {Surface: 10}: structures of a
    # type not named keep 1 (as MACE's config_type_weights); the type is atoms.info[config_type_key]
    config_type_weights: Dict[str, float] = field(default_factory=dict)
    config_type_key: str = "config_type"
    # --- optimisation ---
    batch_size: int = 5  # global batch (split over processes under torchrun)
    valid_batch_size: int = 16
    lr: float = 0.01
    weight_decay: float = 0.0
    amsgrad: bool = False  # AMSGrad variant of Adam (MACE's default)
    # cosine: decay to min_lr over the budget, i.e. whichever ends first of max_epochs and
    # max_time_min (eqff/train/schedule.py); plateau: reduce-on-plateau
    scheduler: str = "cosine"
    warmup_epochs: float = 0.3  # linear warm-up from lr/10
    plateau_factor: float = 0.8
    plateau_patience: int = 10  # epochs without improvement before the lr is multiplied by plateau_factor
    min_lr: float = 1e-6
    ema_decay: float = 0.99  # 0 disables the exponential moving average
    grad_clip: float = 10.0  # max gradient norm; 0 disables
    max_epochs: int = 1000  # the budget, with max_time_min (whichever ends first)
    max_time_min: Optional[float] = None  # wall-time limit for the whole run, minutes
    # stop after this many epochs without a better validation loss; null: never (the default:
    # a cosine schedule improves most at its end)
    early_stopping_patience: Optional[int] = None
    # a validation loss this many times the best one means the run diverged (a loss spike can
    # leave the weights in a dead state that never recovers): go back to the best weights, reset
    # the optimizer moments and halve the lr; null disables
    divergence_factor: Optional[float] = 10.0
    # rotate every training structure by a fresh random rotation at each step (positions, cell,
    # force and stress labels; eqff/train/augment.py): for models that are not exactly rotation
    # invariant (pointconv, lifted); invariant models see the same loss
    augment_rotations: bool = False
    # --- run ---
    output: str = "runs/eqff"  # run folder: best.pt, last.pt, config.yaml, metrics.csv, plots
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | cuda:N
    # torch intra-op threads; null: OMP_NUM_THREADS if set, else the cores not busy with other
    # work when the run starts (eqff/threads.py: a thread on a busy core slows every step)
    threads: Optional[int] = None
    checkpoint_every: int = 1  # epochs between last.pt writes
    resume: bool = False  # continue from output/last.pt
    # warm start: the model of this checkpoint (best.pt, last.pt) or exported TorchScript model.pt (a
    # shipped potential: fine-tuning) starts the run instead of a fresh
    # one (the next round of `eqff learn`); it keeps its architecture, hyperparameters, elements and
    # energy shift/scale, and model, cutoff and prior must match it. Epochs, optimizer and
    # schedule start afresh (unlike resume, which continues this run's own last.pt)
    init_from: Optional[str] = None
    progress: bool = True  # progress bar per epoch

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> "TrainConfig":
        choices = {"loss": ("mse", "huber"), "scheduler": ("plateau", "cosine"), "dtype": ("float32", "float64")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key} must be one of {list(allowed)}, got {getattr(self, key)!r}")
        if not self.train_file:
            raise ConfigError("train_file is required (in the config file or as --train-file)")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ConfigError(f"valid_fraction must be in [0, 1), got {self.valid_fraction}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be at least 1 (or null: the free cores), got {self.threads}")
        for key in ("batch_size", "valid_batch_size", "max_epochs", "checkpoint_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        for key in ("energy_weight", "forces_weight", "lr", "cutoff"):
            if getattr(self, key) is None:
                continue
            if getattr(self, key) < 0 or (key in ("lr", "cutoff") and getattr(self, key) == 0):
                raise ConfigError(f"{key} must be positive, got {getattr(self, key)}")
        negative = {k: v for k, v in self.config_type_weights.items() if not float(v) >= 0}
        if negative:
            raise ConfigError(f"config_type_weights must be non-negative numbers, got {negative}")
        at = self.stage_two_at
        if not (at is None or at in ("auto", "off") or isinstance(at, (int, float)) and 0.0 <= at <= 1.0):
            raise ConfigError(f"stage_two_at must be a fraction of the budget in [0, 1], \"auto\" or \"off\" (or null), "
                              f"got {at!r}")
        if self.divergence_factor is not None and not self.divergence_factor > 1:
            raise ConfigError(f"divergence_factor must be above 1 (or null to disable), got {self.divergence_factor}")
        return self


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def unknown_key_hints(values: Dict[str, Any], fields) -> str:
    """The keys of ``values`` not in ``fields``, each with the closest valid key ('' when all are valid)."""
    unknown = [k for k in values if k not in fields]
    hints = {k: difflib.get_close_matches(k, fields, n=1) for k in unknown}
    return "; ".join(f"'{k}' (did you mean '{h[0]}'?)" if h else f"'{k}'" for k, h in hints.items())


def check_keys(values: Dict[str, Any], source: str) -> None:
    hint = unknown_key_hints(values, FIELDS)
    if hint:
        raise ConfigError(f"{source}: unknown key(s) {hint}. Valid keys: {', '.join(FIELDS)}")


def read_yaml_mapping(path: str) -> Dict[str, Any]:
    """A YAML config file as a dict, or a ``ConfigError`` naming the file (any eqff config)."""
    try:
        with open(path) as handle:
            values = yaml.safe_load(handle) or {}
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config ({error})") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config must be a mapping of key: value")
    return values


def load_yaml(path: str) -> Dict[str, Any]:
    values = read_yaml_mapping(path)
    check_keys(values, path)
    return values


def make_config(yaml_path: Optional[str] = None, overrides: Optional[Dict[str, Any]] = None) -> TrainConfig:
    """Defaults <- YAML file <- overrides (e.g. command-line flags)."""
    values: Dict[str, Any] = {}
    if yaml_path:
        values.update(load_yaml(yaml_path))
    if overrides:
        check_keys(overrides, "overrides")
        values.update(overrides)
    return TrainConfig(**values).validate()


def save_yaml(config: TrainConfig, path: str) -> None:
    with open(path, "w") as handle:
        yaml.safe_dump(config.to_dict(), handle, sort_keys=False)


def parse_structured(text: str) -> Any:
    """A flag value for a dict-typed key: JSON or YAML flow syntax, or a file path for e0s."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"cannot parse {text!r} as JSON or YAML ({error})") from error
    return value

"""Uncertainty from one model at little cost: last-layer prediction rigidity (LLPR).

Every eqff model's atomic energy is linear in its last-layer features f_i (the inputs of the
readouts' last linear maps, scaled per element; eqff/models/mpnn.py): E_i = w · f_i + const.
Treating w as the only uncertain parameters of a model fitted to the training set gives the
LLPR of Bigi, Chong, Ceriotti and Grasselli (2024):

    σ_E(s)² = α_E² · F_sᵀ (Σ_t F_t F_tᵀ + ς_E² I)⁻¹ F_s         F_s = Σ_{i in s} f_i, t: training structures
    σ_i²    = α_F² · f_iᵀ (Σ_j f_j f_jᵀ + ς_F² I)⁻¹ f_i         j: training atoms

σ_E is the energy uncertainty of a structure; σ_i, the rigidity of atom i's own local energy
(the local prediction rigidity of Chong et al. 2023), large where the atom's environment is
unlike any in the training set, stands in for its force uncertainty: α_F is calibrated so that
on validation frames mean σ_i² = mean |F_i − F_i,ref|² (as the committee's is), so σ_i is in
eV/Å like a committee's ``forces_std``. ς² is chosen on the validation frames by the Gaussian
negative log-likelihood of the errors. Cost: one matrix product per atom on top of the plain
call (benchmarks: RESULTS.md "Single-model uncertainty").

    eqff uncertainty best.pt --train-file train.xyz --valid-file valid.xyz -o best_llpr.pt
    calc = EqffCalculator("best_llpr.pt")   # calc.results["energy_std"], ["forces_std"]

``best_llpr.pt`` is the checkpoint plus an ``uncertainty`` entry: every loader (ASE, ``eqff
evaluate``, OpenMM's ``UncertaintyReporter``) gives σ, and ``eqff export`` carries it into the
TorchScript file (``compute`` returns it). The σ head itself: eqff/models/last_layer.py.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from eqff.data import keys
from eqff.data.graph import collate
from eqff.errors import ConfigError, EqffError
from eqff.models.last_layer import LastLayerUncertainty, quadratic_form
from eqff.nn.scatter import scatter_sum
from eqff.predict import model_dtype

RELATIVE_REGULARISERS = [10.0 ** k for k in range(-10, 1)]  # ς² / (mean eigenvalue), tried on validation


def training_covariances(potential: nn.Module, graphs: Sequence[Dict[str, np.ndarray]],
                         batch_size: int = 32) -> Tuple[Tensor, Tensor, int, int]:
    """Σ F_t F_tᵀ over structures and Σ f_j f_jᵀ over atoms (float64), one forward pass each batch."""
    dtype = model_dtype(potential)
    energy_cov: Optional[Tensor] = None
    atom_cov: Optional[Tensor] = None
    atoms = 0
    for start in range(0, len(graphs), batch_size):
        batch = collate(graphs[start:start + batch_size], dtype=dtype)
        with torch.no_grad():
            out = potential(batch, False, False, False, True)
        features = out[keys.NODE_FEATURES].double()
        structure = scatter_sum(features, batch[keys.BATCH], batch[keys.CELL].shape[0])
        energy_cov = structure.T @ structure if energy_cov is None else energy_cov + structure.T @ structure
        atom_cov = features.T @ features if atom_cov is None else atom_cov + features.T @ features
        atoms += features.shape[0]
    if energy_cov is None or atom_cov is None:
        raise ConfigError("the uncertainty needs at least one training structure")
    return energy_cov, atom_cov, len(graphs), atoms


def regularised_inverse(covariance: Tensor, relative: float) -> Tensor:
    size = covariance.shape[0]
    level = float(torch.trace(covariance)) / size
    return torch.linalg.inv(covariance + relative * level * torch.eye(size, dtype=covariance.dtype))


def choose(raw_sq: Dict[float, np.ndarray], error_sq: np.ndarray) -> Tuple[float, float, float]:
    """The regulariser whose calibrated σ² = α²·raw² gives the lowest Gaussian NLL of the
    squared errors; returns (regulariser, α, NLL)."""
    best = (float("nan"), float("nan"), float("inf"))
    for relative, raw in raw_sq.items():
        raw = np.maximum(raw, 1e-30)
        alpha_sq = float(error_sq.mean() / raw.mean())
        variance = alpha_sq * raw
        nll = float(np.mean(np.log(variance) + error_sq / variance))
        if nll < best[2]:
            best = (relative, float(np.sqrt(alpha_sq)), nll)
    return best


def fit(module: nn.Module, train_graphs: Sequence[Dict[str, np.ndarray]], valid_graphs: Sequence[Dict[str, np.ndarray]],
        batch_size: int = 32) -> Tuple[LastLayerUncertainty, Dict[str, Any]]:
    """The LLPR head of ``module`` (an eqff potential taking ``compute_features``) and what was
    measured: covariances from ``train_graphs``, regularisers and scales chosen on
    ``valid_graphs`` (with energies and forces)."""
    from eqff.train.evaluation import predict_graphs, references

    energy_cov, atom_cov, structures, atoms = training_covariances(module, train_graphs, batch_size)
    refs = references(valid_graphs)
    if not any(r["forces"] is not None for r in refs):
        raise ConfigError("calibrating the uncertainty needs validation frames with reference forces")
    predictions = predict_graphs(module, valid_graphs, batch_size, compute_stress=False)
    dtype = model_dtype(module)
    valid_structure: List[Tensor] = []
    valid_atoms: List[Tensor] = []
    for start in range(0, len(valid_graphs), batch_size):
        batch = collate(valid_graphs[start:start + batch_size], dtype=dtype)
        with torch.no_grad():
            features = module(batch, False, False, False, True)[keys.NODE_FEATURES].double()
        valid_atoms.append(features)
        valid_structure.append(scatter_sum(features, batch[keys.BATCH], batch[keys.CELL].shape[0]))
    structure_f, atom_f = torch.cat(valid_structure), torch.cat(valid_atoms)
    with_forces = np.concatenate([np.full(len(p["forces"]), r["forces"] is not None) for p, r in zip(predictions, refs)])
    energy_error_sq = np.array([(float(p["energy"]) - r["energy"]) ** 2 for p, r in zip(predictions, refs)])
    force_error_sq = np.concatenate([((p["forces"] - r["forces"]) ** 2).sum(axis=1) for p, r in zip(predictions, refs)
                                     if r["forces"] is not None])
    energy_raw = {lam: quadratic_form(structure_f, regularised_inverse(energy_cov, lam)).numpy()
                  for lam in RELATIVE_REGULARISERS}
    atom_raw = {lam: quadratic_form(atom_f, regularised_inverse(atom_cov, lam)).numpy()[with_forces]
                for lam in RELATIVE_REGULARISERS}
    energy_lam, energy_alpha, energy_nll = choose(energy_raw, energy_error_sq)
    atom_lam, atom_alpha, atom_nll = choose(atom_raw, force_error_sq)
    info = {"method": "llpr", "feature_dim": int(atom_cov.shape[0]), "train_structures": structures,
            "train_atoms": atoms, "valid_structures": len(valid_graphs),
            "energy_regulariser": energy_lam, "forces_regulariser": atom_lam,
            "energy_nll": energy_nll, "forces_nll": atom_nll}
    head = LastLayerUncertainty(regularised_inverse(energy_cov, energy_lam).to(dtype),
                                regularised_inverse(atom_cov, atom_lam).to(dtype), energy_alpha, atom_alpha)
    return head, info


def fit_llpr(checkpoint: str, train_file: Optional[str] = None, valid_file: Optional[str] = None,
             batch_size: int = 32, **labels: str) -> Tuple[nn.Module, Dict[str, Any]]:
    """Fit on a checkpoint: the potential with its uncertainty (an ``ExportedPotential``) and the
    checkpoint's state with the ``uncertainty`` entry (``save_with_uncertainty`` writes it).
    Without files: the training and validation frames of the run that wrote the checkpoint
    (its ``train_config`` and split, checked against its data hash)."""
    from eqff.export import ExportedPotential
    from eqff.models.io import load_checkpoint
    from eqff.runtime.loading import load_model
    from eqff.train.evaluation import graphs_of_file

    loaded = load_model(checkpoint, uncertainty=False)
    if loaded.format != "checkpoint":
        raise ConfigError(f"{checkpoint}: fit the uncertainty on a checkpoint (best.pt), then export it")
    plain = loaded.module
    state = load_checkpoint(checkpoint)
    if (train_file is None) != (valid_file is None):
        raise ConfigError("give both the training and the validation file, or neither (the run's own split)")
    if train_file is None:
        train, valid, where = run_split(state, checkpoint)
    else:
        train = graphs_of_file(plain, train_file, **labels)
        valid = graphs_of_file(plain, valid_file, **labels)
        where = {"train_file": str(train_file), "valid_file": str(valid_file)}
    head, info = fit(plain, train, valid, batch_size)
    info.update(where)
    state["uncertainty"] = {**head.state(), "info": info}
    return ExportedPotential(plain.potential, head).eval(), state


def run_split(state: Dict[str, Any], checkpoint: str) -> Tuple[list, list, Dict[str, Any]]:
    """The training and validation graphs of the run that wrote ``state`` (a trainer checkpoint)."""
    from eqff.train.config import make_config
    from eqff.train.dataset import prepare_data

    values = state.get("train_config")
    if not isinstance(values, dict):
        raise ConfigError(f"{checkpoint}: holds no training config; give --train-file and --valid-file")
    config = make_config(None, {k: v for k, v in values.items() if k not in ("resume", "init_from")})
    try:
        data = prepare_data(config)
    except (OSError, EqffError) as error:
        raise ConfigError(f"{checkpoint}: the run's data cannot be read again ({error}); run from the folder it was "
                          "trained in, or give --train-file and --valid-file") from error
    if state.get("data_hash") not in (None, data.data_hash):
        raise ConfigError(f"{checkpoint}: the files of its training config hold other frames now (data hash differs); "
                          "give --train-file and --valid-file")
    return data.train, data.valid, {"train_file": config.train_file, "valid_file": config.valid_file,
                                    "split": "the training run's own", "data_hash": data.data_hash}


def save_with_uncertainty(state: Dict[str, Any], path: str) -> None:
    """A checkpoint with its uncertainty, written atomically."""
    from eqff.train.checkpoint import save_atomic

    save_atomic(state, path)

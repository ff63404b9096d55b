"""The work of one round's stages, each writing its files into the round folder: calibrate the
committee, explore and select, label. ``loop.py`` decides which stage runs."""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from ase import Atoms

from eqff.learn import plots
from eqff.learn.config import LearnConfig
from eqff.learn.contacts import ContactFloor
from eqff.learn.explore import explore, sigma_histogram
from eqff.data.frames_io import read_images, write_atomic
from eqff.learn.labellers import LabellingError, label, make_labeller
from eqff.learn.select import select_diverse
from eqff.learn.state import write_json_atomic
from eqff.learn.training import member_folder


def calibrated_committee(config: LearnConfig, round_dir: str, valid_path: str):
    """The round's committee (an ``eqff.runtime.LoadedModel``) with σ scaled to its force errors
    on the validation frames (eqff.runtime.committee.calibrate), and what was measured; with
    ``uncertainty: llpr`` the round's one model with its last-layer uncertainty instead."""
    from eqff.runtime import load_model
    from eqff.runtime.committee import calibrate, uncertainty_metrics
    from eqff.train.evaluation import evaluate_file

    paths = [os.path.join(member_folder(round_dir, m), "best.pt") for m in range(config.members)]
    if config.uncertainty == "llpr":
        return _last_layer_model(config, paths[0], os.path.join(round_dir, "train.extxyz"), valid_path)
    loaded = load_model(paths, device=config.device)
    committee = loaded.module
    metrics, predictions, references = evaluate_file(committee, valid_path)
    out: Dict[str, Any] = {"members": paths, "valid_frames": len(predictions),
                           "forces_mae_meV_per_A": metrics.get("forces_mae_meV_per_A"),
                           "energy_mae_meV_per_atom": metrics.get("energy_mae_meV_per_atom")}
    spread = max(float(p["forces_std"].max()) for p in predictions)
    if config.calibrate and spread > 0:
        before = committee.uncertainty_scale
        scale = calibrate(committee, predictions, references)
        for p in predictions:  # the σ the calibrated committee would give, without predicting again
            p["forces_std"], p["energy_std"] = p["forces_std"] * scale / before, p["energy_std"] * scale / before
    elif config.calibrate:
        out["note"] = "the members agree exactly on every validation frame: σ is not calibrated (scale kept)"
    out["uncertainty_scale"] = committee.uncertainty_scale
    out.update(uncertainty_metrics(predictions, references))  # rank correlations; needs >= 3 frames
    return loaded, out


def _last_layer_model(config: LearnConfig, checkpoint: str, train_path: str, valid_path: str):
    """The model with its last-layer uncertainty, fitted on the round's training frames and
    calibrated on the validation frames (eqff.runtime.llpr), saved beside its checkpoint."""
    from eqff.runtime import load_model
    from eqff.runtime.committee import uncertainty_metrics
    from eqff.runtime.llpr import fit_llpr, save_with_uncertainty
    from eqff.train.evaluation import evaluate_file

    _, state = fit_llpr(checkpoint, train_path, valid_path)
    path = os.path.join(os.path.dirname(checkpoint), "best_llpr.pt")
    save_with_uncertainty(state, path)
    loaded = load_model(path, device=config.device)
    metrics, predictions, references = evaluate_file(loaded.module, valid_path)
    out: Dict[str, Any] = {"members": [path], "valid_frames": len(predictions), "llpr": state["uncertainty"]["info"],
                           "forces_mae_meV_per_A": metrics.get("forces_mae_meV_per_A"),
                           "energy_mae_meV_per_atom": metrics.get("energy_mae_meV_per_atom"),
                           "uncertainty_scale": loaded.module.uncertainty.uncertainty_scale}
    out.update(uncertainty_metrics(predictions, references))
    return loaded, out


def explore_and_select(config: LearnConfig, loaded, starts: List[Atoms], k: int, round_dir: str,
                       log: Callable[[str], None], contacts: Optional[ContactFloor] = None) -> Dict[str, Any]:
    """MD with the calibrated committee, then ``selected.extxyz``: the frames to label, each with
    its σ, trajectory, step and the committee's forces (to compare with the label). ``contacts``:
    the closest approach allowed (from the user's training frames); none: no such stop."""
    from eqff.calculators.ase import EqffCalculator

    calculator = EqffCalculator(loaded, device=config.device, threads=config.threads)
    log(f"round {k}: exploring {len(starts)} start structure(s) x {len(config.temperatures)} temperature(s), "
        f"{config.md_steps} steps of {config.timestep_fs:g} fs")
    trajectories = explore(calculator, starts, config.temperatures, config.md_steps, config.timestep_fs,
                           config.friction_per_fs, config.sigma_threshold, config.sigma_stop,
                           seed=config.seed + 100_000 * (k + 1), log=log, contacts=contacts)
    sigmas = np.array([s for t in trajectories for s in t.sigma])
    candidates = [c for t in trajectories for c in t.candidates]
    lost_ends = [t.last_sound for t in trajectories if t.lost and t.last_sound is not None]
    chosen = select_diverse(candidates, config.max_new_frames, config.min_step_gap, first=lost_ends)
    images = []
    for c in chosen:
        atoms = c.atoms.copy()
        atoms.info.update(sigma=c.sigma, trajectory=c.trajectory, step=c.step)
        atoms.arrays["predicted_forces"] = c.forces
        atoms.arrays["forces_std"] = c.forces_std
        images.append(atoms)
    write_atomic(images, os.path.join(round_dir, "selected.extxyz"))
    histogram = sigma_histogram(sigmas, config.sigma_threshold, config.sigma_stop)
    plots.sigma_histogram(histogram, config.sigma_threshold, os.path.join(round_dir, "sigma_histogram.png"),
                          f"round {k}: {len(sigmas)} MD frames")
    above = int((sigmas > config.sigma_threshold).sum())
    log(f"round {k}: {len(sigmas)} frames explored, {above} above sigma_threshold {config.sigma_threshold:g} eV/Å "
        f"({len(candidates)} below sigma_stop), {sum(t.lost for t in trajectories)} trajectory(ies) lost; "
        f"{len(chosen)} selected")
    return {
        "explore": {"trajectories": [t.summary() for t in trajectories], "frames_explored": len(sigmas),
                    "frames_above_threshold": above, "frames_above_stop": int((sigmas > config.sigma_stop).sum()),
                    "trajectories_lost": sum(t.lost for t in trajectories),
                    "candidates": len(candidates), "sigma_max": float(sigmas.max()),
                    "sigma_median": float(np.median(sigmas)), "sigma_threshold": config.sigma_threshold,
                    "sigma_stop": config.sigma_stop, "sigma_histogram": histogram},
        "select": {"selected": len(chosen), "frames": [{"trajectory": c.trajectory, "step": c.step, "sigma": c.sigma,
                                                        "why": "last frame of a lost trajectory"
                                                        if any(c is e for e in lost_ends) else "sigma"}
                                                       for c in chosen]},
    }


def label_selected(config: LearnConfig, round_dir: str, k: int,
                   log: Callable[[str], None]) -> Tuple[List[Atoms], Dict[str, Any]]:
    """Label every frame of ``selected.extxyz`` that has no label yet (one file per frame in
    ``labels/``, written atomically: a rerun never labels a frame twice); the labelled frames in
    order and the record: frames added, failures, and each frame's true force error against σ."""
    selected_path = os.path.join(round_dir, "selected.extxyz")
    selected = read_images(selected_path)
    labels = os.path.join(round_dir, "labels")
    os.makedirs(labels, exist_ok=True)
    labeller, now = None, 0
    for i, atoms in enumerate(selected):
        path, failed_path = _label_paths(labels, i)
        if os.path.exists(path) or os.path.exists(failed_path):
            continue
        if labeller is None:  # built only when needed: a rerun with every label present needs no DFT code
            labeller = make_labeller(config.labeller, config.labeller_kwargs, threads=config.threads)
        where = f"{selected_path}: frame {i}"
        try:
            labelled = label(labeller, atoms, config.label_stress, where)
        except Exception as error:  # the labeller's own errors are of any type (SCF failures, I/O)
            if not config.skip_failed_labels:
                raise LabellingError(f"{where}: the labeller {config.labeller!r} failed ({type(error).__name__}: "
                                     f"{error}); fix it and rerun with --resume (labelled frames are kept), or set "
                                     "skip_failed_labels: true") from error
            write_json_atomic({"frame": i, "error": f"{type(error).__name__}: {error}"}, failed_path)
            log(f"round {k}: {where}: labelling failed, skipped ({error})")
            continue
        write_atomic([labelled], path)
        now += 1
    added, failed, pairs = [], [], []
    for i, atoms in enumerate(selected):
        path, _ = _label_paths(labels, i)
        if not os.path.exists(path):
            failed.append(i)
            continue
        labelled = read_images(path)[0]
        added.append(labelled)
        error = np.linalg.norm(atoms.arrays["predicted_forces"] - labelled.get_forces(), axis=1)
        pairs.append({"frame": i, "sigma": float(atoms.info["sigma"]), "force_error_max": float(error.max()),
                      "force_error_mean": float(error.mean()),
                      "sigma_of_worst_atom": float(atoms.arrays["forces_std"][int(error.argmax())])})
    plots.error_vs_sigma(pairs, os.path.join(round_dir, "error_vs_sigma.png"), f"round {k}: labelled frames")
    record: Dict[str, Any] = {"frames_added": len(added), "labelled_this_session": now, "failed_frames": failed,
                              "errors_vs_sigma": pairs}
    if len(pairs) >= 3:
        from scipy.stats import spearmanr

        record["spearman_sigma_vs_force_error_max"] = float(spearmanr([p["sigma"] for p in pairs],
                                                                      [p["force_error_max"] for p in pairs])[0])
    return added, record


def _label_paths(folder: str, i: int) -> Tuple[str, str]:
    return os.path.join(folder, f"frame_{i:04d}.extxyz"), os.path.join(folder, f"frame_{i:04d}.failed.json")

"""Does a closed-form refit of the last layer lower a trained model's errors? (issue 17, exploratory)

Every eqff model's energy is linear in its last-layer features (eqff/runtime/llpr.py):
E_s = w · F_s + const, F_s = Σ_i f_i, and so are its forces: F_i = −w · ∂F_s/∂x_i. With the
features frozen, the best last-layer weights for a weighted energy + force loss are a ridge
regression: this script solves it on the training frames for a correction Δw, picks the ridge
strength on the validation frames, and reports train / valid / test errors before and after
(per config type where the frames carry one). Nothing is written to the model: the corrected
predictions are E + Δw · F_s and F − Δw · ∂F_s/∂x, exact for the corrected model.

    python benchmarks/last_layer_refit.py RUN/last.pt --train T.xyz --valid V.xyz --test TEST.xyz \
        --energy-weight 1000 --forces-weight 100 [--max-force-frames 60] [--output refit.json]
"""
from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import numpy as np
import torch

from eqff.data import keys
from eqff.data.graph import collate, frame_to_graph
from eqff.nn.geometry import edge_vectors
from eqff.nn.scatter import scatter_sum
from eqff.runtime.loading import load_model
from eqff.train.evaluation import labelled_frames


def linear_parts(potential, graphs, with_jacobian: bool, batch_size: int = 4):
    """Per structure: predicted E, reference E, atoms, summed features F_s [D]; per atom (with
    the Jacobian): predicted F, reference F, ∂F_s/∂x_i [D, 3]."""
    rows = []
    for start in range(0, len(graphs), batch_size):
        part = graphs[start:start + batch_size]
        batch = collate(part, dtype=torch.float64)
        out = potential(batch, compute_forces=True, compute_features=True)  # the model's own E, F and f_i
        summed = scatter_sum(out[keys.NODE_FEATURES], batch[keys.BATCH], len(part))
        jacobian = feature_jacobian(potential, batch) if with_jacobian else None
        index = batch[keys.BATCH].numpy()
        for s, graph in enumerate(part):
            atoms = index == s
            rows.append({"energy": float(out[keys.ENERGY][s].detach()), "energy_ref": float(graph[keys.ENERGY]),
                         "atoms": int(atoms.sum()), "summed": summed[s].detach().numpy(),
                         "forces": out[keys.FORCES][atoms].detach().numpy(), "forces_ref": np.asarray(graph[keys.FORCES]),
                         "jacobian": None if jacobian is None else jacobian[atoms].numpy()})
    return rows


def feature_jacobian(potential, batch):
    """∂(Σ_i f_i)/∂x_j [N, D, 3], the features scaled as the potential reports them (the
    potential's forward detaches them, so they are recomputed here with the positions' graph)."""
    positions = batch[keys.POSITIONS].detach().requires_grad_(True)
    species = potential.species(batch[keys.ATOMIC_NUMBERS])
    vectors = edge_vectors(positions, batch[keys.CELL], batch[keys.BATCH], batch[keys.EDGE_INDEX], batch[keys.CELL_SHIFTS])
    _, features = potential.model.energies_and_features(species, batch[keys.EDGE_INDEX], vectors)
    features = potential.energy_scale[species].unsqueeze(-1) * features
    return torch.stack([torch.autograd.grad(features[:, k].sum(), positions, retain_graph=True)[0]
                        for k in range(features.shape[1])], dim=1).detach()


def normal_equations(rows, energy_weight: float, forces_weight: float):
    """AᵀWA and AᵀWr of the loss  λ_E mean_s(ΔE_s/N_s)² + λ_F mean(ΔF)²  in Δw."""
    d = rows[0]["summed"].shape[0]
    ata, atr = np.zeros((d, d)), np.zeros(d)
    n_s = len(rows)
    n_f = sum(3 * r["atoms"] for r in rows if r["jacobian"] is not None)
    for r in rows:
        a = r["summed"] / r["atoms"]
        res = (r["energy_ref"] - r["energy"]) / r["atoms"]
        ata += energy_weight / n_s * np.outer(a, a)
        atr += energy_weight / n_s * a * res
        if r["jacobian"] is not None:
            a_f = -r["jacobian"].transpose(0, 2, 1).reshape(-1, d)  # rows: atom, component
            res_f = (r["forces_ref"] - r["forces"]).reshape(-1)
            ata += forces_weight / n_f * a_f.T @ a_f
            atr += forces_weight / n_f * a_f.T @ res_f
    return ata, atr


def errors(rows, delta, groups):
    """Energy MAE (meV/atom) and force MAE (meV/Å; over the frames with a Jacobian, before and
    after alike), all and per group, with the correction."""
    out = defaultdict(lambda: {"e": [], "f": []})
    for r, g in zip(rows, groups):
        e = r["energy"] + (delta @ r["summed"] if delta is not None else 0.0)
        err_e = abs(e - r["energy_ref"]) / r["atoms"] * 1e3
        f = r["forces"]
        if delta is not None and r["jacobian"] is not None:
            f = f - np.einsum("k,ikc->ic", delta, r["jacobian"])
        err_f = list(np.abs(f - r["forces_ref"]).reshape(-1) * 1e3) if r["jacobian"] is not None else []
        for key in ("all", g):
            if key is None:
                continue
            out[key]["e"].append(err_e)
            out[key]["f"].extend(err_f)
    return {k: {"energy_meV_per_atom": float(np.mean(v["e"])), "forces_meV_per_A": float(np.mean(v["f"])) if v["f"] else None,
                "structures": len(v["e"])} for k, v in out.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--train", required=True)
    parser.add_argument("--valid", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--energy-weight", type=float, default=1000.0)
    parser.add_argument("--forces-weight", type=float, default=100.0)
    parser.add_argument("--max-force-frames", type=int, default=60,
                        help="training frames whose force rows enter the fit (the Jacobian costs D backward passes)")
    parser.add_argument("--output")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.time()
    potential = load_model(args.checkpoint, dtype="float64", uncertainty=False).module.potential
    cutoff = float(potential.cutoff)

    def load(path, jac_frames):
        frames = labelled_frames(potential, path)
        graphs = [frame_to_graph(f, cutoff) for f in frames]
        chosen = set(np.linspace(0, len(graphs) - 1, min(jac_frames, len(graphs))).round().astype(int)) if jac_frames else set()
        rows = linear_parts(potential, [g for i, g in enumerate(graphs) if i in chosen], True) if chosen else []
        rest = linear_parts(potential, [g for i, g in enumerate(graphs) if i not in chosen], False)
        order = [i for i in range(len(graphs)) if i in chosen] + [i for i in range(len(graphs)) if i not in chosen]
        return rows + rest, [frames[i].config_type for i in order]

    train, train_groups = load(args.train, args.max_force_frames)
    valid, valid_groups = load(args.valid, 10 ** 9)
    test, test_groups = load(args.test, 10 ** 9)
    ata, atr = normal_equations(train, args.energy_weight, args.forces_weight)
    scale = np.trace(ata) / len(atr)
    results = {"checkpoint": args.checkpoint, "features": len(atr), "energy_weight": args.energy_weight,
               "forces_weight": args.forces_weight, "force_frames": args.max_force_frames,
               "before": {"train": errors(train, None, train_groups), "valid": errors(valid, None, valid_groups),
                          "test": errors(test, None, test_groups)}, "ridge": {}}
    best = None
    for k in range(-8, 3):
        delta = np.linalg.solve(ata + 10.0 ** k * scale * np.eye(len(atr)), atr)
        v = errors(valid, delta, valid_groups)["all"]
        loss = args.energy_weight * v["energy_meV_per_atom"] ** 2 + args.forces_weight * v["forces_meV_per_A"] ** 2
        results["ridge"][f"1e{k}"] = {"valid": v, "test": errors(test, delta, test_groups)["all"]}
        if best is None or loss < best[0]:
            best = (loss, k, delta)
    _, k, delta = best
    results["chosen_ridge"] = f"1e{k}"
    results["after"] = {"train": errors(train, delta, train_groups), "valid": errors(valid, delta, valid_groups),
                        "test": errors(test, delta, test_groups)}
    results["seconds"] = time.time() - start
    for when in ("before", "after"):
        for split in ("train", "valid", "test"):
            for group, e in sorted(results[when][split].items()):
                print(f"{when:6s} {split:5s} {group:12s} E {e['energy_meV_per_atom']:8.3f} meV/atom  "
                      f"F {e['forces_meV_per_A'] if e['forces_meV_per_A'] is not None else float('nan'):8.2f} meV/Å  ({e['structures']})")
    print(f"ridge {results['chosen_ridge']} (relative), {results['seconds']:.0f} s")
    if args.output:
        json.dump(results, open(args.output, "w"), indent=1)


if __name__ == "__main__":
    main()

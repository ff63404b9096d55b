"""Package a finished training run as a shipped potential: potentials/<name>/ with the exported
model, its config, test metrics (`eqff evaluate`), the `eqff check` report and MODEL_CARD.md.

    python potentials/package.py benchmarks/runs/ethanol_ace_ft2 --name ethanol_ace --dataset rmd17_ethanol

The data a card points to is bundled under potentials/data/<dataset>/ (licenses allow it).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))

# Fu et al.'s settings as their code (github.com/kyonofx/MDsim, configs/simulate/) has them
FU_MOLECULES = ("Published rows: Fu et al. ran MD17 molecules (the original MD17 labels; 10k-frame training "
                "sets in their code's configs) 300 ps at 500 K with a 0.5 fs step (Nosé–Hoover); their table of stability times is not reproduced here (see "
                "arXiv:2210.07237). This run: the same criterion (0.5 Å from the mean bond length of the training "
                "frames), length and temperature, Langevin thermostat, 950 rMD17 training frames.")


DATASETS = {
    "rmd17_ethanol": {
        "title": "revised MD17 ethanol",
        "source": "BOTNet-datasets `dataset_ethanol/` (rMD17: Christensen & von Lilienfeld, Mach. Learn.: Sci. "
                  "Technol. 1, 045018 (2020))",
        "license": "MIT",
        "level": "DFT PBE/def2-SVP (ORCA 4.2, VeryTightSCF, Grid 7)",
        "test": "test_MD.xyz.gz (1000 frames, disjoint from train)",
        "published": [("MACE", "0.4 / 2.1"), ("Allegro", "0.4 / 2.1"), ("NequIP", "0.4 / 2.8"), ("BOTNet", "0.4 / 3.2"),
                      ("PaiNN", "2.7 / 10.0"), ("ACE", "1.2 / 7.3"), ("GAP", "3.5 / 18.1")],
        "published_note": "Batatia et al., MACE, NeurIPS 2022, Table 1: 950 train + 50 validation frames; "
                          "energy MAE meV per molecule / force MAE meV/Å. Their test frames are not exactly ours.",
        "fu_published": FU_MOLECULES,
    },
    "rmd17_aspirin": {
        "title": "revised MD17 aspirin",
        "source": "mace-jax `data/` (rMD17: Christensen & von Lilienfeld 2020)",
        "license": "MIT",
        "level": "DFT PBE/def2-SVP",
        "test": "test.xyz.gz (1800 frames, disjoint from train; not the paper's 1000/1000 split)",
        "published": [("MACE", "2.2 / 6.6"), ("Allegro", "2.3 / 7.3"), ("NequIP", "2.3 / 8.2"), ("BOTNet", "2.3 / 8.5"),
                      ("PaiNN", "6.9 / 16.1"), ("ACE", "6.1 / 17.9"), ("GAP", "17.7 / 44.9")],
        "published_note": "Batatia et al., MACE, NeurIPS 2022, Table 1: 950 train + 50 validation frames; "
                          "energy MAE meV per molecule / force MAE meV/Å. Their test frames are not exactly ours.",
        "fu_published": FU_MOLECULES,
    },
    "water_192": {
        "title": "liquid water, 64 molecules in a 12.44 Å periodic cube",
        "source": "deepmd-kit `examples/water/data` (converted to extxyz)",
        "license": "LGPL-3.0",
        "level": "DFT (functional not stated by the source)",
        "test": "test.xyz.gz (the 50 frames left by a seeded 300/50/rest split)",
        "published": [],
        "published_note": "No published error table for this exact split.",
        "fu_published": ("Published rows: Fu et al. ran water 500 ps at 300 K with a 1 fs step (Nosé–Hoover) on "
                         "their own flexible-water data set, a different one from this; their table is not reproduced "
                         "here, and no published run exists for this data."),
    },
    "mlearn_mo": {
        "title": "bcc molybdenum (mlearn Mo: bulk, strained cells, surfaces, vacancies, AIMD snapshots)",
        "source": "mlearn (Materials Virtual Lab; Zuo et al., J. Phys. Chem. A 124, 731 (2020)); VASP "
                  "virials converted to ASE stresses (eV/Å³) by eqff's reader",
        "license": "BSD-3-Clause (`potentials/data/mlearn_mo/LICENSE`)",
        "level": "DFT PBE (VASP)",
        "test": "test.xyz.gz (mlearn's 23 test structures, all of them)",
        "published": [("GAP", "2.24 meV/atom / 90"), ("MTP", "2.83 meV/atom / 90")],
        "published_note": "Zuo et al. 2020: converged fits on the same 194 training and 23 test "
                          "structures; energy MAE per atom / force MAE meV/Å.",
        # eqff check --protocol materials: the crystal and the DFT values (Zuo et al. 2020: PBE)
        "materials": {"structure": "bcc_mo.xyz", "dft": "472,158,106", "dft_vacancy": "2.70"},
    },
}


def sh(args, **kwargs):
    print("$ " + " ".join(args), flush=True)
    return subprocess.run(args, **kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="training run folder (best.pt, config.yaml, metrics.csv, stdout.log)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    parser.add_argument("--test-file", help="default: potentials/data/<dataset>/test.xyz.gz")
    parser.add_argument("--nve-ps", type=float, default=2.0)
    parser.add_argument("--nvt-ps", type=float, default=1.0)
    parser.add_argument("--skip-check", action="store_true")
    parser.add_argument("--card-only", action="store_true",
                        help="rewrite MODEL_CARD.md from the files already in potentials/<name>/ (no export, "
                             "evaluation or check)")
    parser.add_argument("--checkpoint", default="best.pt",
                        help="the run's checkpoint to ship: best.pt (best validation epoch) or last.pt (the final "
                             "weights; say why in training_notes.md)")
    parser.add_argument("--clone-command",
                        help="the command that repeats the run from a clone, where the run's frames are not the "
                             "bundled files taken whole (default: `eqff train` with the bundled files)")
    parser.add_argument("--cpu",
                        help="the CPU the run trained on, for the card (default: what the run's last.pt recorded; "
                             "runs before 2026-12-08 recorded none: then say it here)")
    parser.add_argument("--uncertainty", action="store_true",
                        help="ship the last-layer uncertainty (eqff uncertainty on the run's own split): the exported "
                             "model then returns energy_std and forces_std")
    args = parser.parse_args()

    out = os.path.join(HERE, args.name)
    os.makedirs(out, exist_ok=True)
    info = DATASETS[args.dataset]
    test_file = args.test_file or os.path.join(HERE, "data", args.dataset, "test.xyz.gz")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    eqff = [sys.executable, "-m", "eqff"]
    if args.card_only:
        write_card(args, out, info, test_file, None)
        return
    checkpoint = os.path.join(args.run, args.checkpoint)
    if args.uncertainty:
        with_sigma = os.path.join(args.run, "best_llpr.pt")
        sh(eqff + ["uncertainty", checkpoint, "-o", with_sigma], check=True, env=env)
        checkpoint = with_sigma
    sh(eqff + ["export", checkpoint, "-o", os.path.join(out, "model.pt")], check=True, env=env)
    for name in ("config.yaml", "metrics.csv", "learning_curves.png", "parity_test.png"):
        if os.path.exists(os.path.join(args.run, name)):
            shutil.copy(os.path.join(args.run, name), os.path.join(out, name))
    sh(eqff + ["evaluate", os.path.join(out, "model.pt"), test_file, "--output", os.path.join(out, "metrics.json")],
       check=True, env=env)
    check_status = None
    if not args.skip_check:
        result = sh(eqff + ["check", os.path.join(out, "model.pt"), "-o", os.path.join(out, "check"),
                            "--nve-ps", str(args.nve_ps), "--nvt-ps", str(args.nvt_ps)], env=env)
        check_status = "PASS" if result.returncode == 0 else "FAIL"
        materials = info.get("materials")
        if materials:  # a periodic crystal: equation of state, elastic constants, vacancy, NPT
            sh(eqff + ["check", os.path.join(out, "model.pt"), "-o", os.path.join(out, "check_materials"),
                       "--protocol", "materials", "--structure", os.path.join(HERE, "data", args.dataset,
                                                                               materials["structure"]),
                       "--dft", materials["dft"], "--dft-vacancy", materials["dft_vacancy"]], check=True, env=env)
    write_card(args, out, info, test_file, check_status)


def stability_protocol_section(out: str, info: dict) -> list:
    """The card's section on `eqff check --protocol stability` (Fu et al. 2023), from the report
    copied into <potential>/stability_protocol/, beside the published rows where the dataset has them."""
    report = os.path.join(out, "stability_protocol", "stability.md")
    if not os.path.exists(report):
        return []
    body = open(report).read().split("\n", 2)[2].strip()  # without its title
    body = body.replace(os.path.dirname(HERE) + os.sep, "")  # paths from the repository root
    for image in ("stability.png", "rdf.png"):
        body = body.replace(f"]({image})", f"](stability_protocol/{image})")
    lines = ["", "## Stability protocol (Fu et al. 2023)", "", body]
    published = info.get("fu_published")
    if published:
        lines += ["", published]
    return lines


def last_trainer_state(run: str) -> dict:
    """The trainer state of the run's last.pt (times, CPUs of its sessions); {} without last.pt."""
    from eqff.models.io import load_checkpoint

    path = os.path.join(run, "last.pt")
    return load_checkpoint(path).get("trainer", {}) if os.path.exists(path) else {}


def training_machines(trainer: dict) -> str:
    """The CPUs the run's sessions trained on, as its last.pt recorded them ("" if it did not)."""
    return "; then ".join(trainer.get("machines", []))


def training_time(run: str, trainer: dict) -> str:
    """The run's total training time in words, from its last.pt (wall and CPU time over every
    session; sessions before the CPU time was recorded are counted by their wall time)."""
    if not trainer:
        return ""
    wall = float(trainer.get("elapsed_s", 0.0)) / 60.0
    sessions = sum(1 for line in open(os.path.join(run, "sessions.log"))) if os.path.exists(os.path.join(run, "sessions.log")) else 1
    if "cpu_s" not in trainer:
        return f"Total: {wall:.0f} min wall over {sessions} session(s) (CPU time not recorded; one thread, so at most that)."
    cpu, unrecorded = float(trainer["cpu_s"]) / 60.0, float(trainer.get("cpu_unrecorded_wall_s", 0.0)) / 60.0
    extra = f" plus {unrecorded:.0f} min wall of earlier sessions whose CPU time was not recorded" if unrecorded else ""
    return f"Total: {wall:.0f} min wall over {sessions} session(s), {cpu:.0f} min CPU{extra}."


def total_from_card(card: str) -> str:
    """The "Total: ..." sentence of an earlier card, for a --card-only rewrite whose run folder no
    longer holds last.pt (a snapshot in benchmarks/runs/ keeps the logs, not the checkpoints)."""
    if not os.path.exists(card):
        return ""
    for line in open(card):
        if " Total: " in line:
            return "Total: " + line.split(" Total: ", 1)[1].strip()
    return ""


def training_command(run: str) -> str:
    """The command that trained the run: command.txt (written by the training scripts of
    potentials/ and benchmarks/), else the first `eqff train` line of stdout.log."""
    recorded = os.path.join(run, "command.txt")
    if os.path.exists(recorded):
        return open(recorded).read().strip()
    log = os.path.join(run, "stdout.log")
    if os.path.exists(log):
        for line in open(log):
            if " -m eqff train " in line:
                return line.strip()
    return "(not recorded)"


def clone_command(config: dict, dataset: str) -> str:
    """The training command with the data paths replaced by the bundled files."""
    bundled = {"train_file": "train.xyz.gz", "valid_file": "valid.xyz.gz", "test_file": "test.xyz.gz",
               "e0s": "isolated_atoms.xyz"}
    defaults = {"valid_fraction": 0.05, "progress": True, "resume": False}
    parts = ["eqff train"]
    from eqff.train.config import TrainConfig

    default = TrainConfig()
    for key in ("model", "train_file", "valid_file", "test_file", "e0s", "n_train", "n_valid", "batch_size", "lr",
                "max_time_min", "dtype", "seed", "hyperparameters", "prior", "energy_weight", "forces_weight",
                "stress_weight", "stage_two_at", "stage_two_energy_weight", "config_type_weights", "config_type_key"):
        value = config.get(key)
        # the loss weights only where they differ from TrainConfig's; stage two's only where a second stage may run
        skip_weight = key in ("forces_weight", "stage_two_energy_weight") and value == getattr(default, key)
        skip_weight |= key == "stage_two_energy_weight" and config.get("stage_two_at") in (None, "off")
        if value in (None, {}, "auto") or skip_weight \
                or (key == "config_type_key" and not config.get("config_type_weights")):
            continue
        if key in bundled and isinstance(value, str) and ("/" in value or value.endswith(".xyz")):
            value = f"potentials/data/{dataset}/{bundled[key]}"
        if isinstance(value, dict):
            value = "'" + json.dumps(value) + "'"
        parts.append(f"--{key.replace('_', '-')} {value}")
    parts.append(f"--output runs/{dataset}_{config.get('model')}")
    return " ".join(parts)


def write_card(args, out, info, test_file, check_status):
    from eqff.export import read_metadata

    meta = read_metadata(os.path.join(out, "model.pt"))
    config = yaml.safe_load(open(os.path.join(out, "config.yaml")))
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    rows = open(os.path.join(out, "metrics.csv")).read().strip().splitlines()
    header, last = rows[0].split(","), rows[-1].split(",")
    epochs, wall = last[header.index("epoch")], float(last[header.index("wall_time_s")]) / 60
    trainer = last_trainer_state(args.run)
    cpu_line = training_time(args.run, trainer) or total_from_card(os.path.join(out, "MODEL_CARD.md"))
    cpu = args.cpu or training_machines(trainer)
    if not cpu:
        raise SystemExit(f"{args.run}/last.pt records no CPU (a run from before 2026-12-08): give --cpu")
    hp = meta["model_config"]["hyperparameters"]
    bundled = f"potentials/data/{args.dataset}/"
    lines = [
        f"# {args.name}: {meta['kind']} potential for {info['title']}", "",
        "| | |", "|---|---|",
        f"| model | `{meta['kind']}`, {', '.join(f'{k}={v}' for k, v in sorted(hp.items()))} |",
        f"| elements, cutoff | {', '.join(meta['element_symbols'])}; {meta['cutoff']} Å |",
        f"| file | `model.pt` (TorchScript, {meta['dtype']}, eqff {meta['eqff_version']}, torch {meta['torch_version']}) |",
        f"| training data | {info['title']}: {info['source']} |",
        f"| license of the data | {info['license']} (bundled in `{bundled}`) |",
        f"| level of theory | {info['level']} |",
        f"| training-data hash | `{meta.get('training_data_hash')}` (train + validation frames) |",
        f"| test set | {info['test']} |", "",
        "## Training",
        f"{epochs} epochs in {wall:.0f} min on 1 thread ({cpu}; CPU only), float32, "
        f"budget `max_time_min: {config.get('max_time_min')}`; "
        + ("best validation epoch kept" if args.checkpoint == "best.pt" else f"`{args.checkpoint}` shipped")
        + f" (EMA weights). {cpu_line}", "",
        "Exact command (paths of the original run; the bundled files hold the same frames):", "",
        "```", training_command(args.run), "```", "",
        "The same run from a clone, on the bundled data (same frames, same training-data hash):", "",
        "```", args.clone_command or clone_command(config, args.dataset), "```", "",
        "Resolved config: `config.yaml`. Learning curves: `learning_curves.png`, test parity: `parity_test.png`.", "",
    ]
    notes = os.path.join(out, "training_notes.md")  # written by hand, kept when the card is rewritten
    if os.path.exists(notes):
        lines += [open(notes).read().strip(), ""]
    lines += [
        "## Test errors", "",
        f"`eqff evaluate model.pt {os.path.relpath(test_file, os.path.dirname(HERE))} --output metrics.json` "
        f"({metrics['n_structures']} structures):", "",
    ]
    stress = metrics.get("stress_mae_meV_per_A3") is not None
    lines += ["| | energy MAE (meV) | energy MAE (meV/atom) | force MAE (meV/Å) | force RMSE (meV/Å) |"
              + (" stress MAE (meV/Å³) |" if stress else ""), "|---|---|---|---|---|" + ("---|" if stress else ""),
              f"| **this model** | {metrics['energy_mae_meV']:.2f} | {metrics['energy_mae_meV_per_atom']:.3f} | "
              f"{metrics['forces_mae_meV_per_A']:.2f} | {metrics['forces_rmse_meV_per_A']:.2f} |"
              + (f" {metrics['stress_mae_meV_per_A3']:.2f} |" if stress else "")]
    if metrics.get("by_group"):  # errors per config type of the test frames
        lines += ["", "Per config type of the test frames:", "",
                  "| config type | structures | energy MAE (meV/atom) | force MAE (meV/Å) |"
                  + (" stress MAE (meV/Å³) |" if stress else ""), "|---|---|---|---|" + ("---|" if stress else "")]
        for name, group in sorted(metrics["by_group"].items()):
            lines.append(f"| {name} | {group['n_structures']} | {group['energy_mae_meV_per_atom']:.2f} | "
                         f"{group['forces_mae_meV_per_A']:.1f} |"
                         + (f" {group['stress_mae_meV_per_A3']:.2f} |" if stress else ""))
    if info["published"]:
        lines += ["", "Published (energy / force MAE): " + "; ".join(f"{m} {v}" for m, v in info["published"]) + ".",
                  info["published_note"]]
    else:
        lines += ["", info["published_note"]]
    if "spearman_frame_sigma_vs_force_mae" in metrics:
        lines += ["", "## Uncertainty", "",
                  "`model.pt` returns `energy_std` (eV) and `forces_std` (eV/Å per atom) beside energy and forces: the "
                  "last-layer uncertainty of `eqff uncertainty`, fitted on the training frames and calibrated on the "
                  "validation frames (`eqff/runtime/llpr.py`). On the test frames:", "",
                  "| mean σ_F (meV/Å) | Spearman frame σ_F vs force MAE | Spearman atom σ_F vs error | RMS error / RMS σ_F |",
                  "|---|---|---|---|",
                  f"| {metrics['forces_std_mean_meV_per_A']:.1f} | {metrics['spearman_frame_sigma_vs_force_mae']:.2f} | "
                  f"{metrics['spearman_atom_sigma_vs_force_error']:.2f} | {metrics['calibration_rms_error_over_rms_sigma']:.2f} |",
                  "", "It ranks frames like the training data well; it does not flag bond breaking (benchmarks/RESULTS.md, "
                  "\"Single-model uncertainty\"): use a committee for that."]
    lines += ["", "## eqff check", ""]
    report_path = os.path.join(out, "check", "report.md")
    if check_status is None and os.path.exists(report_path):  # --skip-check: keep the earlier report
        check_status = "PASS" if "result: **PASS**" in open(report_path).read() else "FAIL"
    if check_status:
        report = open(os.path.join(out, "check", "report.md")).read().splitlines()
        table = [l for l in report if l.startswith("|")]
        lines += [f"`eqff check model.pt` → **{check_status}** (full report with plots: `check/report.md`)", ""] + table
    else:
        lines += ["not run"]
    materials = os.path.join(out, "check_materials", "materials.md")
    if os.path.exists(materials):
        body = [l for l in open(materials).read().splitlines()[2:] if not l.startswith("![")]
        lines += ["", "## Materials checks", "",
                  f"`eqff check model.pt --protocol materials --structure "
                  f"potentials/data/{args.dataset}/{info['materials']['structure']} --dft {info['materials']['dft']} "
                  f"--dft-vacancy {info['materials']['dft_vacancy']}` (full report: `check_materials/materials.md`):", ""]
        lines += [l.replace(os.path.dirname(HERE) + os.sep, "") for l in body]  # paths from the repository root
        lines += ["![equation of state](check_materials/eos.png)"]
    stability = os.path.join(out, "stability.md")
    if os.path.exists(stability):
        body = open(stability).read().split("\n", 2)[2]  # without its title
        lines += ["", "## Long MD (potentials/stability.py)", "", body.replace("](stability.png)", "](stability.png)").strip()]
    lines += stability_protocol_section(out, info)
    lines += ["", "## Use", "", "```python", "import eqff",
              f'atoms.calc = eqff.EqffCalculator("potentials/{args.name}/model.pt")',
              f'force = eqff.openmm.torch_force("potentials/{args.name}/model.pt", topology=topology)', "```", "",
              "Limitations: trained on CPU under a short budget (see Training); valid only near the configurations of "
              "the training data (same molecule / phase and temperatures); no long-range electrostatics beyond the "
              f"{meta['cutoff']} Å cutoff. Configurations unlike the training data extrapolate freely: the dimer scan "
              "of `check/cutoff.png` (pairs of atoms alone, never seen in training) shows how far; do not use the "
              "model for dissociation or for atoms far from the training environments.", "",
              f"_Card written by `potentials/package.py` on {time.strftime('%Y-%m-%d')}._"]
    with open(os.path.join(out, "MODEL_CARD.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print(f"wrote {out}/MODEL_CARD.md")


if __name__ == "__main__":
    main()

"""``eqff check MODEL [--structure FILE] [--protocol stability]``: validate a potential; non-zero exit on failure."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="checkpoint or exported model file")
    parser.add_argument("--structure", help="structure to test on (first frame of any ASE file); "
                                            "default: the example structure stored in the model")
    parser.add_argument("--output", "-o", default="check", help="folder for report.md and the plots")
    parser.add_argument("--nve-ps", type=float, default=2.0, help="length of the NVE run (ps)")
    parser.add_argument("--nvt-ps", type=float, default=1.0, help="length of each NVT run (ps)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 600.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--protocol", choices=["standard", "stability", "materials"], default="standard",
                        help="standard: symmetry, forces, cutoff, export, NVE and short NVT checks; stability: the MD "
                             "stability protocol of Fu et al. 2023 (bond criterion; g(r) with --reference); materials: "
                             "equation of state, cubic elastic constants, vacancy formation energy, NPT (--structure: "
                             "a periodic crystal)")
    parser.add_argument("--stability-ps", type=float, default=10.0,
                        help="length cap of the stability run (ps); the full protocol is 300 (molecules)")
    parser.add_argument("--stability-temperature", type=float, default=None,
                        help="K; default 500 for a molecule, 300 for a periodic structure")
    parser.add_argument("--timestep", type=float, default=0.5, help="fs, for the stability run")
    parser.add_argument("--reference", help="stability: frames of the training data; each bond's deviation is measured from its "
                                            "mean length over them (frames with the structure's atoms in its order), "
                                            "and a periodic structure's g(r) is compared with theirs")
    parser.add_argument("--engine", choices=["ase", "openmm"], default="ase",
                        help="stability: run the dynamics in ASE (any stack) or in OpenMM (the eqff force on the CPU "
                             "platform, as in production MD)")
    parser.add_argument("--resume", action="store_true",
                        help="stability: go on with the run saved in OUTPUT/stability_state.json (after a stop, or to "
                             "extend it to a longer --stability-ps)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: eqff chooses)")
    parser.add_argument("--dft", help="materials: DFT C11,C12,C44 in GPa to print beside eqff's (e.g. 472,158,106)")
    parser.add_argument("--dft-vacancy", type=float, help="materials: DFT vacancy formation energy (eV)")
    parser.add_argument("--supercell", type=int, default=3, help="materials: repeats of the cell for vacancy and NPT")
    parser.add_argument("--npt-ps", type=float, default=2.0, help="materials: length of the NPT run (ps)")


def run(args: argparse.Namespace) -> int:
    if args.protocol == "stability":
        from eqff.check.stability import run_protocol

        result = run_protocol(args.model, args.structure, args.output, args.stability_ps, args.stability_temperature,
                              args.timestep, args.reference, args.seed, args.threads, args.engine, args.resume)
        rdf = ", ".join(f"g(r) {pair} MAE {r.mae:.3f}" for pair, r in result.rdf.items())
        print(f"{'STABLE' if result.stable else 'UNSTABLE'}: {result.stability_time_ps:.3f} of {args.stability_ps} ps, "
              f"largest bond deviation {result.max_bond_deviation_A:.3f} Å" + (f"; {rdf}" if rdf else "")
              + f"; report in {args.output}/stability.md")
        return 0 if result.stable else 1
    if args.protocol == "materials":
        from eqff.check.materials import run_materials

        if not args.structure:
            raise SystemExit("eqff check --protocol materials needs --structure: a periodic crystal (its cubic cell)")
        dft = [float(x) for x in args.dft.split(",")] if args.dft else None
        summary = run_materials(args.model, args.structure, args.output, dft, args.dft_vacancy, args.supercell,
                                args.npt_ps, seed=args.seed, threads=args.threads)
        with open(f"{args.output}/materials.md") as handle:
            print(handle.read())
        return 0 if summary["npt"]["kept_crystal"] else 1
    from eqff.check.report import THRESHOLDS, run_check

    print("thresholds: " + ", ".join(f"{k} {v:g}" for k, v in THRESHOLDS.items()))
    report = run_check(args.model, args.structure, args.output, args.nve_ps, args.nvt_ps, tuple(args.temperatures), args.seed)
    print(report.text())
    print(f"{'PASS' if report.passed else 'FAIL'}: report in {args.output}/report.md")
    return 0 if report.passed else 1

"""Shared by the md_scripts: where the default data and models are, and the model fallback."""
from __future__ import annotations

import glob
import os
import sys
from typing import List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
# this clone's potentials/ (searched first: it may also hold models you trained); the shipped
# potentials are also found with an installed eqff (eqff.potentials), wherever this folder is
POTENTIALS = os.path.join(os.path.dirname(HERE), "potentials")
ETHANOL = os.path.join(DATA, "ethanol.xyz")
WATER = os.path.join(DATA, "water_192.xyz")
ETHANOL_FORCEFIELD = os.path.join(DATA, "ethanol_nonbonded.xml")


def add_model_arguments(parser, default_names: Sequence[str]) -> None:
    parser.add_argument("--model", default=None,
                        help="eqff checkpoint (best.pt/last.pt) or exported file; default: the first model found in "
                             f"potentials/{{{','.join(default_names)}}}/ (this clone's, else the shipped ones installed "
                             "with eqff), else an UNTRAINED model (a warning says so)")
    parser.add_argument("--untrained-kind", default="schnet", choices=["schnet", "egnn", "segnn"],
                        help="architecture of the untrained fallback model (default: schnet)")
    parser.add_argument("--cutoff", type=float, default=5.0, help="cutoff (Å) of the untrained fallback model")
    parser.add_argument("--dtype", default=None, choices=["float32", "float64"],
                        help="default: the model's own dtype (eqff.runtime)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: eqff chooses the cores not busy with other work, or "
                             "OMP_NUM_THREADS; on a busy core idle-waiting threads make small models ~100x slower)")


def set_threads(args) -> None:
    """eqff's thread policy (eqff/threads.py): ``--threads`` if given, else the free cores."""
    from eqff.threads import deploy_threads

    threads, reason = deploy_threads(args.threads)
    print(f"torch threads: {threads} ({reason})", flush=True)


def find_potential(names: Sequence[str]) -> Optional[str]:
    """The first model file under this clone's potentials/<name>/ (exported files first, then best.pt,
    last.pt), else the shipped model.pt of the first name that eqff has (eqff.potentials)."""
    from eqff.errors import ModelFileError
    from eqff.export import is_exported
    from eqff.potentials import shipped_potential

    for name in names:
        folder = os.path.join(POTENTIALS, name)
        if not os.path.isdir(folder):
            continue
        files = sorted(glob.glob(os.path.join(folder, "**", "*.pt"), recursive=True))
        exported = [f for f in files if is_exported(f)]
        preferred = exported + [f for f in files if os.path.basename(f) == "best.pt"] + \
            [f for f in files if os.path.basename(f) == "last.pt"] + files
        if preferred:
            return preferred[0]
    try:
        return str(shipped_potential(names))
    except ModelFileError:
        return None


def resolve_model(args, names: Sequence[str], elements: List[int]):
    """``args.model`` (a path), else a trained potential of ``names``, else an untrained model of
    ``elements`` (with a loud warning). Returns a path or an in-memory eqff Potential."""
    import eqff

    if args.model is not None:
        if not os.path.exists(args.model):
            sys.exit(f"error: --model {args.model}: no such file")
        print(f"model: {args.model}", flush=True)
        return args.model
    found = find_potential(names)
    if found is not None:
        print(f"model: {found}", flush=True)
        return found
    from eqff.potentials import potential_roots

    places = ", ".join(dict.fromkeys(os.path.realpath(p) for p in [POTENTIALS, *potential_roots()]))
    print(f"WARNING: no trained potential {{{','.join(names)}}} found in {places}; using an UNTRAINED "
          f"{args.untrained_kind} model of elements {sorted(set(elements))} (cutoff {args.cutoff} Å). "
          "The dynamics run but are NOT physical: pass --model with a trained checkpoint or exported file.",
          file=sys.stderr, flush=True)
    import torch

    torch.manual_seed(0)
    return eqff.build_model(args.untrained_kind, elements=sorted(set(elements)), cutoff=args.cutoff,
                            dtype=args.dtype)


# the shipped potentials for the bundled structures, best first (errors in each potentials/*/MODEL_CARD.md)
KNOWN_NAMES = {"ethanol": ["ethanol_ace", "ethanol", "rmd17_ethanol"],
               "water_192": ["water_192_ace", "water_192", "water"]}


def model_names_for(path: str) -> List[str]:
    """Folders under potentials/ that may hold a model for this structure file."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return KNOWN_NAMES.get(stem, [stem])


def thermalize(atoms, temperature_K: float, rng) -> None:
    """Maxwell-Boltzmann momenta at exactly ``temperature_K``, no net momentum (and no net
    rotation for a molecule), with the ASE of this install (thermalize_momenta since 3.29)."""
    from ase.md import velocitydistribution as vd

    if hasattr(vd, "thermalize_momenta"):
        vd.thermalize_momenta(atoms, temperature_K, rng=rng)
    else:
        vd.MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    vd.Stationary(atoms)
    if not atoms.pbc.any():
        vd.ZeroRotation(atoms)
    if temperature_K > 0:
        vd.force_temperature(atoms, temperature_K)


def run_main(main) -> int:
    """Run a script's main; eqff's own errors (bad model file, unknown element...) print as one
    clear line instead of a traceback."""
    try:
        return main()
    except Exception as error:
        errors = sys.modules.get("eqff.errors")  # not imported up front: --help stays instant
        if errors is not None and isinstance(error, errors.EqffError):
            print(f"error: {error}", file=sys.stderr)
            return 2
        raise

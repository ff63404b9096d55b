"""``eqff export CHECKPOINT -o FILE``: a self-contained TorchScript file for ASE, OpenMM and
any program with libtorch, or (``--format pt2``, or an output named ``*.pt2``) an AOTInductor
package that needs no TorchScript (torch >= 2.10; ASE and ``openmm.PythonForce``, not
TorchForce; minutes to compile). By default the written file is loaded back and checked against
the checkpoint's model on a small structure of its elements (``--no-check`` skips it)."""
from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="eqff checkpoint (best.pt, last.pt or a saved potential_state)")
    parser.add_argument("-o", "--output", required=True, help="file to write (*.pt2 for --format pt2)")
    parser.add_argument("--format", choices=["torchscript", "pt2"], default=None,
                        help="torchscript (default; OpenMM TorchForce) or pt2 (torch.export + AOTInductor, no "
                             "TorchScript; default when the output is named *.pt2)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default=None,
                        help="precision of the exported model (default: the checkpoint's)")
    parser.add_argument("--no-check", action="store_true",
                        help="do not compare the written file against the checkpoint's model")


def run(args: argparse.Namespace) -> int:
    from eqff.dtypes import resolve_dtype
    from eqff.errors import ConfigError
    from eqff.export import export_checkpoint

    dtype = resolve_dtype(args.dtype)
    is_pt2_name = str(args.output).endswith(".pt2")
    export_format = args.format or ("pt2" if is_pt2_name else "torchscript")
    if (export_format == "pt2") != is_pt2_name:
        raise ConfigError(f"--format {export_format} writes {'a .pt2 package' if export_format == 'pt2' else 'TorchScript'}: "
                          f"name the output {'*.pt2' if export_format == 'pt2' else 'other than *.pt2 (e.g. model.pt)'}")
    info = export_checkpoint(args.checkpoint, args.output, dtype=dtype, format=export_format)
    if not args.no_check:
        check_export(args.checkpoint, args.output, dtype)
    size = os.path.getsize(args.output) / 1e6
    print(f"wrote {args.output} ({size:.1f} MB, {export_format}): {info['kind']}, elements {info['element_symbols']}, "
          f"cutoff {info['cutoff']} Å, {info['dtype']}, training data {info['training_data_hash'] or 'unknown'}")
    if info.get("uncertainty"):
        print("with its last-layer uncertainty: compute() also returns energy_std and forces_std")
    elif export_format == "pt2" and _carries_uncertainty(args.checkpoint):
        print("note: a .pt2 package carries no uncertainty (energy, forces, stress only); export to TorchScript "
              "to keep energy_std and forces_std")
    return 0


def _carries_uncertainty(checkpoint: str) -> bool:
    from eqff.models.io import load_checkpoint

    return "uncertainty" in load_checkpoint(checkpoint)


def check_export(checkpoint: str, exported: str, dtype) -> float:
    """Largest relative difference of energy and forces, exported vs eager, on a random cluster
    of the model's elements; a ``ModelFileError`` if it exceeds round-off."""
    import numpy as np
    import torch

    from eqff.errors import ModelFileError
    from eqff.export import load_exported
    from eqff.models.io import load_checkpoint, potential_from_state
    from eqff.predict import predict
    from ase import Atoms

    model = potential_from_state(load_checkpoint(checkpoint), source=checkpoint, dtype=dtype)
    module = load_exported(exported)
    rng = np.random.default_rng(0)
    numbers = [int(z) for z in model.atomic_numbers.tolist()] * 3
    spacing = 0.5 * model.cutoff
    side = int(np.ceil(len(numbers) ** (1 / 3)))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[: len(numbers)]
    atoms = Atoms(numbers=numbers, positions=grid * spacing + rng.normal(scale=0.1 * spacing, size=(len(numbers), 3)))
    reference = predict(model, [atoms])[0]
    dtype_now = model.energy_scale.dtype
    out = module.compute(torch.tensor(numbers), torch.tensor(atoms.positions, dtype=dtype_now),
                         torch.zeros(3, 3, dtype=dtype_now), torch.zeros(3, dtype=torch.bool))
    energy = float(out["energy"][0].detach())
    forces = out["forces"].detach().numpy()
    error = max(abs(energy - float(reference["energy"])) / max(abs(float(reference["energy"])), 1.0),
                float(np.abs(forces - reference["forces"]).max()) / max(float(np.abs(reference["forces"]).max()), 1e-12))
    tolerance = 1e-4 if dtype_now == torch.float32 else 1e-9
    if not error <= tolerance:
        raise ModelFileError(f"{exported}: the exported model differs from the checkpoint's by {error:.2e} "
                             f"(relative; tolerance {tolerance:.0e}); do not use it and report this")
    return error

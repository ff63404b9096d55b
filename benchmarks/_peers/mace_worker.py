"""MACE speed worker for benchmarks/speed.py; runs inside .venv-mace (mace-torch 0.3.16).

The model: untrained ``ScaleShiftMACE`` as ``mace_run_train --model MACE`` builds it with
hidden irreps 64x0e+64x1o, r_max 5 Å, 8 Bessel functions, polynomial cutoff p=5, max_ell 3,
correlation 3, 2 interactions, radial MLP [64, 64, 64], MLP irreps 16x0e, first interaction
RealAgnosticInteractionBlock, then RealAgnosticResidualInteractionBlock, avg_num_neighbors
from the structure itself.

Calls: "ase" = ``MACECalculator`` energy+forces (as shipped: neighbour list every call, and
for model_type MACE it also computes the stress/virials); "bare" = the model on a prebuilt
graph, energy+forces only (no neighbour list, no stress).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import protocol  # noqa: E402

import mace.modules  # noqa: E402  (import mace before e3nn)


def build_model(numbers, cutoff, avg_num_neighbors):
    import numpy as np
    import torch
    from e3nn import o3

    torch.manual_seed(0)
    z = sorted(set(int(n) for n in numbers))
    return mace.modules.ScaleShiftMACE(
        r_max=cutoff, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
        interaction_cls=mace.modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=mace.modules.interaction_classes["RealAgnosticInteractionBlock"],
        num_interactions=2, num_elements=len(z), hidden_irreps=o3.Irreps("64x0e+64x1o"),
        MLP_irreps=o3.Irreps("16x0e"), atomic_energies=np.zeros(len(z)), avg_num_neighbors=avg_num_neighbors,
        atomic_numbers=z, correlation=3, gate=torch.nn.functional.silu, radial_MLP=[64, 64, 64],
        radial_type="bessel", atomic_inter_scale=1.0, atomic_inter_shift=0.0,
    )


def main():
    setup = json.loads(sys.argv[1])
    import torch

    torch.set_num_threads(1)
    from mace import data as mace_data
    from mace.calculators import MACECalculator
    from mace.tools import AtomicNumberTable, torch_geometric, utils

    dtype = setup["dtype"]
    torch.set_default_dtype(torch.float64 if dtype == "float64" else torch.float32)
    atoms = protocol.load_structure(setup)
    cutoff = float(setup["cutoff"])
    from matscipy.neighbours import neighbour_list

    pairs = len(neighbour_list("i", atoms, cutoff)) if atoms.pbc.any() else None
    if pairs is None:
        from ase.neighborlist import neighbor_list
        pairs = len(neighbor_list("i", atoms, cutoff))
    model = build_model(atoms.numbers, cutoff, max(pairs / len(atoms), 1.0))
    model = model.to(torch.float64 if dtype == "float64" else torch.float32).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    params = sum(p.numel() for p in model.parameters())
    calc = MACECalculator(models=model, device="cpu", default_dtype=dtype)
    atoms.calc = calc
    move = protocol.jiggle(atoms)

    def ase_call():
        move()
        atoms.get_forces()

    z_table = AtomicNumberTable(sorted(set(int(n) for n in atoms.numbers)))
    config = mace_data.config_from_atoms(atoms)
    graph = mace_data.AtomicData.from_config(config, z_table=z_table, cutoff=cutoff, heads=["Default"])
    loader = torch_geometric.dataloader.DataLoader(dataset=[graph], batch_size=1, shuffle=False, drop_last=False)
    batch = next(iter(loader)).to_dict()

    def bare_call():
        out = model(dict(batch), compute_force=True, compute_stress=False, training=False)
        out["forces"].sum().item()

    protocol.reply({"ready": True, "params": params, "atoms": len(atoms), "edges": int(batch["edge_index"].shape[1]),
                    "model": "MACE 64x0e+64x1o, max_ell 3, correlation 3, 2 layers, r_max %.1f" % cutoff,
                    "torch": torch.__version__})
    protocol.serve({"ase": ase_call, "bare": bare_call})


if __name__ == "__main__":
    main()

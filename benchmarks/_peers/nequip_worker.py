"""NequIP speed worker for benchmarks/speed.py; runs inside .venv-nequip (nequip 0.19.1).

The model: untrained ``NequIPGNNModel`` with its defaults (4 layers, l_max 1, parity, 32
features, radial MLP 1 x 128, 8 Bessel functions, p=6), r_max 5 Å, avg_num_neighbors from the
structure. Calls: "ase" = ``NequIPCalculator`` energy+forces (its neighbour-list transform
every call); "bare" = the model on a prebuilt graph (neighbour list outside the timing).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import protocol  # noqa: E402


def main():
    setup = json.loads(sys.argv[1])
    import torch

    torch.set_num_threads(1)
    from ase.data import chemical_symbols
    from nequip.data import AtomicDataDict, from_ase
    from nequip.integrations.ase import NequIPCalculator
    from nequip.integrations.utils import basic_transforms
    from nequip.model import NequIPGNNModel
    from nequip.utils.global_state import set_global_state

    set_global_state()
    dtype = setup["dtype"]
    atoms = protocol.load_structure(setup)
    cutoff = float(setup["cutoff"])
    type_names = [chemical_symbols[z] for z in sorted(set(int(n) for n in atoms.numbers))]
    from ase.neighborlist import neighbor_list

    avg = max(len(neighbor_list("i", atoms, cutoff)) / len(atoms), 1.0)
    model = NequIPGNNModel(seed=0, model_dtype=dtype, r_max=cutoff, type_names=type_names, avg_num_neighbors=avg)
    model = model.eval()
    params = sum(p.numel() for p in model.parameters())
    transforms = basic_transforms({}, cutoff, type_names, {t: t for t in type_names})
    atoms.calc = NequIPCalculator(model=model, device="cpu", transforms=transforms)
    move = protocol.jiggle(atoms)

    def ase_call():
        move()
        atoms.get_forces()

    data = from_ase(atoms)
    for t in transforms:
        data = t(data)

    def bare_call():
        out = model(dict(data))
        out[AtomicDataDict.FORCE_KEY].sum().item()

    protocol.reply({"ready": True, "params": params, "atoms": len(atoms),
                    "edges": int(data[AtomicDataDict.EDGE_INDEX_KEY].shape[1]),
                    "model": "NequIP 4 layers, l_max 1, 32 features, r_max %.1f" % cutoff, "torch": torch.__version__})
    protocol.serve({"ase": ase_call, "bare": bare_call})


if __name__ == "__main__":
    main()

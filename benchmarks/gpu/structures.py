"""The structures of the GPU suite, all read from the working tree (the GPU machine sees only
the repository): rMD17 ethanol (9 atoms) and aspirin (21), and the periodic water box of
md_scripts/data (192 atoms, 12.44 Å) repeated to 1,536, 12,288 and 98,304 atoms."""
import os

import ase.io

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASPIRIN_FRAMES = os.path.join(ROOT, "potentials", "data", "rmd17_aspirin", "train.xyz.gz")
REPEATS = {"water_192": 1, "water_1536": 2, "water_12288": 4, "water_98304": 8}


def structure(name: str) -> ase.Atoms:
    """One of ethanol, aspirin, water_48 (a 48-atom slice of the box, still periodic, for quick
    runs) or water_N in REPEATS."""
    if name == "ethanol":
        return ase.io.read(os.path.join(ROOT, "md_scripts", "data", "ethanol.xyz"))
    if name == "aspirin":
        return ase.io.read(ASPIRIN_FRAMES, 0)
    water = ase.io.read(os.path.join(ROOT, "md_scripts", "data", "water_192.xyz"))
    if name == "water_48":
        return water[:48]
    if name not in REPEATS:
        raise ValueError(f"unknown structure {name!r}: ethanol, aspirin, water_48 or one of {sorted(REPEATS)}")
    return water.repeat([REPEATS[name]] * 3)


def batch(atoms: ase.Atoms, cutoff: float, dtype, device):
    """The model input (vesin neighbour list) on ``device``."""
    from eqff.data.frames import Frame
    from eqff.data.graph import frames_to_batch

    return frames_to_batch([Frame.from_atoms(atoms, source="gpu suite")], cutoff, dtype=dtype, device=device)

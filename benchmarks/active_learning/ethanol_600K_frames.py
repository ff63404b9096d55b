"""Ethanol frames from 600 K MD (out of the 300 K training distribution), labelled with PySCF at the
rMD17 level (PBE/def2-SVP, grid 4; rMD17's constant offset of +0.79 meV removed, RESULTS "PySCF as
the labeller"): the out-of-distribution test of the single-model uncertainty.

    python benchmarks/active_learning/ethanol_600K_frames.py MODEL_WITH_SIGMA OUT.xyz   # ~20 CPU min
"""
import sys

import numpy as np
from ase import units
from ase.io import read, write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.calculators.singlepoint import SinglePointCalculator
import eqff
from eqff.learn.pyscf_labeller import PySCFCalculator

model, output = sys.argv[1], sys.argv[2]
atoms = read("potentials/data/rmd17_ethanol/test.xyz.gz", index=0)
atoms.calc = eqff.EqffCalculator(model, threads=1)
MaxwellBoltzmannDistribution(atoms, temperature_K=600, rng=np.random.default_rng(1))
dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=600, friction=0.01 / units.fs, rng=np.random.default_rng(2))
frames = []
dyn.attach(lambda: frames.append(atoms.copy()), interval=200)
dyn.run(8000)  # 4 ps
frames = frames[1:]  # 40 frames, 0.1 ps apart
labeller = PySCFCalculator(functional="pbe", basis="def2-svp", grid_level=4)
out = []
for k, frame in enumerate(frames):
    frame.calc = labeller
    forces = frame.get_forces()
    energy = frame.get_potential_energy()
    frame.calc = SinglePointCalculator(frame, energy=energy - 0.79e-3, forces=forces)  # rMD17's constant offset
    out.append(frame)
    print(k, energy, flush=True)
write(output, out)

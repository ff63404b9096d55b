#!/usr/bin/env python
"""ML/MM: an eqff solute (default: ethanol) in TIP3P water, built with OpenMM's Modeller and
made mixed with openmm-ml ``createMixedSystem`` (mechanical embedding: the ML potential gives
the solute's internal energy, TIP3P + the solute's MM charges and Lennard-Jones give
everything else; the ML region is periodic in the periodic box). NVT Langevin; writes a DCD,
a PDB of the solvated system and a state log.

    python md_scripts/openmm_mlmm.py                              # ethanol, 1.0 nm of water, shipped data
    python md_scripts/openmm_mlmm.py --model ethanol.pt --steps 20000 --implementation torchforce

The solute needs MM non-bonded parameters for the embedding: --forcefield names an OpenMM XML
with a residue template for it (default: OPLS-AA ethanol charges and LJ, md_scripts/data).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("solute", nargs="?", default=_common.ETHANOL,
                        help="solute structure (any ASE format, first frame); default: shipped ethanol")
    parser.add_argument("--forcefield", default=_common.ETHANOL_FORCEFIELD,
                        help="OpenMM XML with the solute's residue template (charges, LJ)")
    parser.add_argument("--residue-name", default="ETH", help="residue name of the solute in the topology")
    _common.add_model_arguments(parser, ["ethanol", "rmd17_ethanol"])
    parser.add_argument("--implementation", default="auto", choices=["auto", "torchforce", "pythonforce"])
    parser.add_argument("--padding", type=float, default=1.0, help="water padding around the solute, nm")
    parser.add_argument("--nonbonded-cutoff", type=float, default=0.8, help="MM cutoff (PME), nm")
    parser.add_argument("--temperature", type=float, default=300.0, help="K")
    parser.add_argument("--timestep", type=float, default=0.5, help="fs (the ML solute is flexible)")
    parser.add_argument("--friction", type=float, default=1.0, help="1/ps")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--minimize", type=int, default=100, help="energy minimisation iterations before MD (0: none)")
    parser.add_argument("--platform", default="CPU")
    parser.add_argument("--device", default="cpu", help="torch device of a PythonForce")
    parser.add_argument("--dcd", default="openmm_mlmm.dcd")
    parser.add_argument("--log", default="openmm_mlmm.log")
    parser.add_argument("--pdb", default="openmm_mlmm.pdb")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    _common.set_threads(args)
    import ase.io
    import openmm
    from openmm import app, unit
    from openmmml import MLPotential

    from eqff.openmm import fast_steps, topology_from_atoms

    solute = ase.io.read(args.solute, 0)
    solute.pbc = False
    topology, positions, _ = topology_from_atoms(solute, residue_name=args.residue_name)
    forcefield = app.ForceField("tip3p.xml", args.forcefield)
    modeller = app.Modeller(topology, positions * unit.nanometer)
    modeller.addSolvent(forcefield, model="tip3p", padding=args.padding * unit.nanometer)
    ml_atoms = [atom.index for atom in modeller.topology.atoms() if atom.residue.name == args.residue_name]
    mm_system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                        nonbondedCutoff=args.nonbonded_cutoff * unit.nanometer,
                                        constraints=None, rigidWater=True)
    model = _common.resolve_model(args, _common.model_names_for(args.solute), solute.numbers.tolist())
    key = {"modelPath": model} if isinstance(model, str) else {"model": model}
    potential = MLPotential("eqff", **key)
    system = potential.createMixedSystem(modeller.topology, mm_system, ml_atoms, forceGroup=1,
                                         implementation=args.implementation, device=args.device)
    integrator = openmm.LangevinMiddleIntegrator(args.temperature * unit.kelvin, args.friction / unit.picosecond,
                                                 args.timestep * unit.femtosecond)
    integrator.setRandomNumberSeed(args.seed)
    simulation = app.Simulation(modeller.topology, system, integrator,
                                openmm.Platform.getPlatformByName(args.platform))
    simulation.context.setPositions(modeller.positions)
    waters = sum(1 for r in modeller.topology.residues() if r.name == "HOH")
    box = modeller.topology.getPeriodicBoxVectors()
    print(f"{len(ml_atoms)} ML atoms ({args.residue_name}) in {waters} TIP3P waters, "
          f"box {box[0][0].value_in_unit(unit.nanometer):.2f} nm; forces {[f.getName() for f in system.getForces()]}",
          flush=True)
    if args.minimize > 0:
        simulation.minimizeEnergy(maxIterations=args.minimize)
    ml_energy = simulation.context.getState(getEnergy=True, groups={1}).getPotentialEnergy()
    print(f"ML energy of the solute after minimisation: {ml_energy}", flush=True)
    simulation.context.setVelocitiesToTemperature(args.temperature * unit.kelvin, args.seed)
    with open(args.pdb, "w") as handle:
        state = simulation.context.getState(getPositions=True)
        app.PDBFile.writeFile(modeller.topology, state.getPositions(), handle)
    simulation.reporters.append(app.DCDReporter(args.dcd, args.interval))
    for target in (sys.stdout, args.log):
        simulation.reporters.append(app.StateDataReporter(
            target, args.interval, step=True, time=True, potentialEnergy=True, temperature=True,
            progress=True, remainingTime=True, speed=True, totalSteps=args.steps, separator="\t"))
    start = time.perf_counter()
    with fast_steps(simulation):  # TorchScript's executor optimisation off on the CPU: 1.2-1.5x faster steps
        simulation.step(args.steps)
    elapsed = time.perf_counter() - start
    print(f"{args.steps} steps of {args.timestep} fs in {elapsed:.1f} s ({args.steps / elapsed:.2f} steps/s); "
          f"wrote {args.dcd}, {args.pdb} and {args.log}")
    return 0


if __name__ == "__main__":
    sys.exit(_common.run_main(main))

"""Physics checks for any eqff potential, shipped with the package (e3nn/NequIP practice).

Each check evaluates a potential (eager ``Potential`` or an exported TorchScript module) on
ASE ``Atoms`` and returns a ``CheckResult`` with the worst error it saw and the tolerance it
was held to. Run them in float64: in float32 round-off dominates the errors measured.

    from eqff.testing import run_all_checks
    for result in run_all_checks(potential, molecule, periodic_structure):
        assert result.passed, result
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from ase import Atoms
from ase.build import make_supercell

from eqff.data import keys
from eqff.predict import predict


@dataclass
class CheckResult:
    name: str
    error: float  # worst error seen, in the units of the check (relative unless said)
    tolerance: float
    detail: str = ""

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.error) and self.error <= self.tolerance)

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return f"{verdict} {self.name}: error {self.error:.3e} (tolerance {self.tolerance:.1e}) {self.detail}"


def _evaluate(potential, structures: Sequence[Atoms], stress: bool = False):
    return predict(potential, structures, compute_stress=stress, batch_size=max(1, len(structures)))


def _energies(potential, structures: Sequence[Atoms]) -> np.ndarray:
    results = predict(potential, structures, compute_forces=False, batch_size=max(1, len(structures)))
    return np.array([float(r[keys.ENERGY]) for r in results])


def _scale(forces: np.ndarray) -> float:
    return max(float(np.abs(forces).max()), 1e-12)


def random_orthogonal(rng: np.random.Generator, reflection: bool) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if (np.linalg.det(q) < 0) != reflection:
        q[:, 0] = -q[:, 0]
    return q


def _transformed(atoms: Atoms, rotation: np.ndarray, translation: np.ndarray) -> Atoms:
    out = atoms.copy()
    out.positions = atoms.positions @ rotation.T + translation
    if atoms.pbc.any():
        out.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    return out


def check_euclidean_symmetry(potential, atoms: Atoms, trials: int = 3, seed: int = 0,
                             tolerance: float = 1e-12) -> CheckResult:
    """(a) E invariant, F equivariant under rotations, reflections, translations, permutations."""
    rng = np.random.default_rng(seed)
    variants, transforms = [], []
    for trial in range(trials):
        rotation = random_orthogonal(rng, reflection=trial % 2 == 1)
        translation = rng.normal(scale=3.0, size=3)
        permutation = rng.permutation(len(atoms))
        moved = _transformed(atoms, rotation, translation)[permutation]
        variants.append(moved)
        transforms.append((rotation, permutation))
    results = _evaluate(potential, [atoms] + variants)
    reference = results[0]
    scale_e = max(abs(float(reference[keys.ENERGY])), 1.0)
    scale_f = _scale(reference[keys.FORCES])
    worst = 0.0
    for (rotation, permutation), result in zip(transforms, results[1:]):
        worst = max(worst, abs(float(result[keys.ENERGY] - reference[keys.ENERGY])) / scale_e)
        expected = (reference[keys.FORCES] @ rotation.T)[permutation]
        worst = max(worst, float(np.abs(result[keys.FORCES] - expected).max()) / scale_f)
    return CheckResult("rotation/reflection/translation/permutation", worst, tolerance,
                       f"({trials} random transforms, relative)")


def check_periodic_images(potential, atoms: Atoms, seed: int = 0, tolerance: float = 1e-9) -> CheckResult:
    """(b) E and F unchanged when atoms are wrapped or moved by lattice vectors."""
    rng = np.random.default_rng(seed)
    wrapped = atoms.copy()
    wrapped.wrap()
    shifted = atoms.copy()
    shifted.positions += rng.integers(-2, 3, size=(len(atoms), 3)) @ atoms.cell.array
    results = _evaluate(potential, [atoms, wrapped, shifted])
    scale_e = max(abs(float(results[0][keys.ENERGY])), 1.0)
    scale_f = _scale(results[0][keys.FORCES])
    worst = max(
        max(abs(float(r[keys.ENERGY] - results[0][keys.ENERGY])) / scale_e,
            float(np.abs(r[keys.FORCES] - results[0][keys.FORCES]).max()) / scale_f)
        for r in results[1:]
    )
    return CheckResult("periodic images (wrap, lattice translations)", worst, tolerance, "(relative)")


def check_supercell(potential, atoms: Atoms, repeat: int = 2, tolerance: float = 1e-9) -> CheckResult:
    """(b) A repeat^3 supercell has repeat^3 times the energy and the same forces, tiled."""
    supercell = make_supercell(atoms, np.eye(3) * repeat, order="atom-major")
    n = repeat ** 3
    small, big = _evaluate(potential, [atoms]) + _evaluate(potential, [supercell])
    scale_e = max(abs(float(big[keys.ENERGY])), 1.0)
    error_e = abs(float(big[keys.ENERGY] - n * small[keys.ENERGY])) / scale_e
    tiled = np.repeat(small[keys.FORCES], n, axis=0)
    error_f = float(np.abs(big[keys.FORCES] - tiled).max()) / _scale(small[keys.FORCES])
    return CheckResult(f"{repeat}x{repeat}x{repeat} supercell extensivity", max(error_e, error_f), tolerance, "(relative)")


def check_forces_finite_difference(potential, atoms: Atoms, step: float = 1e-4, components: int = 12,
                                   seed: int = 0, tolerance: float = 1e-6) -> CheckResult:
    """(c) F = -dE/dx against central differences, on randomly chosen components."""
    rng = np.random.default_rng(seed)
    picks = [(int(a), int(c)) for a, c in zip(rng.integers(0, len(atoms), components), rng.integers(0, 3, components))]
    displaced = []
    for atom, axis in picks:
        for sign in (1.0, -1.0):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * step
            displaced.append(moved)
    forces = _evaluate(potential, [atoms])[0][keys.FORCES]
    energies = _energies(potential, displaced).reshape(-1, 2)
    numeric = -(energies[:, 0] - energies[:, 1]) / (2 * step)
    analytic = np.array([forces[a, c] for a, c in picks])
    worst = float(np.abs(numeric - analytic).max()) / _scale(forces)
    return CheckResult("forces = -dE/dx (central differences)", worst, tolerance,
                       f"({components} components, step {step} Å, relative to max |F|)")


def check_stress_finite_difference(potential, atoms: Atoms, step: float = 1e-5, tolerance: float = 1e-6) -> CheckResult:
    """(c) stress = (1/V) dE/d(strain) against central differences of a strained cell."""
    strained = []
    pairs = [(i, j) for i in range(3) for j in range(i, 3)]
    for i, j in pairs:
        for sign in (1.0, -1.0):
            strain = np.eye(3)
            strain[i, j] += sign * step / (1 if i == j else 2)
            strain[j, i] += 0 if i == j else sign * step / 2
            moved = atoms.copy()
            moved.set_cell(atoms.cell.array @ strain, scale_atoms=True)
            strained.append(moved)
    stress = _evaluate(potential, [atoms], stress=True)[0][keys.STRESS]
    energies = _energies(potential, strained).reshape(-1, 2)
    numeric = (energies[:, 0] - energies[:, 1]) / (2 * step) / atoms.get_volume()
    analytic = np.array([stress[i, j] for i, j in pairs])
    worst = float(np.abs(numeric - analytic).max()) / max(float(np.abs(stress).max()), 1e-12)
    return CheckResult("stress = (1/V) dE/d(strain) (central differences)", worst, tolerance, "(relative to max |stress|)")


def check_cutoff_smoothness(potential, numbers: Sequence[int], offset: float = 1e-3,
                            tolerance: float = 1e-6) -> CheckResult:
    """(d) Energy and forces continuous as a pair crosses the cutoff: compared with the pair
    just outside it (where they must equal the separated atoms' exactly), a pair at
    rc - offset differs by O(offset^3) in energy and O(offset^2) in force."""
    rc = float(potential.cutoff)
    pair = lambda r: Atoms(numbers=list(numbers)[:2], positions=[[0, 0, 0], [r, 0, 0]])
    results = _evaluate(potential, [pair(rc - offset), pair(rc + offset), pair(rc + 1.0)])
    inside, outside, far = results
    beyond = abs(float(outside[keys.ENERGY] - far[keys.ENERGY])) + float(np.abs(outside[keys.FORCES]).max())
    jump_e = abs(float(inside[keys.ENERGY] - outside[keys.ENERGY]))
    jump_f = float(np.abs(inside[keys.FORCES] - outside[keys.FORCES]).max())
    worst = max(beyond, jump_e, jump_f)
    return CheckResult("smooth at the cutoff", worst, tolerance,
                       f"(|dE| {jump_e:.1e} eV, |dF| {jump_f:.1e} eV/Å at rc±{offset} Å, beyond rc {beyond:.1e})")


def check_batch_independence(potential, structures: Sequence[Atoms], tolerance: float = 1e-10) -> CheckResult:
    """(e) A structure's energy and forces do not depend on what else is in the batch."""
    together = _evaluate(potential, structures)
    worst = 0.0
    for atoms, batched in zip(structures, together):
        alone = _evaluate(potential, [atoms])[0]
        worst = max(worst, abs(float(alone[keys.ENERGY] - batched[keys.ENERGY])) / max(abs(float(alone[keys.ENERGY])), 1.0),
                    float(np.abs(alone[keys.FORCES] - batched[keys.FORCES]).max()) / _scale(alone[keys.FORCES]))
    return CheckResult("batched equals single", worst, tolerance, f"({len(structures)} structures)")


def check_isolated_atoms(potential, numbers: Sequence[int]) -> CheckResult:
    """(f) An isolated atom and an atom with no neighbours within the cutoff give finite results,
    zero force, and the lone atom's energy equals the isolated atom's."""
    rc = float(potential.cutoff)
    z0 = int(numbers[0])
    isolated = Atoms(numbers=[z0], positions=[[0, 0, 0]])
    # one atom far from a small cluster
    cluster = Atoms(numbers=list(numbers)[:2] + [z0], positions=[[0, 0, 0], [1.0, 0, 0], [3 * rc, 0, 0]])
    lone_periodic = Atoms(numbers=[z0], positions=[[0.5, 0.5, 0.5]], cell=np.eye(3) * (rc + 1.0), pbc=True)
    a, b = _evaluate(potential, [isolated, cluster])
    finite = all(np.all(np.isfinite(r[k])) for r in (a, b) for k in (keys.ENERGY, keys.FORCES))
    error = abs(float(a[keys.ATOMIC_ENERGIES][0] - b[keys.ATOMIC_ENERGIES][2])) + float(np.abs(b[keys.FORCES][2]).max())
    error += float(np.abs(a[keys.FORCES]).max())
    periodic = _evaluate(potential, [lone_periodic], stress=True)[0]
    finite = finite and all(np.all(np.isfinite(periodic[k])) for k in (keys.ENERGY, keys.FORCES, keys.STRESS))
    return CheckResult("isolated atom / atom without neighbours", error if finite else float("nan"), 1e-10,
                       "(finite, zero force, same energy)")


def run_all_checks(potential, molecule: Atoms, periodic: Optional[Atoms] = None,
                   supercell: bool = True) -> List[CheckResult]:
    """All checks (a)-(f) on a molecule and, if given, a periodic structure."""
    numbers = sorted(set(int(z) for z in molecule.numbers))
    pair = [numbers[0], numbers[-1]]
    results = [
        check_euclidean_symmetry(potential, molecule),
        check_forces_finite_difference(potential, molecule),
        check_cutoff_smoothness(potential, pair),
        check_isolated_atoms(potential, pair),
    ]
    structures = [molecule]
    if periodic is not None:
        results += [
            check_euclidean_symmetry(potential, periodic, trials=2),
            check_periodic_images(potential, periodic),
            check_forces_finite_difference(potential, periodic, components=6),
            check_stress_finite_difference(potential, periodic),
        ]
        if supercell:
            results.append(check_supercell(potential, periodic))
        structures.append(periodic)
    structures.append(Atoms(numbers=[numbers[0]], positions=[[0, 0, 0]]))
    results.append(check_batch_independence(potential, structures))
    return results

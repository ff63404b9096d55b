"""Which explored frames to label: the most uncertain ones, spread out.

A frame is a candidate when its σ (max over atoms of the calibrated per-atom force spread,
eV/Å) is above ``sigma_threshold`` and at most ``sigma_stop`` (above it the potential is lost
and the structure is usually unphysical: labelling it teaches nothing about the region MD
visits). Candidates are taken greedily by σ, highest first, skipping any within
``min_step_gap`` MD steps of a frame already taken from the same trajectory: consecutive MD
frames are nearly the same structure, and labelling both spends a DFT call on one new fact.

A trajectory that was lost (σ above ``sigma_stop``, or two atoms closer than the contact floor)
gives its last sound frame (``Trajectory.last_sound``, whatever its σ) first, before any ranking
by σ: it is the structure just before the potential failed, where the label teaches the most,
and σ need not rank it high (aspirin at 600 K: the frames before two H atoms met had σ 0.23-0.25
eV/Å, below most of the 50 000 frames explored).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import numpy as np
from ase import Atoms


@dataclass
class Candidate:
    """One explored MD frame and what the explorer predicted for it."""

    atoms: Atoms  # the structure (no labels)
    sigma: float  # max over atoms of forces_std, eV/Å
    trajectory: int  # which trajectory of the round
    step: int  # MD step within it
    forces: np.ndarray  # [N,3] the explorer's (committee mean) forces, eV/Å: compared with the label later
    forces_std: np.ndarray  # [N] per-atom σ, eV/Å


def is_candidate(sigma: float, sigma_threshold: float, sigma_stop: float) -> bool:
    return sigma_threshold < sigma <= sigma_stop


def select_diverse(candidates: Sequence[Candidate], max_frames: int, min_step_gap: int,
                   first: Sequence[Candidate] = ()) -> List[Candidate]:
    """At most ``max_frames`` candidates: ``first`` (highest σ first), then the rest highest σ
    first, no two of one trajectory closer than ``min_step_gap`` steps."""
    chosen: List[Candidate] = []
    ranked = sorted(first, key=lambda c: (-c.sigma, c.trajectory, c.step))
    taken_first = {id(c) for c in first}
    ranked += sorted((c for c in candidates if id(c) not in taken_first), key=lambda c: (-c.sigma, c.trajectory, c.step))
    for candidate in ranked:
        if len(chosen) >= max_frames:
            break
        if any(c.trajectory == candidate.trajectory and abs(c.step - candidate.step) < min_step_gap for c in chosen):
            continue
        chosen.append(candidate)
    return chosen

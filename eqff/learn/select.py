"""Which explored frames to label: the most uncertain ones, spread out.

A frame is a candidate when its σ (max over atoms of the calibrated per-atom force spread,
eV/Å) is above ``sigma_threshold`` and at most ``sigma_stop`` (above it the potential is lost
and the structure is usually unphysical: labelling it teaches nothing about the region MD
visits). Candidates are taken by σ, in passes over the trajectories: each pass takes every
trajectory's most uncertain remaining frame (highest σ first), so one trajectory cannot fill
the round (aspirin round 6: seven of the nine frames picked by σ came from one trajectory, σ
0.32-0.33, 50 fs to 6 ps apart), and any frame within ``min_step_gap`` MD steps of a frame
already taken from the same trajectory is skipped: consecutive MD frames are nearly the same
structure, and labelling both spends a DFT call on one new fact.

A trajectory that was lost (σ above ``sigma_stop``, or two atoms closer than the contact floor)
gives its last sound frame (``Trajectory.last_sound``, whatever its σ) first, before any ranking
by σ: it is the structure just before the potential failed, where the label teaches the most,
and σ need not rank it high (aspirin at 600 K: the frames before two H atoms met had σ 0.23-0.25
eV/Å, below most of the 50 000 frames explored).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, List, Sequence

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
    """At most ``max_frames`` candidates: ``first`` (highest σ first), then passes over the
    trajectories, each taking every trajectory's highest-σ frame not yet taken (the pass in order
    of σ); no two frames of one trajectory closer than ``min_step_gap`` steps."""
    chosen: List[Candidate] = []

    def by_sigma(candidate: Candidate):  # highest σ first; ties broken by position, reproducibly
        return -candidate.sigma, candidate.trajectory, candidate.step

    def apart(candidate: Candidate) -> bool:
        return all(c.trajectory != candidate.trajectory or abs(c.step - candidate.step) >= min_step_gap for c in chosen)

    for candidate in sorted(first, key=by_sigma):
        if len(chosen) < max_frames and apart(candidate):
            chosen.append(candidate)
    taken = {id(c) for c in first}
    queues: Dict[int, Deque[Candidate]] = {}
    for candidate in sorted((c for c in candidates if id(c) not in taken), key=by_sigma):
        queues.setdefault(candidate.trajectory, deque()).append(candidate)
    while len(chosen) < max_frames and any(queues.values()):
        this_pass = []
        for queue in queues.values():
            while queue and not apart(queue[0]):
                queue.popleft()
            if queue:
                this_pass.append(queue.popleft())
        chosen += sorted(this_pass, key=by_sigma)[: max_frames - len(chosen)]
    return chosen

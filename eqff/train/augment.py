"""Random-rotation augmentation of training batches (``augment_rotations: true``).

Each structure b of a batch is rotated by its own uniformly random (Haar) rotation Q_b,
applied to row vectors as x -> x Q_b^T:

    positions  x_i -> x_i Q^T          cell rows  a -> a Q^T  (integer cell shifts unchanged)
    forces     F_i -> F_i Q^T          stress     S -> Q S Q^T
    energy     unchanged

so the labels stay consistent with the rotated geometry. Rotation-invariant models see the
same loss; models that are not (pointconv, the lifted model on a finite grid) learn from every
orientation. Rotations are drawn from torch's global CPU generator, which the trainer seeds and
saves in its checkpoints, so runs stay reproducible and resume exactly.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import Tensor

from eqff.data import keys


def random_rotations(count: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """``count`` uniformly distributed proper rotations [count, 3, 3] (float64, CPU)."""
    gaussian = torch.randn((count, 3, 3), dtype=torch.float64, generator=generator)
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)  # Haar measure on O(3)
    flip = torch.linalg.det(q) < 0
    q[flip, :, 0] = -q[flip, :, 0]  # onto SO(3)
    return q


def rotate_batch(batch: Dict[str, Tensor], rotations: Tensor) -> Dict[str, Tensor]:
    """A new batch with structure b rotated by ``rotations[b]``; the input is not modified."""
    out = dict(batch)
    q = rotations.to(dtype=batch[keys.POSITIONS].dtype, device=batch[keys.POSITIONS].device)
    per_atom = q[batch[keys.BATCH]]  # [N, 3, 3]
    out[keys.POSITIONS] = torch.bmm(per_atom, batch[keys.POSITIONS].unsqueeze(-1)).squeeze(-1)
    out[keys.CELL] = torch.matmul(batch[keys.CELL], q.transpose(1, 2))
    if keys.FORCES in batch:
        out[keys.FORCES] = torch.bmm(per_atom, batch[keys.FORCES].unsqueeze(-1)).squeeze(-1)
    if keys.STRESS in batch:
        out[keys.STRESS] = q @ batch[keys.STRESS] @ q.transpose(1, 2)
    return out


def augment_rotations(batch: Dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
    """``batch`` with every structure rotated by a fresh random rotation."""
    return rotate_batch(batch, random_rotations(int(batch[keys.CELL].shape[0]), generator))

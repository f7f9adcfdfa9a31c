"""The network's input for the analyses, in one place: centre views of validation and training images, and shifted
centre views. Every analysis gets its images only through these three functions, so that a change of the data path
(uint8 items, a device-side view) is one edit here.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from harness.data import Datasets


def _stack(dataset: object, indices: Sequence[int]) -> torch.Tensor:
    items = [dataset[int(i)][0] for i in indices]  # type: ignore[index]
    x = torch.stack(items) if items else torch.zeros(0)
    if x.dim() == 5:  # a ten-crop view [n,10,3,s,s]: the centre crop is crop 4 (corners first, then the centre)
        x = x[:, 4]
    return x


def val_inputs(datasets: Datasets, indices: Sequence[int]) -> torch.Tensor:
    """Validation images `indices` as the network sees them at test time: the centre view, float [n,3,s,s]."""
    return _stack(datasets.val, indices)


def train_inputs(datasets: Datasets, indices: Sequence[int]) -> torch.Tensor:
    """Training images `indices` through the validation (centre, no augmentation) view, float [n,3,s,s]."""
    centre = copy.copy(datasets.train)
    centre.transform = datasets.val.transform  # type: ignore[attr-defined]  # EvalTransform: resize, centre crop
    return _stack(centre, indices)


def shifted_inputs(datasets: Datasets, indices: Sequence[int], dx: int, dy: int) -> torch.Tensor:
    """The centre view of validation images moved `dx` pixels right and `dy` down; the uncovered border is 0, which is
    the training mean after normalisation (both input scales subtract it), so nothing new is drawn in."""
    x = val_inputs(datasets, indices)
    if dx == 0 and dy == 0:
        return x
    pad = (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0))  # left, right, top, bottom
    s = x.shape[-1]
    moved = F.pad(x, pad)
    top, left = max(-dy, 0), max(-dx, 0)
    return moved[..., top : top + s, left : left + s].contiguous()

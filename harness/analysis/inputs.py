"""The network's input for the analyses, in one place: centre views of validation and training images, and shifted
centre views. Every analysis gets its images only through these three functions, so that a change of the data path
(uint8 items, a device-side view) is one edit here.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from harness.datasets import Datasets, ImageDataset


def _centre(dataset: ImageDataset, indices: Sequence[int]) -> torch.Tensor:
    """The items' centre view on the CPU, float [n,3,s,s] (also where the data set's view is ten crops)."""
    centre = dataclasses.replace(dataset.view, protocol="center")  # an EvalView: both callers pass the val view
    if not indices:
        return torch.zeros(0)
    x, _ = dataset.__getitems__([int(i) for i in indices])
    return centre(x)


def val_inputs(datasets: Datasets, indices: Sequence[int]) -> torch.Tensor:
    """Validation images `indices` as the network sees them at test time: the centre view, float [n,3,s,s]."""
    return _centre(datasets.val, indices)  # type: ignore[arg-type]


def train_inputs(datasets: Datasets, indices: Sequence[int]) -> torch.Tensor:
    """Training images `indices` through the validation (centre, no augmentation) view, float [n,3,s,s]."""
    centre = copy.copy(datasets.train)
    centre.cut = datasets.val.cut  # type: ignore[attr-defined]  # the recipe's square, not a random-resized crop
    centre.view = datasets.val.view  # type: ignore[attr-defined]
    return _centre(centre, indices)  # type: ignore[arg-type]


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

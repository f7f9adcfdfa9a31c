"""Translation invariance (KSH12 s6.1: off-centre objects are still recognised): validation top-1 when the centre
view is moved by a fraction of its side, horizontally."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from harness.analysis.features import run_batches

SHIFTS = (-0.25, -0.1875, -0.125, -0.0625, 0.0, 0.0625, 0.125, 0.1875, 0.25)  # fractions of the input's side


@dataclass(frozen=True)
class ShiftAccuracy:
    fraction: float  # shift / side; negative: left
    pixels: int
    top1: float  # percent


def shift_pixels(fraction: float, side: int) -> int:
    return int(round(fraction * side))


def accuracy_vs_shift(
    model: torch.nn.Module,
    shifted: Callable[[Sequence[int], int, int], torch.Tensor],
    indices: Sequence[int],
    labels: np.ndarray,
    side: int,
    fractions: Sequence[float] = SHIFTS,
    batch_size: int = 128,
) -> tuple[ShiftAccuracy, ...]:
    """Top-1 (%) of `indices` at each horizontal shift; `shifted(indices, dx, dy)` gives the moved inputs."""
    out = []
    for f in fractions:
        dx = shift_pixels(f, side)
        probs, _, _ = run_batches(model, lambda ix, dx=dx: shifted(ix, dx, 0), indices, batch_size=batch_size)
        out.append(ShiftAccuracy(f, dx, float((probs.argmax(1) == labels).mean() * 100)))
    return tuple(out)

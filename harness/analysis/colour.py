"""Tower colour specialisation (KSH12 s6.1, Fig. 3): "the kernels on GPU 1 are largely color-agnostic, while the
kernels on GPU 2 are largely color-specific ... independent of any particular random weight initialization".

Colour index of a conv1 kernel: the share of its energy (sum of squares, after removing its mean) that lies off the
grey axis of RGB. 0: every pixel's (r, g, b) deviation is grey (r = g = b); 1: no grey part at all. A kernel of
independent random weights has 2/3 (two of the three colour directions are off the grey axis).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RANDOM_INDEX = 2 / 3  # expected index of an i.i.d. random kernel


def colour_index(w: np.ndarray) -> np.ndarray:
    """conv1 weights (out, 3, k, k) -> colour index per kernel, in [0, 1]; kernels with no energy get 0."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"expected conv1 weights (out, 3, k, k), got shape {w.shape}")
    centred = w - w.mean(axis=(1, 2, 3), keepdims=True)
    grey = centred.mean(axis=1, keepdims=True)  # per pixel: the projection onto (1,1,1)/sqrt(3), as a mean
    off = ((centred - grey) ** 2).sum(axis=(1, 2, 3))
    total = (centred**2).sum(axis=(1, 2, 3))
    return np.where(total > 0, off / np.where(total > 0, total, 1.0), 0.0)


@dataclass(frozen=True)
class TowerColour:
    """The colour index of every conv1 kernel of one tower (KSH12: 48 per GPU), in the model's order."""

    tower: int  # 1-based
    index: np.ndarray  # (kernels,)

    @property
    def mean(self) -> float:
        return float(self.index.mean())


def tower_colour(w: np.ndarray, towers: int) -> tuple[TowerColour, ...]:
    """Split conv1's kernels into `towers` equal consecutive groups (KSH12's grouped convolutions) and index each."""
    idx = colour_index(w)
    if towers < 1 or len(idx) % towers:
        raise ValueError(f"{len(idx)} kernels do not split into {towers} towers")
    per = len(idx) // towers
    return tuple(TowerColour(t + 1, idx[t * per : (t + 1) * per]) for t in range(towers))

"""Top-5 examples (KSH12 Fig. 4 left): validation images with their five most probable classes, chosen
reproducibly from the predictions: the most confident right ones, the most confident wrong ones, and the most
ambiguous (smallest gap between the first and second class)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Example:
    index: int  # into the validation set
    label: int
    kind: str  # right, wrong, ambiguous
    top5: tuple[tuple[int, float], ...]  # (class, probability), most probable first


def choose(probs: np.ndarray, labels: np.ndarray, per_kind: int = 3) -> tuple[Example, ...]:
    """`per_kind` examples of each kind (fewer when the set has fewer), no image twice; ties by index."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    order = np.argsort(-probs, axis=1, kind="stable")
    first = probs[np.arange(len(probs)), order[:, 0]]
    second = probs[np.arange(len(probs)), order[:, 1]] if probs.shape[1] > 1 else np.zeros(len(probs))
    right = order[:, 0] == labels
    picks: list[tuple[int, str]] = []
    taken: set[int] = set()

    def take(candidates: np.ndarray, key: np.ndarray, kind: str) -> None:
        chosen = [int(i) for i in candidates[np.argsort(key[candidates], kind="stable")] if int(i) not in taken]
        for i in chosen[:per_kind]:
            picks.append((i, kind))
            taken.add(i)

    idx = np.arange(len(probs))
    take(idx[right], -first, "right")
    take(idx[~right], -first, "wrong")
    take(idx, first - second, "ambiguous")
    k = min(5, probs.shape[1])
    return tuple(
        Example(i, int(labels[i]), kind, tuple((int(c), float(probs[i, c])) for c in order[i, :k])) for i, kind in picks
    )

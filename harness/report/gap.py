"""The train-validation gap and the validation curve of proxy runs: what a regulariser changes (KSH12 s4: dropout and
augmentation reduce overfitting), read at epochs fixed before any run (`schema.curve_epochs`: fractions of the
runs' own epochs). Pure."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from harness.report.types import History, RunRow
from harness.schema import curve_epochs


@dataclass(frozen=True)
class GapRow:
    """One variant's finished runs on one data set: means over seeds at the last epoch and along the curve."""

    variant: str
    runs: int
    train_top1: float | None  # the last epoch's training top-1 (training mode: dropout on, augmented views)
    val_top1: float | None  # the last epoch's validation top-1 (centre crop)
    epochs: tuple[int, ...]  # the epochs of `curve`
    curve: tuple[float | None, ...]  # mean validation top-1 at each of `epochs`

    @property
    def gap(self) -> float | None:
        """Training minus validation top-1 at the last epoch: how far the network overfits."""
        return None if self.train_top1 is None or self.val_top1 is None else self.train_top1 - self.val_top1


def at(history: History, epoch: int) -> float | None:
    return next((v for e, v in history if e == epoch), None)


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.fmean(kept) if kept else None


def gap_rows(runs: Sequence[RunRow]) -> list[GapRow]:
    """Per variant (in the order of `runs`), over its finished runs that trained the most common number of epochs."""
    out = []
    for variant in dict.fromkeys(x.variant for x in runs):
        mine = [x for x in runs if x.variant == variant and x.finished and x.epochs]
        if not mine:
            continue
        epochs = statistics.mode(x.epochs for x in mine if x.epochs)
        mine = [x for x in mine if x.epochs == epochs]
        marks = curve_epochs(epochs)
        out.append(
            GapRow(
                variant,
                len(mine),
                _mean([at(x.train_top1, epochs) for x in mine]),
                _mean([at(x.val_top1, epochs) for x in mine]),
                marks,
                tuple(_mean([at(x.val_top1, e) for x in mine]) for e in marks),
            )
        )
    return out

"""The report's PNG figures (matplotlib, Agg, no pyplot state). Deterministic: fixed names, fixed colours, sorted
series, no PNG software/date metadata."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from harness.report import fmt
from harness.report.reported import Comparison
from harness.report.types import History, RunRow

RC = {"svg.hashsalt": "harness-report", "font.size": 8, "figure.dpi": 100, "path.simplify": False}
PNG_METADATA = {"Software": None}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", metadata=PNG_METADATA)
    return path


def _colour(i: int) -> tuple[float, float, float, float]:
    """tab20's ten dark colours first, then their light partners."""
    return matplotlib.colormaps["tab20"]((2 * i) % 20 + (i // 10) % 2)


def _epoch_axis(ax: object) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # type: ignore[attr-defined]


def val_top1_figure(runs: Sequence[RunRow], title: str, path: Path) -> Path:
    """Validation top-1 per epoch: one line per run, one colour per variant."""
    names = sorted({r.variant for r in runs})
    first = {n: min((x.run_id for x in runs if x.variant == n and x.val_top1), default=None) for n in names}
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(9, 5))
        ax = fig.add_subplot()
        for r in sorted(runs, key=lambda r: (r.variant, r.seed or 0, r.run_id)):
            if not r.val_top1:
                continue
            epochs, values = zip(*r.val_top1)
            label = r.variant if r.run_id == first[r.variant] else None
            ax.plot(
                epochs,
                values,
                color=_colour(names.index(r.variant)),
                label=label,
                linewidth=1.2,
                linestyle="-" if r.finished else ":",
            )
        ax.set(xlabel="epoch", ylabel="validation top-1 (%)", title=title + " (dotted: unfinished runs)")
        _epoch_axis(ax)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
        fig.tight_layout()
        return _save(fig, path)


LEGEND_MAX = 12  # runs named in a curves figure's legend


@dataclass(frozen=True)
class Curves:
    """One run's per-epoch curves, as a training process has them or as the report reads them back."""

    label: str
    val_top1: History
    train_loss: History
    finished: bool = True


def curves_figure(runs: Sequence[Curves], title: str, num_classes: int | None) -> Figure:
    """Validation top-1 and training loss per epoch, one line per run, with ln(C) marking a stalled net; the legend
    names the first LEGEND_MAX runs (a legend of every seed of a thousand-run store takes longer to lay out than the
    rest of the report, and more room than the figure has).

    The per-run `curves.png` artifact (one run) and the report's per-variant figure (every seed) are this figure."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(9, 3.5))
        ax1, ax2 = fig.subplots(1, 2)
        for i, r in enumerate(runs):
            label = r.label + ("" if r.finished else " (unfinished)") if i < LEGEND_MAX else None
            if r.val_top1:
                ax1.plot(*zip(*r.val_top1), color=_colour(i), label=label, marker="o", markersize=3)
            if r.train_loss:
                ax2.plot(*zip(*r.train_loss), color=_colour(i), label=label, marker="o", markersize=3)
        if num_classes:
            ax2.axhline(math.log(num_classes), color="grey", linestyle="--", label=f"ln({num_classes}): chance")
        ax1.set(xlabel="epoch", ylabel="validation top-1 (%)")
        ax2.set(xlabel="epoch", ylabel="training loss")
        for ax in (ax1, ax2):
            _epoch_axis(ax)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                more = len(runs) - LEGEND_MAX
                # matplotlib's "best" tests each candidate place against every plotted point: with the seeds of a
                # thousand-run store that was ~0.1 s of CPU a figure. Past LEGEND_MAX runs the legend goes where
                # the curves leave room (top-1 rises, loss falls); fewer runs keep "best" (and their bytes).
                loc = "best" if more <= 0 else "lower right" if ax is ax1 else "upper right"
                ax.legend(fontsize=7, title=f"{more} more not listed" if more > 0 else None, title_fontsize=7, loc=loc)
        fig.suptitle(title)
        # fixed margins for the fixed 9 x 3.5 in figure at font size 8: tight_layout measured every text extent, 40 %
        # of the figure's CPU time (0.28 -> 0.17 s a figure for 39 runs of 90 epochs, benchmarks/report_scale.py)
        fig.subplots_adjust(left=0.065, right=0.99, bottom=0.13, top=0.89, wspace=0.18)
        FigureCanvasAgg(fig)
        return fig


def variant_curves_figure(runs: Sequence[RunRow], title: str, path: Path) -> Path:
    """One variant: every run's curves (labelled by seed), saved for the report."""
    curves = [
        Curves(f"seed {r.seed}" if r.seed is not None else fmt.short_id(r.run_id), r.val_top1, r.train_loss, r.finished)
        for r in sorted(runs, key=lambda r: (r.seed or 0, r.run_id))
    ]
    classes = sorted({r.num_classes for r in runs if r.num_classes})
    return _save(curves_figure(curves, title, classes[0] if len(classes) == 1 else None), path)


def reported_figure(comparisons: Sequence[Comparison], path: Path) -> Path:
    """Reported top-1 for every reported number; the reproduced mean ± std beside it only where comparable."""
    rows = [c for c in comparisons if c.reported.top1 is not None]
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(9, 0.28 * len(rows) + 1.5))
        ax = fig.add_subplot()
        y = np.arange(len(rows))[::-1]
        ax.barh(y, [c.reported.top1 for c in rows], color="#bbbbbb", label="reported")
        comparable = [(yy, c) for yy, c in zip(y, rows) if c.diff is not None and c.top1 is not None]
        if comparable:
            ax.errorbar(
                [c.top1.mean for _, c in comparable],
                [yy for yy, _ in comparable],
                xerr=[c.top1.std or 0.0 for _, c in comparable],
                fmt="o",
                color="#d62728",
                label="reproduced (mean ± std)",
            )
        labels = [
            f"{c.variant} · {c.reported.dataset} {c.reported.split} · {c.reported.source}"
            + (f" · x{c.reported.ensemble}" if c.reported.ensemble > 1 else "")
            + f" [{c.status}]"
            for c in rows
        ]
        ax.set_yticks(y, labels, fontsize=6)
        ax.set(xlabel="top-1 (%)", xlim=(0, 100), title="Reported top-1 and the reproduced value where comparable")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
        return _save(fig, path)


def conv_weights(state: dict[str, object]) -> tuple[np.ndarray, int] | None:
    """conv1's weights (out, in, k, k) and the number of towers: conv2's groups (KSH12: 96 filters, 48 per tower)."""
    convs = [
        (k, v)
        for k, v in state.items()
        if k.startswith("features.") and k.endswith(".weight") and getattr(v, "ndim", 0) == 4
    ]
    preferred = [kv for kv in convs if kv[0] in ("features.conv1.weight", "features.0.weight")]
    if not convs:
        return None
    name, w1 = (preferred or convs)[0]
    later = [v for k, v in convs if k != name]
    w1 = np.asarray(w1.float().numpy() if hasattr(w1, "float") else w1)
    towers = 1
    if later and w1.shape[0] % later[0].shape[1] == 0:
        towers = w1.shape[0] // later[0].shape[1]
    return w1, towers


def kernel_grid(w: np.ndarray) -> np.ndarray:
    """Mosaic of filters, each scaled to [0, 1] on its own; RGB when 3 input channels, else the channel mean."""
    n, c, k, _ = w.shape
    f = w.transpose(0, 2, 3, 1) if c == 3 else w.mean(axis=1)[..., None].repeat(3, axis=-1)
    lo = f.reshape(n, -1).min(axis=1)[:, None, None, None]
    hi = f.reshape(n, -1).max(axis=1)[:, None, None, None]
    f = (f - lo) / np.where(hi > lo, hi - lo, 1.0)
    cols = math.ceil(math.sqrt(n * 2)) if n > 8 else n
    rows = math.ceil(n / cols)
    grid = np.ones((rows * (k + 1) + 1, cols * (k + 1) + 1, 3))
    for i in range(n):
        r, col = divmod(i, cols)
        grid[1 + r * (k + 1) : 1 + r * (k + 1) + k, 1 + col * (k + 1) : 1 + col * (k + 1) + k] = f[i]
    return grid


def kernel_figure(w: np.ndarray, title: str, path: Path) -> Path:
    grid = kernel_grid(w)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(max(2.0, grid.shape[1] / 18), max(1.5, grid.shape[0] / 18 + 0.4)))
        ax = fig.add_subplot()
        ax.imshow(grid, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(title, fontsize=7)
        fig.tight_layout()
        return _save(fig, path)


def kernel_figures(state: dict[str, object], title: str, stem: Path) -> list[Path]:
    """One grid per tower: `<stem>.png`, or `<stem>_tower1.png`, `<stem>_tower2.png` for a two-tower net."""
    found = conv_weights(state)
    if found is None:
        return []
    w, towers = found
    if towers == 1:
        return [kernel_figure(w, title, stem.with_name(stem.name + ".png"))]
    per = w.shape[0] // towers
    return [
        kernel_figure(
            w[i * per : (i + 1) * per], f"{title}, tower {i + 1}", stem.with_name(f"{stem.name}_tower{i + 1}.png")
        )
        for i in range(towers)
    ]

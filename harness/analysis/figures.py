"""The qualitative figures (matplotlib Figures, Agg, no pyplot state): conv1 kernels per tower sorted by colour index
(KSH12 Fig. 3), top-5 examples and nearest neighbours (KSH12 Fig. 4), code retrieval, accuracy against shift."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from harness.analysis.colour import RANDOM_INDEX, TowerColour
from harness.analysis.examples import Example
from harness.analysis.retrieval import Retrieval
from harness.analysis.translation import ShiftAccuracy
from harness.report.figures import RC, kernel_grid


def _show(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """A network input [3,s,s] as an RGB image in [0, 1]: scaled by its own range (whatever the input scale)."""
    a = np.asarray(x, dtype=np.float64).transpose(1, 2, 0)
    lo, hi = a.min(), a.max()
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def colour_figure(w: np.ndarray, towers: Sequence[TowerColour], title: str) -> Figure:
    """Per tower: its conv1 kernels sorted by colour index (greyest first), and the index histograms together."""
    per = len(towers[0].index)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(4 * len(towers) + 3, 3.4))
        axes = fig.subplots(1, len(towers) + 1, gridspec_kw={"width_ratios": [4] * len(towers) + [3]})
        for ax, t in zip(axes[:-1], towers, strict=True):
            kernels = w[(t.tower - 1) * per : t.tower * per][np.argsort(t.index, kind="stable")]
            ax.imshow(kernel_grid(kernels), interpolation="nearest")
            ax.set_axis_off()
            name = f"tower {t.tower}" if len(towers) > 1 else "all kernels"
            ax.set_title(f"{name}: mean colour index {t.mean:.2f} (sorted, greyest first)", fontsize=7)
        ax = axes[-1]
        bins = np.linspace(0, 1, 21)
        for t in towers:
            ax.hist(t.index, bins=bins, alpha=0.6, label=f"tower {t.tower}" if len(towers) > 1 else "all")
        ax.axvline(RANDOM_INDEX, color="grey", linestyle=":", label="random kernel (2/3)")
        ax.set(xlabel="colour index (0 grey, 1 colour only)", ylabel="kernels")
        ax.legend(fontsize=6)
        fig.suptitle(title, fontsize=8)
        fig.tight_layout()
        return fig


def top5_figure(examples: Sequence[Example], images: torch.Tensor, classes: Sequence[str], title: str) -> Figure:
    """KSH12 Fig. 4 (left): each image with its true label and a bar per class of its top 5 (red: the true one)."""
    n = len(examples)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(1.9 * max(n, 1), 3.6))
        axes = fig.subplots(2, max(n, 1), squeeze=False, gridspec_kw={"height_ratios": [1.2, 1]})
        for j, (e, img) in enumerate(zip(examples, images, strict=True)):
            axes[0, j].imshow(_show(img), interpolation="nearest")
            axes[0, j].set_axis_off()
            axes[0, j].set_title(f"{classes[e.label]} ({e.kind})", fontsize=7)
            ax = axes[1, j]
            names = [classes[c] for c, _ in e.top5][::-1]
            values = [p for _, p in e.top5][::-1]
            colours = ["tab:red" if c == e.label else "tab:blue" for c, _ in e.top5][::-1]
            ax.barh(range(len(values)), values, color=colours)
            ax.set_yticks(range(len(values)), names, fontsize=6)
            ax.set_xlim(0, 1)
            ax.tick_params(axis="x", labelsize=6)
        fig.suptitle(title, fontsize=8)
        fig.tight_layout()
        return fig


def neighbours_figure(
    queries: torch.Tensor, database: torch.Tensor, neighbours: np.ndarray, ok: np.ndarray, title: str
) -> Figure:
    """KSH12 Fig. 4 (right): one row per query (first column), then its nearest training images; `ok` marks the
    neighbours of the query's class (others framed red). `database` holds the neighbours' images row by row."""
    rows, cols = neighbours.shape
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(1.1 * (cols + 1), 1.1 * rows + 0.4))
        axes = fig.subplots(rows, cols + 1, squeeze=False)
        for r in range(rows):
            axes[r, 0].imshow(_show(queries[r]), interpolation="nearest")
            for c in range(cols):
                ax = axes[r, c + 1]
                ax.imshow(_show(database[r * cols + c]), interpolation="nearest")
                if not ok[r, c]:
                    for s in ax.spines.values():
                        s.set_color("red")
                        s.set_linewidth(2)
            for ax in axes[r]:
                ax.set_xticks([])
                ax.set_yticks([])
        axes[0, 0].set_title("query", fontsize=7)
        fig.suptitle(title, fontsize=8)
        fig.tight_layout()
        return fig


def codes_figure(results: Sequence[Retrieval], bits: int, title: str) -> Figure:
    """precision@k and query time per image of each representation (raw fc7, fc7 codes, pixel codes, raw pixels)."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(8, 3))
        ax, ax2 = fig.subplots(1, 2)
        ks = sorted(results[0].precision)
        width = 0.8 / len(results)
        for i, r in enumerate(results):
            ax.bar(np.arange(len(ks)) + i * width, [r.precision[k] for k in ks], width, label=r.name)
        ax.set_xticks(np.arange(len(ks)) + 0.4 - width / 2, [f"p@{k}" for k in ks])
        ax.set(ylim=(0, 1), ylabel="precision (same class)", title=f"retrieval ({bits}-bit codes)")
        ax.legend(fontsize=6)
        ax2.bar([r.name for r in results], [r.query_ms for r in results], color="tab:grey")
        ax2.set(ylabel="ms per query (search only)", title="query time")
        ax2.tick_params(axis="x", labelsize=6)
        fig.suptitle(title, fontsize=8)
        fig.tight_layout()
        return fig


def shift_figure(points: Sequence[ShiftAccuracy], title: str) -> Figure:
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(5, 3))
        ax = fig.add_subplot()
        ax.plot([p.pixels for p in points], [p.top1 for p in points], marker="o")
        ax.set(xlabel="horizontal shift of the centre view (px)", ylabel="validation top-1 (%)", title=title)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

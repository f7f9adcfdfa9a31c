"""The per-run training-curve figure logged as an artifact."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def curves(name: str, history: list, num_classes: int):  # noqa: ANN001, ANN201 - EpochStats list -> Figure
    epochs = [h.epoch for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h.train_loss for h in history], marker="o", label="train loss")
    ax_loss.plot(epochs, [h.val_loss for h in history], marker="o", label="val loss")
    ax_loss.axhline(math.log(num_classes), color="grey", linestyle="--", label=f"chance ln({num_classes})")
    ax_loss.set_xlabel("epoch")
    ax_loss.legend()
    ax_acc.plot(epochs, [h.train_top1 for h in history], marker="o", label="train top-1")
    ax_acc.plot(epochs, [h.val_top1 for h in history], marker="o", label="val top-1")
    ax_acc.plot(epochs, [h.val_top5 for h in history], marker="o", label="val top-5")
    ax_acc.axhline(100 / num_classes, color="grey", linestyle="--", label="chance")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("%")
    ax_acc.legend()
    fig.suptitle(name)
    fig.tight_layout()
    plt.close(fig)
    return fig

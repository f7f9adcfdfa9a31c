"""Evaluation: top-1/top-5 accuracy (percent) and loss, each validation image counted exactly once, also under DDP.

Protocols (KSH12 s4.1): `center` is one centre crop; `ten_crop` averages the softmax of 4 corners + centre and their
horizontal flips. DistributedSampler pads with duplicates (torchvision #4559), so ranks take disjoint strided shards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from harness import distributed
from harness.distributed import Dist


@dataclass
class EvalResult:
    top1: float
    top5: float
    loss: float
    n: int
    labels: np.ndarray | None = None  # on rank 0, in dataset order
    probs: np.ndarray | None = None  # N x C float16, on rank 0


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    d: Dist,
    batch_size: int = 64,
    workers: int = 0,
    keep_probs: bool = False,
) -> EvalResult:
    n_total = len(dataset)  # type: ignore[arg-type]
    indices = list(range(d.rank, n_total, d.world_size))
    loader = DataLoader(Subset(dataset, indices), batch_size=batch_size, shuffle=False, num_workers=workers)
    model.eval()
    loss_sum = correct1 = correct5 = 0.0
    seen = 0
    probs_parts: list[np.ndarray] = []
    labels_parts: list[np.ndarray] = []
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(d.device, non_blocking=True), y.to(d.device, non_blocking=True)
            if x.dim() == 5:  # ten_crop: B x 10 x C x H x W -> mean softmax over the crops
                b, k = x.shape[:2]
                p = F.softmax(model(x.flatten(0, 1)).float(), dim=1).view(b, k, -1).mean(1)
                loss_sum += F.nll_loss(torch.log(p.clamp_min(1e-12)), y, reduction="sum").item()
            else:
                logits = model(x).float()
                p = F.softmax(logits, dim=1)
                loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            top = p.topk(min(5, p.shape[1]), dim=1).indices
            correct1 += (top[:, 0] == y).sum().item()
            correct5 += (top == y[:, None]).any(dim=1).sum().item()
            seen += len(y)
            if keep_probs:
                probs_parts.append(p.cpu().numpy().astype(np.float16))
                labels_parts.append(y.cpu().numpy())
    loss_sum, correct1, correct5, seen = distributed.all_reduce_sum([loss_sum, correct1, correct5, seen], d)
    result = EvalResult(100.0 * correct1 / seen, 100.0 * correct5 / seen, loss_sum / seen, int(seen))
    if keep_probs:
        local = (
            indices,
            np.concatenate(probs_parts) if probs_parts else None,
            np.concatenate(labels_parts) if labels_parts else None,
        )
        parts = distributed.gather(local, d)
        if d.is_main:
            n_classes = next(p[1].shape[1] for p in parts if p[1] is not None)
            probs = np.zeros((n_total, n_classes), dtype=np.float16)
            labels = np.zeros(n_total, dtype=np.int64)
            for idx, pr, lb in parts:
                if pr is not None:
                    probs[idx] = pr
                    labels[idx] = lb
            result.probs, result.labels = probs, labels
    return result


def top5_table(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image top-5 classes and their probabilities."""
    k = min(5, probs.shape[1])
    classes = np.argsort(-probs.astype(np.float32), axis=1, kind="stable")[:, :k]
    return classes, np.take_along_axis(probs, classes, axis=1)

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
from torch.utils.data import DataLoader, Dataset

from harness import distributed
from harness import precision as precision_mod
from harness.distributed import Dist
from harness.loader import eval_loader


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
    workers: int | None = None,
    keep_probs: bool = False,
    precision: str = "fp32",
    loader: DataLoader | None = None,
) -> EvalResult:
    """`dataset` yields uint8 images (harness.datasets.ImageDataset); its `view` cuts the test crops on the device.
    `loader`: one from `harness.loader.eval_loader` kept across calls (persistent workers), else one is made."""
    n_total = len(dataset)  # type: ignore[arg-type]
    indices = list(range(d.rank, n_total, d.world_size))
    loader = loader or eval_loader(dataset, batch_size, d, workers)
    view = dataset.view  # type: ignore[attr-defined]
    layout = precision_mod.memory_format(d.device)
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=d.device)  # loss, top-1 hits, top-5 hits: read once at the end
    seen = 0
    probs_parts: list[np.ndarray] = []
    labels_parts: list[np.ndarray] = []
    batches, mine_done = iter(loader), False
    with torch.no_grad():
        while True:
            batch, error = None, None
            if not mine_done:
                try:
                    batch = next(batches)
                except StopIteration:
                    mine_done = True
                except Exception as e:  # noqa: BLE001 - e.g. a file this rank cannot read: every rank stops with it
                    error = e
            # ranks hold different numbers of batches (every image once): a rank that is done keeps checking
            if distributed.check(error, d, done=mine_done, uneven=True):
                break
            if batch is None:
                continue
            x, y = batch
            x, y = x.to(d.device, non_blocking=True), y.to(d.device, non_blocking=True)
            x = view(x)
            if x.dim() == 5:  # ten_crop / five_crop: B x k x C x H x W -> mean softmax over the crops
                b, k = x.shape[:2]
                with precision_mod.autocast(d.device, precision):
                    out = model(x.flatten(0, 1).contiguous(memory_format=layout))
                p = F.softmax(out.float(), dim=1).view(b, k, -1).mean(1)
                loss = F.nll_loss(torch.log(p.clamp_min(1e-12)), y, reduction="sum")
            else:
                with precision_mod.autocast(d.device, precision):
                    logits = model(x.contiguous(memory_format=layout)).float()
                p = F.softmax(logits, dim=1)
                loss = F.cross_entropy(logits, y, reduction="sum")
            top = p.topk(min(5, p.shape[1]), dim=1).indices
            hits1, hits5 = (top[:, 0] == y).sum(), (top == y[:, None]).any(dim=1).sum()
            sums += torch.stack([loss.double(), hits1.double(), hits5.double()])
            seen += len(y)
            if keep_probs:
                probs_parts.append(p.cpu().numpy().astype(np.float16))
                labels_parts.append(y.cpu().numpy())
    loss_sum, correct1, correct5 = sums.tolist()
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

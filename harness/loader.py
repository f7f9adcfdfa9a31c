"""DataLoaders built once per run: the epoch's order per rank, per-item seeds, and worker defaults that fit the machine.

The training loader lives for the whole run (persistent workers, prefetching); `EpochSampler.set_epoch` gives each
epoch its order. Every random draw of an epoch is seeded from (seed, epoch, rank): the order here, each item's own
draw (torchvision's RandomResizedCrop, cut in the worker) from its key, the batch views (harness.augment) from the
engine's generator. So no result depends on the number of workers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from harness.datasets import ArrayDataset, collate
from harness.distributed import Dist

MAX_WORKERS = 8  # beyond ~8 decode processes per GPU the step, not the input, is the limit at AlexNet's size


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + rank * 104_729) % (2**63 - 1)


class EpochSampler(Sampler[tuple[int, int]]):
    """This rank's items of epoch e as (index, item seed). One process: `torch.randperm` seeded by epoch_seed (what
    RandomSampler with that generator gives). Several: DistributedSampler's order (seed + epoch, padded to a
    multiple of the world size, rank::world_size)."""

    def __init__(self, n: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.n, self.seed, self.rank, self.world_size = n, seed, rank, world_size
        self.epoch = 0
        self.per_rank = n if world_size == 1 else math.ceil(n / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> list[int]:
        if self.world_size == 1:
            g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
            return torch.randperm(self.n, generator=g).tolist()
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        idx = torch.randperm(self.n, generator=g).tolist()
        total = self.per_rank * self.world_size
        idx += (idx * math.ceil(total / len(idx)))[: total - len(idx)]
        return idx[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        base = epoch_seed(self.seed, self.epoch, self.rank)
        for pos, i in enumerate(self.order()):
            yield int(i), (base + 1_000_033 * (pos + 1)) % (2**63 - 1)

    def __len__(self) -> int:
        return self.per_rank


def cpus_per_process() -> int:
    """CPUs this process may use, shared among the node's ranks (torchrun's LOCAL_WORLD_SIZE)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def workers_for(dataset: Dataset, requested: int | None, device: torch.device | None = None) -> int:
    """`--workers`, or by default: 0 for data sets held in memory (a batch is one indexing operation; worker
    processes would only copy it) and when training on the CPU (the step's threads use every core: a worker process
    only preempts them; from a store, alexnet2014 at 224 px on 2 cores trained at 0.95x the bare loop with one
    worker and 1.03x without, `harness bench`); else every CPU of this process but one (for the loop), at most 8."""
    if requested is not None:
        return requested
    if isinstance(dataset, ArrayDataset) or device is None or device.type == "cpu":
        return 0
    return min(MAX_WORKERS, max(1, cpus_per_process() - 1))


def make_loader(
    dataset: Dataset, batch_size: int, sampler: Sampler | Sequence, workers: int, pin: bool, drop_last: bool
):
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        drop_last=drop_last,
        pin_memory=pin,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        # its own generator for the workers' base seeds: iterating never draws from the global RNG, which drives
        # dropout (a new iterator per epoch at 0 workers, one persistent one otherwise would draw differently)
        generator=torch.Generator().manual_seed(0),
    )


def train_loader(dataset: Dataset, batch_size: int, seed: int, d: Dist, workers: int | None) -> DataLoader:
    """The run's one training loader (`batch_size` per rank); call `loader.sampler.set_epoch(e)` before epoch e."""
    sampler = EpochSampler(len(dataset), seed, d.rank, d.world_size)  # type: ignore[arg-type]
    return make_loader(
        dataset, batch_size, sampler, workers_for(dataset, workers, d.device), d.device.type == "cuda", True
    )


def eval_loader(dataset: Dataset, batch_size: int, d: Dist, workers: int | None) -> DataLoader:
    """This rank's strided shard of the validation set (every image once across ranks, no padding), in order."""
    indices = list(range(d.rank, len(dataset), d.world_size))  # type: ignore[arg-type]
    return make_loader(
        dataset, batch_size, indices, workers_for(dataset, workers, d.device), d.device.type == "cuda", False
    )

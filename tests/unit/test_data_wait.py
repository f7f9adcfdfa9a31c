"""The epoch metric data_wait_fraction: the share of an epoch's training time spent waiting for the next batch, from a
real DataLoader (no workers) over a data set whose items take a known time to load."""

from __future__ import annotations

import time

import torch
from torch.utils.data import DataLoader, Dataset

from harness import engine, schema
from harness.augment import TrainView
from harness.distributed import Dist
from harness.progress import Progress
from variants import get_variant

BATCH = 4
ITEM_SLEEP = 0.025  # seconds per image: 0.1 s a batch


class SlowImages(Dataset):
    """32 px uint8 images that each take `sleep` seconds to load (a slow disk or decoder)."""

    def __init__(self, n: int, sleep: float) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
        self.y = torch.randint(0, 10, (n,), generator=g)
        self.sleep = sleep

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        time.sleep(self.sleep)
        return self.x[i], self.y[i]


def _epoch(sleep: float, steps: int = 12) -> engine.EpochTraining:
    torch.manual_seed(0)
    v = get_variant("ksh12_fig1_relu")  # 146k parameters: a step of 4 images takes milliseconds
    model = v.build(10)
    opt = engine.build_optimizer(model, v.recipe, v.recipe.lr)
    loader = DataLoader(SlowImages(steps * BATCH, sleep), batch_size=BATCH, num_workers=0, drop_last=True)
    d = Dist(0, 1, 0, torch.device("cpu"))
    return engine.train_one_epoch(model, loader, TrainView("ksh12", 32), opt, d, v.recipe, Progress("t", 0, False))


def test_a_loader_that_sleeps_shows_as_data_wait() -> None:
    out = _epoch(ITEM_SLEEP)
    slept = 12 * BATCH * ITEM_SLEEP  # 1.2 s in __getitem__, all of it inside next() with no workers
    assert slept <= out.data_wait <= out.seconds
    assert out.data_wait < 1.5 * slept + 0.5  # the loader's time (a sleep may overrun a little), not the steps'
    assert slept / out.seconds <= out.data_wait / out.seconds <= 1.0


def test_data_in_memory_waits_a_small_share() -> None:
    slow, fast = _epoch(ITEM_SLEEP), _epoch(0.0)
    assert fast.data_wait / fast.seconds < slow.data_wait / slow.seconds
    assert fast.data_wait < 0.5 * 12 * BATCH * ITEM_SLEEP  # no sleep: indexing a tensor and collating


def test_epoch_stats_log_the_wait_beside_images_per_sec() -> None:
    stats = engine.EpochStats(1, 2.3, 10.0, 2.3, 10.0, 50.0, 0.01, 500.0, 2.0, data_wait_s=0.5, data_wait_fraction=0.25)
    logged = stats.metrics()
    assert {"data_wait_s", "data_wait_fraction", "images_per_sec"} <= set(logged) <= set(schema.EPOCH_METRICS)
    assert (logged["data_wait_s"], logged["data_wait_fraction"]) == (0.5, 0.25)
    old = engine.EpochStats(1, 2.3, 10.0, 2.3, 10.0, 50.0, 0.01, 500.0, 2.0)  # a checkpoint's epoch from before
    assert "data_wait_fraction" not in old.metrics()

"""DataLoader worker processes change nothing: a batch is the same whatever the number of workers."""

from __future__ import annotations

import pytest
import torch

from harness.data import (
    DataSpec,
    load_datasets,
)

SMALL = {"image_size": 56, "resize": 64}  # KSH12 geometry (224 of 256) scaled down to keep the tests fast


@pytest.mark.parametrize("aug", ["ksh12", "torchvision"])
def test_batches_do_not_depend_on_the_number_of_workers(aug: str) -> None:
    """Every draw is seeded from (seed, epoch, rank): the order and each item's own draw (torchvision's
    RandomResizedCrop, cut in the worker) come from the sampler's keys, so 0 and 2 workers give the same batches."""
    from harness.distributed import Dist
    from harness.loader import train_loader

    ds = load_datasets(DataSpec("mnist5k", image_size=24, resize=28, limit_train=64, train_aug=aug))
    d = Dist(0, 1, 0, torch.device("cpu"))

    def epoch(workers: int, e: int) -> list[torch.Tensor]:
        loader = train_loader(ds.train, 16, seed=5, d=d, workers=workers)
        loader.sampler.set_epoch(e)
        return [x for x, _ in loader]

    torch.manual_seed(9)
    state = torch.get_rng_state()
    a, b, other = epoch(0, 1), epoch(2, 1), epoch(0, 2)
    assert torch.equal(torch.get_rng_state(), state)  # loaders never draw from the global RNG (dropout's)
    assert len(a) == 4 and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], other[0])  # another epoch, another order (and other crops)
    assert a[0].dtype == torch.uint8 and a[0].shape == ((16, 1, 24, 24) if aug == "torchvision" else (16, 1, 28, 28))

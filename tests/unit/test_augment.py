"""Batched views on the training device (harness.augment) against the per-image reference transforms
(harness.transforms), draw for draw; the samplers' orders; the lean step's host syncs and precisions."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DistributedSampler, RandomSampler
from torchvision.transforms.v2 import functional as F

from harness.augment import EvalView, TrainView, centre_offset, five_offsets
from harness.loader import EpochSampler, epoch_seed
from harness.transforms import IMAGENET_PCA, EvalTransform, PcaEig, TrainTransform, normalize, to_float

GREY_EIG = PcaEig((0.3, 0.02, 0.01), IMAGENET_PCA.eigvec)


def _batch(n: int = 8, c: int = 3, side: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, c, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("aug", ["ksh12", "cc2", "zf", "none"])
@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_train_view_equals_the_reference_per_image(aug: str, scale: float) -> None:
    """Each sample of the batch = transforms' crop, flip, PCA lighting and normalisation of that image with the
    same draw (KSH12 s4.1; ZF13 s3's five positions; the no-augmentation ablation's centre crop)."""
    x = _batch()
    view = TrainView(aug, 8, flip=True, eig=IMAGENET_PCA, alpha_std=0.1, input_scale=scale)
    draw = view.draw(len(x), 12, 12, torch.Generator().manual_seed(3))
    out = view.apply(x, draw)
    offsets = view.offsets(draw.alphas)
    positions = set(zip(draw.tops, draw.lefts))
    for b in range(len(x)):
        crop = F.crop(x[b], draw.tops[b], draw.lefts[b], 8, 8)  # the reference geometry on uint8 (exact)
        if draw.flips[b]:
            crop = F.horizontal_flip(crop)
        expected = normalize(to_float(crop) + offsets[b].view(3, 1, 1), scale)  # = PcaLighting with this alpha
        torch.testing.assert_close(out[b], expected, atol=2e-5 * scale, rtol=1e-5)
    if aug == "zf":
        assert positions <= set(five_offsets(12, 12, 8))
    if aug == "none":
        assert positions == {(2, 2)} and not any(draw.flips)  # the centre, never mirrored
    if aug in ("ksh12", "cc2"):
        assert len(positions) > 3 and 0 < sum(draw.flips) < len(x)


def test_train_view_none_equals_the_reference_transform_exactly() -> None:
    """No random draw left: the batched view is the reference TrainTransform("none") itself."""
    x = _batch(4, side=9)
    out = TrainView("none", 6)(x, torch.Generator().manual_seed(0))
    ref = torch.stack([TrainTransform("none", 6, 9, prepared=True)(img) for img in x])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-6)


def test_draws_are_seeded_and_per_sample() -> None:
    view = TrainView("ksh12", 8, eig=GREY_EIG)
    a = view.draw(64, 12, 12, torch.Generator().manual_seed(1))
    b = view.draw(64, 12, 12, torch.Generator().manual_seed(1))
    c = view.draw(64, 12, 12, torch.Generator().manual_seed(2))
    assert a.tops == b.tops and a.flips == b.flips and torch.equal(a.alphas, b.alphas)
    assert a.tops != c.tops
    assert set(a.tops) == set(range(5)) and set(a.lefts) == set(range(5))  # every offset of 12 - 8 + 1
    assert 20 < sum(a.flips) < 44  # about half mirrored
    assert abs(float(a.alphas.std()) - 0.1) < 0.03  # alpha ~ N(0, 0.1^2), one triple per sample


def test_grey_items_are_replicated_to_rgb() -> None:
    x = _batch(2, c=1)
    out = TrainView("ksh12", 8, flip=False)(x, torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 8, 8)
    torch.testing.assert_close(out[:, 0] * 0.229 + 0.485, out[:, 1] * 0.224 + 0.456, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, 2] * 0.225 + 0.406, out[:, 1] * 0.224 + 0.456, atol=1e-5, rtol=0)


@pytest.mark.parametrize("protocol", ["center", "ten_crop"])
@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_eval_view_equals_the_reference_transform(protocol: str, scale: float) -> None:
    x = _batch(3, side=10)
    out = EvalView(protocol, 7, scale)(x)
    ref = torch.stack([EvalTransform(protocol, 7, 10, prepared=True, input_scale=scale)(img) for img in x])
    assert out.shape == ref.shape == ((3, 3, 7, 7) if protocol == "center" else (3, 10, 3, 7, 7))
    torch.testing.assert_close(out, ref, atol=2e-5 * scale, rtol=1e-5)


def test_centre_offset_rounds_as_torchvision() -> None:
    img = torch.arange(11 * 11, dtype=torch.uint8).view(1, 11, 11)
    for crop in (4, 5, 6, 7):
        o = centre_offset(11, crop)
        assert torch.equal(F.center_crop(img, [crop, crop]), img[:, o : o + crop, o : o + crop])


def test_views_run_on_the_batch_device_only() -> None:
    """Moving the uint8 batch is all that crosses to the device: the draws are made on the CPU generator."""
    x = _batch()
    view = TrainView("ksh12", 8, eig=IMAGENET_PCA)
    out = view(x.to("meta"), torch.Generator().manual_seed(0))  # shapes only: no value is read back
    assert out.device.type == "meta" and out.shape == (8, 3, 8, 8) and out.dtype == torch.float32


# ---------------------------------------------------------------- orders


def test_epoch_sampler_keeps_the_single_process_order_and_gives_item_seeds() -> None:
    s = EpochSampler(50, seed=7)
    s.set_epoch(3)
    keys = list(s)
    expected = list(RandomSampler(range(50), generator=torch.Generator().manual_seed(epoch_seed(7, 3))))
    assert [i for i, _ in keys] == expected  # the order runs had before the sampler existed
    assert len({k for _, k in keys}) == 50  # a distinct seed per item
    s.set_epoch(4)
    assert [i for i, _ in s] != expected


def test_epoch_sampler_matches_distributed_sampler_per_rank() -> None:
    for rank in range(3):
        ours = EpochSampler(50, seed=7, rank=rank, world_size=3)
        ref = DistributedSampler(range(50), num_replicas=3, rank=rank, shuffle=True, seed=7)
        ours.set_epoch(2)
        ref.set_epoch(2)
        assert [i for i, _ in ours] == list(ref) and len(ours) == len(ref) == 17


# ---------------------------------------------------------------- precision


def test_precision_other_than_fp32_is_a_deviation_a_modified_recipe_and_another_run() -> None:
    from harness import config
    from harness.errors import HarnessError
    from harness.request import RunRequest
    from variants import get_variant

    v = get_variant("alexnet2014")
    fp32, bf16 = (config.resolve(v, RunRequest(precision=p)) for p in ("fp32", "bf16"))
    assert not fp32.recipe_modified and bf16.recipe_modified  # never counted as a reproduction
    assert any(d.startswith("Precision bf16") for d in bf16.profile_deviations)
    assert not any(d.startswith("Precision") for d in fp32.profile_deviations)
    assert bf16.config_hash() != fp32.config_hash() and bf16.params()["precision"] == "bf16"
    assert config.resolve(v, RunRequest()).config_hash() == fp32.config_hash()
    with pytest.raises(HarnessError, match="unknown precision 'fp8'"):
        config.resolve(v, RunRequest(precision="fp8"))


@pytest.mark.parametrize("aug", ["ksh12", "zf", "torchvision"])
def test_views_give_the_same_input_from_a_channels_last_batch(aug: str) -> None:
    """A batch of decoded files is channels-last (harness.data.stack_images); the views cut and convert it to the
    same planar float input, exactly, as they do the planar batch."""
    x = _batch(6, side=12)
    last = x.contiguous(memory_format=torch.channels_last)
    view = TrainView(aug, 8, flip=True, eig=IMAGENET_PCA)
    a, b = (view(batch, torch.Generator().manual_seed(4)) for batch in (x, last))
    assert a.is_contiguous() and b.is_contiguous() and torch.equal(a, b)
    for protocol in ("center", "ten_crop"):
        assert torch.equal(EvalView(protocol, 8)(x), EvalView(protocol, 8)(last))

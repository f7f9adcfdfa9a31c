"""KSH12's dropout (s4.2) and augmentation (s4.1) ablations: the networks, the no-augmentation transform, and the
proxy profile keeping the ablation."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from harness.config import resolve
from harness.errors import HarnessError
from harness.request import RunRequest
from harness.transforms import EvalTransform, PcaEig, PcaLighting, TrainTransform, check_geometry
from variants import get_variant


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["alexnet2012_no_dropout", "alexnet2012_no_augmentation"])
def test_ablations_have_the_base_networks_parameters(name: str) -> None:
    v = get_variant(name)
    assert v.ablation_of == "alexnet2012" and v.paper == "KSH12"
    with torch.device("meta"):
        assert n_params(v.build(1000)) == n_params(get_variant("alexnet2012").build(1000)) == 60_965_224


def test_no_dropout_has_no_active_dropout() -> None:
    with torch.device("meta"):
        base, ablated = get_variant("alexnet2012").build(10), get_variant("alexnet2012_no_dropout").build(10)
    drops = [m.p for m in ablated.modules() if isinstance(m, nn.Dropout)]
    assert drops and all(p == 0.0 for p in drops)
    assert [m.p for m in base.modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]  # KSH12 s4.2: fc6, fc7
    assert get_variant("alexnet2012_no_dropout").recipe == get_variant("alexnet2012").recipe


def test_no_augmentation_changes_only_the_training_geometry() -> None:
    base, v = get_variant("alexnet2012").recipe, get_variant("alexnet2012_no_augmentation").recipe
    assert v.train_aug == "none" and v.pca_lighting  # PCA lighting is s4.1's second, separate form: kept
    assert replace(v, train_aug=base.train_aug) == base


def _image(h: int = 80, w: int = 96) -> torch.Tensor:
    return torch.randint(0, 256, (3, h, w), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def test_no_augmentation_is_the_deterministic_centre_crop() -> None:
    img = _image()
    tf = TrainTransform("none", image_size=64, resize=73, flip=True)  # the profile's flip is ignored
    torch.manual_seed(0)
    first = tf(img)
    torch.manual_seed(1)
    assert torch.equal(first, tf(img)) and first.shape == (3, 64, 64)
    square = _image(73, 73)  # already square at `resize`: exactly EvalTransform's centre view
    assert torch.equal(tf(square), EvalTransform("center", 64, 73)(square))
    # no draw from the global RNG: neither a crop position nor a flip
    state = torch.get_rng_state()
    tf(img)
    assert torch.equal(state, torch.get_rng_state())


def test_no_augmentation_keeps_pca_lighting() -> None:
    lighting = PcaLighting(PcaEig((1.0, 0.0, 0.0), ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))))
    img = _image(73, 73)
    plain = TrainTransform("none", 64, 73)(img)
    lit = TrainTransform("none", 64, 73, lighting=lighting)(img)
    shift = lit - plain  # a per-image offset on the red channel only (eigval 1 on the red axis), none elsewhere
    assert shift[0].std() < 1e-4 and shift[0].abs().mean() > 0 and shift[1:].abs().max() < 1e-5


def test_geometry_check_accepts_none_and_still_rejects_unknown() -> None:
    check_geometry("none", "center", 64, 73)
    with pytest.raises(HarnessError, match="unknown train_aug 'nothing'"):
        check_geometry("nothing", "center", 64, 73)


def test_proxy_keeps_the_no_augmentation_ablation() -> None:
    """The proxy sets train_aug ksh12 for every variant but the one whose point is having none."""
    ablated = resolve(get_variant("alexnet2012_no_augmentation"), RunRequest())
    assert ablated.profile == "proxy" and ablated.recipe.train_aug == "none" and ablated.modified_keys == ()
    assert resolve(get_variant("alexnet2012"), RunRequest()).recipe.train_aug == "ksh12"
    assert resolve(get_variant("torchvision_alexnet"), RunRequest()).recipe.train_aug == "ksh12"
    assert ablated.recipe.crop == resolve(get_variant("alexnet2012"), RunRequest()).recipe.crop  # others apply
    # an explicit --set still changes it, as a recorded modification
    forced = resolve(get_variant("alexnet2012_no_augmentation"), RunRequest(sets={"train_aug": "ksh12"}))
    assert forced.recipe.train_aug == "ksh12" and forced.modified_keys == ("train_aug",)

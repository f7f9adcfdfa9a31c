"""Recipe.input_scale (docs/paper-recipe.md): 1 feeds (x - mean) / std on [0, 1] (torchvision); 255 feeds 0-255 pixel
values minus the mean in pixel units, 255 * (x - mean), as the 2012 code (convdata.py) and cuda-convnet2 did."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

import variants
from harness import config, schema
from harness.data import DataSpec, load_datasets
from harness.errors import HarnessError
from harness.request import RunRequest
from harness.runs.common import data_spec
from harness.runs.weights import run_input_scale
from harness.transforms import IMAGENET_PCA, MEAN, STD, EvalTransform, PcaLighting, TrainTransform, normalize

PIXEL_MEAN = torch.tensor(MEAN).view(3, 1, 1) * 255  # the mean in pixel units
SCALE_1_TO_255 = 255 * torch.tensor(STD).view(3, 1, 1)  # 255 * (x - m) = 255 * s * ((x - m) / s), per channel


def _image(seed: int, h: int = 12, w: int = 16) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(seed).randint(0, 256, (3, h, w), dtype=np.uint8))


def _pixels(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float32)


def test_normalize_both_scales() -> None:
    img = _image(0)
    x = _pixels(img) / 255
    torch.testing.assert_close(normalize(x), (x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1))
    torch.testing.assert_close(normalize(x, 255.0), _pixels(img) - PIXEL_MEAN, atol=1e-4, rtol=0)  # pixels - mean
    torch.testing.assert_close(normalize(x, 255.0), SCALE_1_TO_255 * normalize(x), atol=1e-4, rtol=0)
    with pytest.raises(HarnessError, match="unknown input_scale 2.0"):
        normalize(x, 2.0)


@pytest.mark.parametrize("aug", ["ksh12", "zf", "torchvision"])
def test_train_transform_scales_are_one_affine_map_apart(aug: str) -> None:
    """Same seed: the same crop and flip; the two outputs differ by exactly 255 * STD per channel."""
    img = _image(1, 10, 10)
    outs = {}
    for scale in (1.0, 255.0):
        torch.manual_seed(4)
        outs[scale] = TrainTransform(aug, image_size=7, resize=10, flip=True, prepared=True, input_scale=scale)(img)
    torch.testing.assert_close(outs[255.0], SCALE_1_TO_255 * outs[1.0], atol=1e-4, rtol=0)
    # at 255 the values are raw pixel values minus the pixel mean: integers minus PIXEL_MEAN
    raw = outs[255.0] + PIXEL_MEAN
    torch.testing.assert_close(raw, raw.round(), atol=1e-3, rtol=0)
    assert raw.min() >= 0 and raw.max() <= 255 and raw.max() > 200


def test_pca_lighting_offset_is_in_pixel_units_at_scale_255() -> None:
    """The offset eigvec @ (alpha * eigval) is drawn on [0, 1] RGB; at input_scale 255 it arrives x255, at 1 /STD."""
    img = _image(2, 10, 10)
    light = PcaLighting(IMAGENET_PCA, alpha_std=0.1)
    torch.manual_seed(9)
    torch.randint(0, 3, (1,)), torch.randint(0, 3, (1,))  # random_crop's top and left come first (no flip here)
    offset = light.offset()  # the alpha the transform draws next
    for scale in (1.0, 255.0):
        kw = {"image_size": 8, "resize": 10, "flip": False, "prepared": True, "input_scale": scale}
        torch.manual_seed(9)
        on = TrainTransform("ksh12", lighting=light, **kw)(img)
        torch.manual_seed(9)
        d = on - TrainTransform("ksh12", lighting=None, **kw)(img)
        assert torch.allclose(d, d[:, :1, :1].expand_as(d), atol=1e-4)  # one RGB shift for every pixel
        expected = offset * 255 if scale == 255 else offset / torch.tensor(STD)
        torch.testing.assert_close(d[:, 0, 0], expected, atol=1e-4, rtol=1e-4)
        if scale == 255:
            assert d.abs().max() > 0.1  # a visible shift in pixel units, not a rounding effect


@pytest.mark.parametrize("protocol", ["center", "ten_crop"])
def test_eval_transforms_scale(protocol: str) -> None:
    img = _image(3, 8, 12)  # shorter side 8 == resize
    one = EvalTransform(protocol, image_size=5, resize=8, input_scale=1.0)(img)
    pix = EvalTransform(protocol, image_size=5, resize=8, input_scale=255.0)(img)
    assert one.shape == pix.shape == ((3, 5, 5) if protocol == "center" else (10, 3, 5, 5))
    torch.testing.assert_close(pix, SCALE_1_TO_255 * one, atol=1e-4, rtol=0)
    if protocol == "center":
        expected = _pixels(img[:, 2:7, 4:9]) - PIXEL_MEAN  # central 5x5 of 8x12 (torchvision rounds 1.5, 3.5 up)
    else:
        square = img[:, :, 2:10]  # central 8x8, then tl tr bl br center and their reflections
        crops = [square[:, :5, :5], square[:, :5, 3:], square[:, 3:, :5], square[:, 3:, 3:], square[:, 2:7, 2:7]]
        crops += [c.flip(-1) for c in crops]
        expected = torch.stack([_pixels(c) - PIXEL_MEAN for c in crops])
    torch.testing.assert_close(pix, expected, atol=1e-4, rtol=0)


def test_data_spec_threads_the_scale_to_train_and_val() -> None:
    base = {"image_size": 28, "resize": 32, "synthetic_train": 8, "synthetic_val": 4}
    one, pix = (load_datasets(DataSpec("synthetic", input_scale=s, **base), "ten_crop") for s in (1.0, 255.0))
    for i in (0, 5):
        a = one.train.inputs([i], seed=i)[0]
        b = pix.train.inputs([i], seed=i)[0]  # flip and PCA lighting on (DataSpec defaults): the offset scales too
        torch.testing.assert_close(b, SCALE_1_TO_255 * a, atol=2e-3, rtol=0)
    torch.testing.assert_close(pix.val.inputs([1]), SCALE_1_TO_255 * one.val.inputs([1]), atol=2e-3, rtol=0)
    assert pix.fingerprint == one.fingerprint  # the same items, only the scale differs
    with pytest.raises(HarnessError, match="unknown input_scale 58.0"):
        load_datasets(DataSpec("synthetic", input_scale=58.0, **base))


def test_set_input_scale_parses_resolves_and_reaches_the_data_spec() -> None:
    v = variants.get_variant("alexnet2014")
    assert config.parse_set(["input_scale=255"]) == {"input_scale": 255.0}
    plain = config.resolve(v, RunRequest())
    cfg = config.resolve(v, RunRequest(sets=config.parse_set(["input_scale=255"])))
    assert cfg.recipe.input_scale == 255.0 and data_spec(cfg).input_scale == 255.0
    assert data_spec(plain).input_scale == plain.recipe.input_scale
    assert cfg.params()["input_scale"] == "255.0"
    assert "input_scale" in cfg.modified_keys and cfg.config_hash() != plain.config_hash()
    with pytest.raises(HarnessError, match="input_scale must be 1"):
        config.resolve(v, RunRequest(sets=config.parse_set(["input_scale=2"])))
    with pytest.raises(HarnessError, match="not a valid float"):
        config.parse_set(["input_scale=pixels"])


@pytest.mark.slow
def test_set_input_scale_is_logged_and_eval_uses_the_runs_scale(tmp_path: Path, cli) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    r = cli("run", "alexnet2014", "--profile", "smoke", "--epochs", "1", "--set", "input_scale=255",
            "--keep-weights", "--tracking-uri", uri, "--no-report", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    c = MlflowClient(uri)
    (run,) = c.search_runs([e.experiment_id for e in c.search_experiments()],
                           filter_string=f"tags.`{schema.TAG_KIND}` = 'variant'")  # fmt: skip
    assert run.data.params["input_scale"] == "255.0"
    assert "input_scale" in run.data.tags["modified_keys"].split(",")
    assert run_input_scale(uri, run.info.run_id) == 255.0  # `eval --run-id` evaluates at the scale it trained at


def test_proxy_feeds_unit_scale_whatever_the_recipe_and_set_still_wins() -> None:
    """He init dies at pixel scale (measured; PROXY's reasons): the proxy overrides input_scale to 1, a profile
    deviation, and `--set input_scale=255` still reaches the run as a recipe change."""
    v = variants.get_variant("alexnet2012")
    pixel = replace(v, recipe=replace(v.recipe, input_scale=255.0))  # as the KSH12 recipe will have it
    cfg = config.resolve(pixel, RunRequest())
    assert cfg.recipe.input_scale == 1.0 and cfg.recipe.init.name == "he2015" and not cfg.recipe_modified
    assert any(d.startswith("input_scale = 1.0: ") and "10.0 %" in d for d in cfg.profile_deviations)
    assert config.resolve(pixel, RunRequest(data="/data/imagenet")).recipe.input_scale == 255.0
    changed = config.resolve(pixel, RunRequest(sets=config.parse_set(["input_scale=255"])))
    assert changed.recipe.input_scale == 255.0 and changed.modified_keys == ("input_scale",)

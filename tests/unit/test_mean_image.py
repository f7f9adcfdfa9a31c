"""The per-pixel mean image (KSH12 s2: "subtracting the mean activity over the training set from each pixel").

`harness prepare` stores the mean of the training squares; the paper profile at input_scale 255 subtracts it from a
store that holds it, centred under every crop as the 2012 code did (CHM convdata.py l.137 and l.216-226), and
subtracts the per-channel mean, recording why, from anything else.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import variants
from harness import config
from harness.augment import Draw, EvalView, TrainView, centre_offset
from harness.data import DataSpec, load_datasets
from harness.decode import read_square
from harness.errors import HarnessError
from harness.prepare import prepare
from harness.prepared import MEAN_FILE, open_store
from harness.request import RunRequest
from tests.unit.test_prepared import R, write_source


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_source(tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="module")
def stores(src: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("stores")
    for fmt in ("raw", "jpeg"):
        prepare(src, out / fmt, resize=R, fmt=fmt, workers=2, verbose=False)
    return {fmt: out / fmt for fmt in ("raw", "jpeg")}


def as_version_1(store: Path, dest: Path) -> Path:
    """A copy of `store` as `prepare` wrote it before stores held the mean image (version 1): no mean, and every
    source path in the manifest."""
    old = Path(shutil.copytree(store, dest))
    (old / MEAN_FILE).unlink()
    m = json.loads((old / "manifest.json").read_text())
    del m["mean"]
    m["version"] = 1
    for split in ("train", "val"):
        m[split]["files"] = json.loads((old / f"{split}-files.json").read_text())
        (old / f"{split}-files.json").unlink()
    (old / "manifest.json").write_text(json.dumps(m, indent=1) + "\n")
    return old


@pytest.mark.parametrize("fmt", ["raw", "jpeg"])
def test_the_stored_mean_is_the_mean_of_the_training_squares(stores: dict[str, Path], fmt: str) -> None:
    store = open_store(stores[fmt])
    mean = store.mean_image()
    # the squares as prepared (for jpeg: before re-encoding), i.e. what the folder path computes
    train = store.split("train")
    squares = np.stack([read_square(p, R).numpy() for p in train.originals(range(len(train)))])
    assert len(train) == 9  # 8 photos and the grey PNG: the truncated JPEG and the text file are not in it
    assert mean is not None and mean.dtype == np.float32 and mean.shape == (3, R, R)
    assert np.array_equal(mean, squares.astype(np.float64).mean(0).astype(np.float32))
    np.testing.assert_array_equal(np.load(stores[fmt] / MEAN_FILE, allow_pickle=False), mean)


def test_the_input_is_the_crop_minus_the_mean_images_centre(stores: dict[str, Path]) -> None:
    """Pixel for pixel: x[crop, mirrored] - mean[centre window], whatever the crop's position (CHM convdata.py
    l.137: data_mean_crop is cut once, at the centre; l.222 subtracts it after __trim_borders)."""
    data = load_datasets(DataSpec("imagefolder", stores["raw"], image_size=24, resize=R, input_scale=255.0,
                                  pca_lighting=False, input_mean="pixel"), "ten_crop")  # fmt: skip
    mean = torch.from_numpy(open_store(stores["raw"]).mean_image())
    c = centre_offset(R, 24)
    window = mean[:, c : c + 24, c : c + 24]
    x, _ = data.train.__getitems__([0, 3])
    view = data.train.view
    assert isinstance(view, TrainView) and view.mean_image is not None
    got = view.apply(x, Draw(tops=[0, 8], lefts=[5, 2], flips=[False, True], alphas=None))
    want0 = x[0, :, 0:24, 5:29].float() - window
    want1 = x[1, :, 8:32, 2:26].flip(-1).float() - window  # mirrored, then the same (unmirrored) window
    assert torch.equal(got[0], want0) and torch.equal(got[1], want1)
    ev = data.val.view
    assert isinstance(ev, EvalView)
    xv, _ = data.val.__getitems__([1])
    ten = ev(xv)
    assert torch.equal(ten[0, 1], xv[0, :, 0:24, R - 24 : R].float() - window)  # the top-right corner
    assert torch.equal(ten[0, 9], xv[0, :, c : c + 24, c : c + 24].flip(-1).float() - window)  # centre, mirrored
    # and the per-channel mean without it, as before
    channel = load_datasets(DataSpec("imagefolder", stores["raw"], image_size=24, resize=R, input_scale=255.0,
                                     pca_lighting=False))  # fmt: skip
    got_c = channel.train.view.apply(x, Draw([0], [5], [False], None))
    mean_c = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1) * 255
    torch.testing.assert_close(got_c[0], x[0, :, 0:24, 5:29].float() - mean_c)


def test_a_store_without_the_mean_image_is_refused_for_it_in_one_line(stores: dict[str, Path], tmp_path) -> None:
    old = as_version_1(stores["raw"], tmp_path / "old")
    assert open_store(old).mean_image() is None and open_store(old).manifest.version == 1
    # the rest of an old store reads as before: its paths come from its manifest
    assert open_store(old).split("val").originals([1]) == open_store(stores["raw"]).split("val").originals([1])
    # preparing into it again is refused in one line, never half-updated
    with pytest.raises(HarnessError, match="is a store of version 1 .* remove it and prepare it again"):
        prepare(Path(open_store(old).manifest.source), old, resize=R, workers=1, verbose=False)
    with pytest.raises(HarnessError, match="prepared before stores held the training set's mean image"):
        load_datasets(DataSpec("imagefolder", old, image_size=24, resize=R, input_scale=255.0, input_mean="pixel"))
    bad = Path(shutil.copytree(stores["raw"], tmp_path / "bad"))
    np.save(bad / MEAN_FILE, np.full((3, R, R), np.nan, dtype=np.float32))
    with pytest.raises(HarnessError, match="outside 0..255"):
        open_store(bad).mean_image()
    np.save(bad / MEAN_FILE, np.zeros((3, R, R), dtype=object), allow_pickle=True)
    with pytest.raises(HarnessError, match="train-mean.npy is corrupt"):  # never unpickled
        open_store(bad).mean_image()


PAPER = "alexnet2012"


def test_the_paper_profile_chooses_the_mean_and_records_it(stores: dict[str, Path], src: Path, tmp_path) -> None:
    v = variants.get_variant(PAPER)
    old = as_version_1(stores["raw"], tmp_path / "old")
    pixel = config.resolve(v, RunRequest(data=str(stores["raw"])))
    from_old = config.resolve(v, RunRequest(data=str(old)))
    from_folder = config.resolve(v, RunRequest(data=str(src)))
    assert pixel.input_mean == "pixel" and not [d for d in pixel.profile_deviations if d.startswith("Mean:")]
    assert pixel.params()["input_mean"] == "pixel"
    (dev_old,) = [d for d in from_old.profile_deviations if d.startswith("Mean:")]
    (dev_folder,) = [d for d in from_folder.profile_deviations if d.startswith("Mean:")]
    assert from_old.input_mean == from_folder.input_mean == "channel"
    assert "per-channel mean" in dev_old and "prepared before stores held the mean image" in dev_old
    assert "per-channel mean" in dev_folder and "image folder" in dev_folder
    # a run with the mean image is never the same run as one without it
    assert pixel.config_hash() != replace(pixel, input_mean="channel").config_hash()
    # the proxy, torchvision's recipe (input_scale 1) and other data sets: unchanged, nothing recorded
    for cfg in (
        config.resolve(v, RunRequest(profile="proxy")),
        config.resolve(variants.get_variant("torchvision_alexnet"), RunRequest(data=str(stores["raw"]))),
    ):
        assert cfg.input_mean == "channel" and not [d for d in cfg.profile_deviations if d.startswith("Mean:")]


# harness.config.resolve(variant, RunRequest(data="/nonexistent/imagenet-256")).config_hash() on commit 731d637's
# code (before mean images): runs recorded then keep their identity.
HASHES_731D637 = {"alexnet2012": "505e7041fcb78d46", "alexnet2014": "2283a6cf3499ad9e", "zfnet": "08fced7f6e20d88e"}


@pytest.mark.parametrize("name", sorted(HASHES_731D637))
def test_runs_with_the_per_channel_mean_keep_their_config_hash(name: str) -> None:
    cfg = config.resolve(variants.get_variant(name), RunRequest(data="/nonexistent/imagenet-256"))
    assert cfg.input_mean == "channel" and cfg.config_hash() == HASHES_731D637[name]


@pytest.mark.slow
def test_an_old_store_still_trains_with_the_per_channel_mean(src: Path, cli, uri, runs, tmp_path: Path) -> None:
    """A store prepared before mean images trains, subtracting the per-channel mean, and the run says so; the same
    data prepared now trains with the mean image, as another run."""
    store = tmp_path / "store72"
    prepare(src, store, resize=72, fmt="raw", workers=2, verbose=False)  # the builders take 63 px and up
    old = as_version_1(store, tmp_path / "old72")
    for data in (old, store):
        r = cli("run", "alexnet2014", "--data", str(data), "--epochs", "1", "--batch-size", "4", "--set",
                "resize=72", "--set", "crop=64", "--no-report", "--tracking-uri", uri, cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]
    by_data = {run.data.params["data_dir"]: run for run in runs(uri)}
    assert len(by_data) == 2
    ran_old, ran_new = by_data[str(old.resolve())], by_data[str(store.resolve())]
    assert ran_old.info.status == ran_new.info.status == "FINISHED"
    assert ran_old.data.params["input_mean"] == "channel" and ran_new.data.params["input_mean"] == "pixel"
    import mlflow

    path = mlflow.MlflowClient(uri).download_artifacts(ran_old.info.run_id, "config.json", str(tmp_path / "a"))
    devs = json.loads(Path(path).read_text())["profile_deviations"]
    assert any(d.startswith("Mean: the per-channel mean") for d in devs)

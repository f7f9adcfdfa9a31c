"""The prepared data store: `harness.prepare` writes KSH12 s2's patches once, `harness.prepared` reads them back.

Real files throughout: JPEGs cut from scikit-learn's photos, a truncated JPEG, a text file named .JPEG and a
non-square grey PNG, prepared at 32 px to stay fast.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.decode import read_square
from harness.errors import HarnessError
from harness.prepare import prepare
from harness.prepared import MEAN_FILE, STORE_VERSION, Manifest, is_store, open_store
from tests.support import photo_crop

R = 32  # resize: small, so that every test is quick


def write_source(root: Path) -> Path:
    """root/{train,val}/{china,flower}/: 4 + 2 photos per class, plus in train a truncated JPEG, a text file named
    .JPEG and a non-square 8-bit grey PNG."""
    for split, n, offset in (("train", 4, 0), ("val", 2, 4)):
        for name in ("china", "flower"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(photo_crop(name, i + offset)).save(folder / f"{name}_{i}.JPEG", quality=90)
    whole = (root / "train/china/china_0.JPEG").read_bytes()
    (root / "train/china/cut.JPEG").write_bytes(whole[: len(whole) // 2])
    (root / "train/flower/notes.JPEG").write_text("not an image\n")
    grey = (np.add.outer(np.arange(45), np.arange(70)) * 2 % 256).astype(np.uint8)  # 45x70, not square
    Image.fromarray(grey, "L").save(root / "train/flower/grey.png")
    return root


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Read-only: copy it before changing it."""
    return write_source(tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="module")
def stores(src: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("stores")
    for fmt in ("raw", "jpeg"):
        prepare(src, out / fmt, resize=R, fmt=fmt, workers=2, verbose=False)
    return {fmt: out / fmt for fmt in ("raw", "jpeg")}


def folder_patch(path: str) -> np.ndarray:
    """What the folder path feeds training, before augmentation: uint8 [3, R, R]."""
    return read_square(path, R).numpy()


@pytest.mark.parametrize("split", ["train", "val"])
def test_raw_pixels_equal_the_folder_paths_exactly(stores: dict[str, Path], split: str) -> None:
    reader = open_store(stores["raw"]).split(split)
    stored = reader.read(range(len(reader))).numpy()
    for i, path in enumerate(reader.originals(range(len(reader)))):
        assert np.array_equal(stored[i], folder_patch(path)), path


def test_jpeg_pixels_are_close_to_the_folder_paths(stores: dict[str, Path]) -> None:
    reader = open_store(stores["jpeg"]).split("train")
    stored = reader.read(range(len(reader))).numpy().astype(np.int16)
    for i, path in enumerate(reader.originals(range(len(reader)))):
        diff = np.abs(stored[i] - folder_patch(path)).mean()
        assert 0 < diff < 3, (path, diff)  # re-encoded: close, not equal


def test_manifest_counts_classes_and_skipped_files(stores: dict[str, Path], src: Path) -> None:
    m = open_store(stores["raw"]).manifest
    assert (m.version, m.format, m.resize, m.quality, m.source) == (STORE_VERSION, "raw", R, None, str(src))
    assert m.classes == ("china", "flower")
    assert (m.train.count, m.train.per_class, m.val.count, m.val.per_class) == (9, (4, 5), 4, (2, 2))
    assert {s.path: s.reason.split(":")[0] for s in m.train.skipped} == {
        "train/china/cut.JPEG": "OSError",  # truncated
        "train/flower/notes.JPEG": "UnidentifiedImageError",
    }
    assert "truncated" in next(s.reason for s in m.train.skipped if s.path.endswith("cut.JPEG"))
    assert m.val.skipped == ()
    store = open_store(stores["raw"])
    files = store.split("train").files()
    assert "train/flower/grey.png" in files and "train/china/cut.JPEG" not in files
    assert m.train.files is None and "grey.png" not in (stores["raw"] / "manifest.json").read_text()
    for split in ("train", "val"):  # labels follow each file's class folder
        reader = store.split(split)
        assert [m.classes[y] for y in reader.labels] == [f.split("/")[1] for f in reader.files()]
        assert reader.labels.dtype == np.int64
    assert np.load(stores["raw"] / "train-images.npy", mmap_mode="r").shape == (9, 3, R, R)  # shrunk: 11 listed
    assert Manifest.from_json(m.to_json()) == m
    assert open_store(stores["jpeg"]).manifest.quality == 95


def test_fingerprint_is_deterministic_and_covers_the_bytes(stores: dict[str, Path], src: Path, tmp_path: Path) -> None:
    again = prepare(src, tmp_path / "again", resize=R, workers=1, verbose=False)
    first = open_store(stores["raw"]).manifest
    assert again.fingerprint == first.fingerprint and again.created >= first.created
    assert open_store(stores["jpeg"]).manifest.fingerprint != first.fingerprint
    open_store(tmp_path / "again").verify()
    with open(tmp_path / "again" / "val-images.npy", "r+b") as f:  # one pixel changed, size unchanged
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    with pytest.raises(HarnessError, match="fingerprint"):
        open_store(tmp_path / "again").verify()


@pytest.mark.parametrize("fmt, change", [("raw", 1.0), ("jpeg", 10.0)])
def test_verify_recomputes_the_mean_image(stores: dict[str, Path], tmp_path: Path, fmt: str, change: float) -> None:
    copy = tmp_path / fmt
    shutil.copytree(stores[fmt], copy)
    open_store(copy).verify()  # the stored mean is the training squares' (jpeg: within the re-encoding's error)
    mean = np.load(copy / MEAN_FILE)
    if fmt == "raw":
        mean[0, 0, 0] = min(255.0, mean[0, 0, 0] + change) if mean[0, 0, 0] < 255 else 254.0  # one pixel
    else:
        mean = np.clip(mean + change, 0, 255)
    np.save(copy / MEAN_FILE, mean.astype(np.float32))
    with pytest.raises(HarnessError, match="differs from the training squares' mean"):
        open_store(copy).verify()


@pytest.mark.parametrize("fmt", ["raw", "jpeg"])
def test_read_keeps_the_order_given(stores: dict[str, Path], fmt: str) -> None:
    reader = open_store(stores[fmt]).split("train")
    batch = reader.read([5, 0, 5, 8])
    assert batch.dtype == torch.uint8 and batch.shape == (4, 3, R, R)
    singles = [reader.read([i])[0] for i in (5, 0, 5, 8)]
    assert all(torch.equal(b, s) for b, s in zip(batch, singles))
    assert not torch.equal(batch[0], batch[1])
    assert reader.read([]).shape == (0, 3, R, R)
    with pytest.raises(IndexError):
        reader.read([len(reader)])


@pytest.mark.parametrize("fmt", ["raw", "jpeg"])
def test_reader_pickles_without_its_data(stores: dict[str, Path], fmt: str) -> None:
    reader = open_store(stores[fmt]).split("train")
    before = reader.read([3, 1])  # opens the memmap / file in this process
    blob = pickle.dumps(reader)
    assert len(blob) < 4096  # paths, labels and offsets; not the images
    assert torch.equal(pickle.loads(blob).read([3, 1]), before)
    assert open_store(stores[fmt]).split("val").originals([0]) == [str(Path(reader.source) / "val/china/china_0.JPEG")]


def test_the_paths_are_beside_the_manifest_and_never_pickled(stores: dict[str, Path], tmp_path: Path) -> None:
    """A version 2 store lists its source paths in {split}-files.json, read on the first `originals` call in a
    process and left out of the pickle a spawned DataLoader worker receives (docs/input-path.md: ~70 MB a worker at
    ImageNet's 1.28M paths when they travelled with the reader)."""
    reader = open_store(stores["raw"]).split("train")
    assert reader._files is None  # opening the store read no path
    paths = reader.originals(range(len(reader)))
    assert len(paths) == 9 and reader._files is not None
    again = pickle.loads(pickle.dumps(reader))
    assert again._files is None and again.originals(range(len(reader))) == paths
    s = copy_store(stores, "raw", tmp_path)
    (s / "train-files.json").write_text('["train/china/china_0.JPEG"]')
    with pytest.raises(HarnessError, match=r"train-files.json is corrupt: expected a JSON array of 9 paths; prepare"):
        open_store(s).split("train").originals([0])
    (s / "train-files.json").unlink()
    with pytest.raises(HarnessError, match=r"train-files.json is missing; prepare the store again"):
        open_store(s)


def copy_store(stores: dict[str, Path], fmt: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(stores[fmt], tmp_path / f"copy-{fmt}"))


def corrupt_manifest(s: Path) -> str:
    (s / "manifest.json").write_text('{"version": 1, "format": "raw"')
    return "manifest.json is corrupt"


def future_manifest(s: Path) -> str:
    (s / "manifest.json").write_text(
        (s / "manifest.json").read_text().replace(f'"version": {STORE_VERSION}', '"version": 99', 1)
    )
    return "store version 99, this harness reads versions 1 and 2"


def truncated_images(s: Path) -> str:
    with open(s / "train-images.npy", "r+b") as f:
        f.truncate(os.path.getsize(s / "train-images.npy") - 100)
    return "train-images.npy is truncated"


def label_out_of_range(s: Path) -> str:
    labels = np.load(s / "val-labels.npy")
    labels[0] = 7
    np.save(s / "val-labels.npy", labels)
    return r"val-labels.npy: label 7 out of range \[0, 2\)"


def missing_labels(s: Path) -> str:
    (s / "train-labels.npy").unlink()
    return "train-labels.npy is missing"


@pytest.mark.parametrize(
    "damage", [corrupt_manifest, future_manifest, truncated_images, label_out_of_range, missing_labels]
)
def test_a_damaged_store_is_one_harness_error_naming_the_file(stores: dict[str, Path], tmp_path: Path, damage) -> None:
    store = copy_store(stores, "raw", tmp_path)
    message = damage(store)
    with pytest.raises(HarnessError, match=message) as e:
        open_store(store)
    assert "\n" not in str(e.value)


def test_a_truncated_jpeg_file_is_refused(stores: dict[str, Path], tmp_path: Path) -> None:
    store = copy_store(stores, "jpeg", tmp_path)
    with open(store / "val-images.jpeg", "r+b") as f:
        f.truncate(10)
    with pytest.raises(HarnessError, match="val-images.jpeg is truncated: 10 bytes"):
        open_store(store)
    assert is_store(store) and not is_store(tmp_path) and not is_store(tmp_path / "nowhere")
    with pytest.raises(HarnessError, match="has no manifest.json: not a prepared store"):
        open_store(tmp_path)


def test_an_existing_out(stores: dict[str, Path], src: Path, tmp_path: Path, capsys) -> None:
    same = prepare(src, stores["raw"], resize=R, verbose=True)  # the same folder and settings: nothing to do
    assert same == open_store(stores["raw"]).manifest and "already prepared" in capsys.readouterr().out
    with pytest.raises(HarnessError, match=r"is already a store of .* \(raw, 32px\); remove it"):
        prepare(src, stores["raw"], resize=24, verbose=False)
    with pytest.raises(HarnessError, match=r"already a store of .* \(jpeg, 32px, quality 95\)"):
        prepare(src, stores["jpeg"], resize=R, fmt="jpeg", quality=80, verbose=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(HarnessError, match="exists, is not empty and is not a prepared store"):
        prepare(src, tmp_path / "busy", resize=R, verbose=False)
    left = tmp_path / "left" / ".tmp-999999999"  # a killed run's leftovers (no such process): removed
    left.mkdir(parents=True)
    (left / "train-images.npy").write_bytes(b"half")
    prepare(src, tmp_path / "left", resize=R, verbose=False)
    assert sorted(p.name for p in (tmp_path / "left").iterdir())[0] == "manifest.json"
    assert not left.exists()
    with pytest.raises(HarnessError, match="inside .*train: it would be read as a class folder"):
        prepare(src, src / "train" / "store", resize=R, verbose=False)


def test_a_changed_source_is_not_already_prepared(src: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(src, tmp_path / "src"))
    prepare(copy, tmp_path / "store", resize=R, verbose=False)
    shutil.copy(copy / "val/china/china_0.JPEG", copy / "val/china/china_9.JPEG")
    with pytest.raises(HarnessError, match="has changed since"):
        prepare(copy, tmp_path / "store", resize=R, verbose=False)


def test_a_failure_leaves_no_half_store(src: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(src, tmp_path / "src"))
    for f in (copy / "val").rglob("*.JPEG"):  # train is written, then val has nothing readable
        f.write_text("garbage")
    with pytest.raises(HarnessError, match="no readable images in .*val"):
        prepare(copy, tmp_path / "store", resize=R, verbose=False)
    assert not (tmp_path / "store").exists()  # it made the folder: it removes it
    (tmp_path / "store").mkdir()
    with pytest.raises(HarnessError, match="no readable images in .*val"):
        prepare(copy, tmp_path / "store", resize=R, verbose=False)
    assert list((tmp_path / "store").iterdir()) == []  # the user's folder stays, empty


@pytest.mark.slow
def test_cli_prepare(cli, harness_main, src: Path, tmp_path: Path) -> None:
    r = cli("prepare", "--data", str(src), "--out", str(tmp_path / "s"), "--format", "jpeg", "--resize", str(R))
    assert r.returncode == 0, r.stderr
    assert "train: 9 images, 2 skipped" in r.stdout and f"store: {tmp_path / 's'}" in r.stdout
    assert "images/s" in r.stdout and "prepare train" in r.stderr
    assert open_store(tmp_path / "s").manifest.format == "jpeg"
    code, out, _ = harness_main(
        ["prepare", "--data", str(src), "--out", str(tmp_path / "s"), "--format", "jpeg", "--resize", str(R)]
    )  # in this process: spares a start-up
    assert code == 0 and "already prepared" in out
    r = cli("prepare", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "t"))
    assert r.returncode == 2
    assert r.stderr == f"harness: error: data directory {tmp_path / 'missing'} does not exist\n"
    r = cli("prepare", "--data", str(src), "--out", str(tmp_path / "t"), "--format", "png")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "invalid choice: 'png'" in r.stderr
    assert not (tmp_path / "t").exists()


# ---------------------------------------------------------------- a store where a folder goes: data sets and runs


def test_a_store_gives_the_folders_data_sets(stores: dict[str, Path], src: Path) -> None:
    """`--data STORE` reads the manifest (no scan, no decode to find bad files): same classes, labels, skipped
    files, and the training items the folder path would give, batched by one read."""
    from harness.data import DataSpec, load_datasets

    spec = dict(image_size=28, resize=R)
    folder = load_datasets(DataSpec("imagefolder", src, **spec))
    store = load_datasets(DataSpec("imagefolder", stores["raw"], **spec), "ten_crop")
    assert store.classes == folder.classes and store.train.labels == folder.train.labels
    assert sorted(Path(p).name for p in store.skipped) == sorted(Path(p).name for p in folder.skipped)
    assert store.fingerprint != folder.fingerprint  # other bytes: the stored squares
    x, y = store.train.__getitems__([0, 3])
    assert torch.equal(x, torch.stack([folder.train[0][0], folder.train[3][0]])) and y.tolist() == [0, 0]
    assert store.val.inputs([1]).shape == (1, 10, 3, 28, 28)
    torch.testing.assert_close(store.train.inputs([2], seed=4), folder.train.inputs([2], seed=4))
    limited = load_datasets(DataSpec("imagefolder", stores["raw"], limit_train=3, **spec))
    assert len(limited.train) == 3 and limited.fingerprint != store.fingerprint


def test_torchvision_recipe_reads_the_originals_and_other_sizes_are_refused(
    stores: dict[str, Path], src: Path, tmp_path: Path
) -> None:
    from harness.data import DataSpec, load_datasets

    tv = load_datasets(DataSpec("imagefolder", stores["raw"], image_size=24, resize=R, train_aug="torchvision"))
    x, _ = tv.train[(1, 7)]  # RandomResizedCrop of the original file, with the item's seed
    assert x.shape == (3, 24, 24) and torch.equal(x, tv.train[(1, 7)][0]) and not torch.equal(x, tv.train[(1, 8)][0])
    with pytest.raises(HarnessError, match="holds 32x32 squares, this recipe rescales to 40"):
        load_datasets(DataSpec("imagefolder", stores["raw"], image_size=24, resize=40))
    moved = tmp_path / "store"
    shutil.copytree(stores["raw"], moved)
    manifest = Manifest.from_json((moved / "manifest.json").read_text())
    gone = manifest.__class__(**{**manifest.__dict__, "source": str(tmp_path / "gone")})
    (moved / "manifest.json").write_text(gone.to_json())
    with pytest.raises(HarnessError, match="crops the original images"):
        load_datasets(DataSpec("imagefolder", moved, image_size=24, resize=R, train_aug="torchvision"))


@pytest.mark.slow
def test_run_and_eval_on_a_store(src: Path, cli, uri, runs, tmp_path: Path) -> None:
    """The paper profile trains from a store and evaluates from it (ten crops cut on the device); `eval --run-id`
    evaluates at the run's own crop and resize."""
    from harness import schema

    store = tmp_path / "store72"
    prepare(src, store, resize=72, fmt="raw", workers=2, verbose=False)  # the builders take 63 px and up
    r = cli("run", "alexnet2014", "--data", str(store), "--epochs", "1", "--batch-size", "4",
            "--set", "resize=72", "--set", "crop=64", "--no-report", "--tracking-uri", uri, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = runs(uri)
    assert run.info.status == "FINISHED" and run.data.params["data_dir"] == str(store.resolve())
    assert run.data.metrics[schema.SKIPPED_IMAGES] == 2  # listed in the manifest, not found again
    e = cli("eval", "alexnet2014", "--run-id", run.info.run_id, "--data", str(store), "--tracking-uri", uri,
            cwd=tmp_path)  # fmt: skip
    assert e.returncode == 0, e.stderr[-3000:]
    assert "top-1" in e.stdout


def test_pca_of_a_store_is_the_pca_of_its_squares(stores: dict[str, Path]) -> None:
    from harness.pca import compute_pca

    eig = compute_pca(stores["raw"], max_images=100, seed=0)
    reader = open_store(stores["raw"]).split("train")
    px = reader.read(range(len(reader))).permute(0, 2, 3, 1).reshape(-1, 3).double() / 255
    cov = np.cov(px.numpy().T)
    assert abs(sum(eig.eigval) - np.trace(cov)) / np.trace(cov) < 0.15  # 4,096 pixels drawn per image

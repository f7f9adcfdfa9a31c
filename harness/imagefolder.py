"""The `imagefolder` data set: an ImageNet-style folder (DIR/train/<class>/..., DIR/val/<class>/...), or a store
`harness prepare` made from one (harness.prepared): its manifest has the classes, counts and skipped files."""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from harness import prepared
from harness.datasets import (
    Datasets,
    DataSpec,
    ImageFileDataset,
    ItemCut,
    StoreDataset,
    check_batch,
    digest,
    stratified_slice,
    train_cut,
    views,
)
from harness.decode import UnreadableImageWarning, check_image
from harness.errors import HarnessError
from harness.folders import check_dir, scan_split


def load_imagefolder(spec: DataSpec, protocol: str) -> Datasets:
    """A prepared store when `spec.root` is one, else the folder itself."""
    if spec.root is not None and prepared.is_store(spec.root):
        return load_store(spec, protocol)
    return load_folder(spec, protocol)


_UNREADABLE: dict[str, dict[str, str]] = {}  # digest of (path, size, mtime) listing -> {bad path: reason}


def drop_unreadable(samples: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], list[str]]:
    """Decode every file once up front (threads: PIL releases the GIL) so counts are exact and training never
    meets a bad file; each unreadable file is warned and left out. The result is remembered in this process for an
    unchanged file listing, so loading again (e.g. once per test protocol) costs one stat per file."""
    listing = "".join(f"{p}\t{(st := os.stat(p)).st_size}\t{st.st_mtime_ns}\n" for p, _ in samples)
    key = digest(listing.encode())
    if key not in _UNREADABLE:
        with ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) * 2)) as pool:
            reasons = pool.map(check_image, [p for p, _ in samples])
            _UNREADABLE[key] = {p: r for (p, _), r in zip(samples, reasons) if r is not None}
        for path, reason in _UNREADABLE[key].items():  # once per listing: loading it again says nothing new
            # stacklevel: the caller of harness.data.load_datasets (via load_imagefolder, load_folder)
            warnings.warn(f"skipping unreadable image {path} ({reason})", UnreadableImageWarning, stacklevel=5)
    bad = _UNREADABLE[key]
    return [s for s in samples if s[0] not in bad], list(bad)


def load_folder(spec: DataSpec, protocol: str) -> Datasets:
    root = check_dir(spec.root, "imagefolder")
    train_classes, train = scan_split(root / "train")
    val_classes, val = scan_split(root / "val")
    if train_classes != val_classes:
        only_t = sorted(set(train_classes) - set(val_classes))[:5]
        only_v = sorted(set(val_classes) - set(train_classes))[:5]
        raise HarnessError(
            f"train/ and val/ in {root} have different classes: only in train {only_t}, only in val {only_v}"
        )
    train = [train[i] for i in stratified_slice([y for _, y in train], spec.limit_train)]
    check_batch(len(train), spec, root / "train")
    val = [val[i] for i in stratified_slice([y for _, y in val], spec.limit_val)]
    train, bad_train = drop_unreadable(train)
    val, bad_val = drop_unreadable(val)
    for split, kept in (("train", train), ("val", val)):
        if not kept:
            raise HarnessError(f"no readable images in {root / split}")
    check_batch(len(train), spec, root / "train", readable=True)
    listing = "".join(f"{Path(p).relative_to(root).as_posix()}\t{os.path.getsize(p)}\t{y}\n" for p, y in train + val)
    train_view, val_view = views(spec, protocol)
    return Datasets(
        train=ImageFileDataset(train, train_cut(spec, stored_square=False), train_view),
        val=ImageFileDataset(val, ItemCut("square", spec.resize), val_view),
        num_classes=len(train_classes),
        classes=train_classes,
        fingerprint=digest(listing.encode()),
        skipped=bad_train + bad_val,
        split_name="val",
    )


def load_store(spec: DataSpec, protocol: str) -> Datasets:
    """A prepared store: its manifest has the classes, counts and skipped files, so nothing is scanned or decoded to
    find out (also in every process of a multi-process run)."""
    root = Path(spec.root).expanduser()  # type: ignore[arg-type]
    store = prepared.open_store(root)
    m = store.manifest
    if m.resize != spec.resize:
        raise HarnessError(
            f"store {root} holds {m.resize}x{m.resize} squares, this recipe rescales to {spec.resize}: prepare a "
            f"store with --resize {spec.resize}, or train on the original folder"
        )
    if spec.train_aug == "torchvision" and not Path(m.source).is_dir():
        raise HarnessError(
            f"torchvision's recipe crops the original images (RandomResizedCrop), and {m.source}, the folder store "
            f"{root} was prepared from, is gone: train it on the folder"
        )
    train_r, val_r = store.split("train"), store.split("val")
    keep_t, keep_v = stratified_slice(train_r.labels, spec.limit_train), stratified_slice(val_r.labels, spec.limit_val)
    check_batch(len(keep_t), spec, root)
    mean_image = None
    if spec.input_mean == "pixel":
        mean = store.mean_image()
        if mean is None:
            raise HarnessError(
                f"store {root} was prepared before stores held the training set's mean image (store version "
                f"{m.version}): prepare it again with `python -m harness prepare`"
            )
        mean_image = torch.from_numpy(mean)
    train_view, val_view = views(spec, protocol, mean_image=mean_image)
    chosen = np.asarray(keep_t + [-1] + keep_v, dtype=np.int64).tobytes()  # the slices taken of the stored items
    return Datasets(
        train=StoreDataset(train_r, keep_t, train_view, train_cut(spec, stored_square=True)),
        val=StoreDataset(val_r, keep_v, val_view, ItemCut("none", spec.resize)),
        num_classes=len(m.classes),
        classes=list(m.classes),
        fingerprint=digest(m.fingerprint.encode(), chosen),
        skipped=[s.path for s in (*m.train.skipped, *m.val.skipped)],
        split_name="val",
    )

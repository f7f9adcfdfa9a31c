"""What every data set is built from and made of: the `DataSpec` of a run, the `Datasets` pair it gives, and the
torch data sets of uint8 images (files, arrays, a prepared store's squares) with their per-image CPU cut.

Items are (uint8 image [C,S,S], int label): the recipe's square of side `resize` (KSH12 s2), or torchvision's
random-resized crop; each data set's `view` (harness.augment) turns a batch of them into the network's input on the
training device: crops, mirrors, PCA lighting, normalisation, and for validation the centre or ten crops.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from harness.augment import EvalView, TrainView, channels_last
from harness.decode import read_rgb
from harness.errors import HarnessError
from harness.prepared import SplitReader
from harness.transforms import IMAGENET_PCA, ImageLike, PcaEig, prepare_train, resize_shorter

PRECOMPUTE_BYTES = 512 * 2**20  # arrays resized once up front when they fit in this many bytes, else per item
SPLIT_SEED = 0  # fixed, independent of the run seed: the same data for every run


@dataclass(frozen=True)
class DataSpec:
    dataset: str  # a name in harness.data.SOURCES (request.DatasetName)
    root: Path | None = None  # --data DIR: required by the sources that read a folder (DataSource.needs_folder)
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


def views(
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


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.hexdigest()[:16]


def check_batch(n: int, spec: DataSpec, where: object, readable: bool = False) -> None:
    if n < spec.batch_size:
        what = "readable training images" if readable else "training images"
        raise HarnessError(
            f"{where} has {n} {what}, fewer than one batch of {spec.batch_size}: nothing would train "
            "(lower --batch-size or raise --limit-train)"
        )

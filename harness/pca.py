"""PCA lighting's eigen-pairs from training pixels (KSH12 s4.1: "PCA on the set of RGB pixel values throughout the
ImageNet training set"): of a folder or a prepared store (`harness pca --data DIR`), or of an array data set's own
images (harness.arrays); the ImageNet constants (harness.transforms.IMAGENET_PCA) are the default."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from harness import prepared
from harness.datasets import digest
from harness.decode import UnreadableImageWarning, to_rgb
from harness.errors import HarnessError
from harness.folders import check_dir, scan_split
from harness.transforms import IMAGENET_PCA, PcaEig

PCA_PIXELS_PER_IMAGE = 4096


def _pca(dataset_root: Path, max_images: int, seed: int) -> tuple[PcaEig, int, int]:
    root = check_dir(dataset_root, "imagefolder")
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
    key = digest(raw.tobytes())
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

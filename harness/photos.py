"""ImageNet-sized JPEG folders of real photo content, made from the two photos that ship with scikit-learn.

`imagenet_like_jpegs(root, n_per_class, classes)` writes root/{train,val}/<class>/*.JPEG: crops of china.jpg and
flower.jpg (427x640, `sklearn.datasets.load_sample_images`) rescaled to ImageNet-like sizes, with a colour cast,
mirroring and noise per class and image, so that decoding and resizing cost what they cost on ILSVRC files. For
benchmarks of the input pipeline (`harness bench`, scripts/gpu-check.sh) and tests; nothing is learnable beyond the
colour casts.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image

from harness.errors import HarnessError

# KSH12 s2: "ImageNet consists of variable-resolution images"; ILSVRC-2012's training JPEGs average about 400x350
# (docs/input-path.md). Widths and heights are drawn uniformly from these ranges: means 400 and 350.
WIDTHS = (300, 500)
HEIGHTS = (250, 450)
JPEG_QUALITY = 90  # a typical quality for photos "like ImageNet" (docs/input-path.md)
NOISE_STD = 4.0  # grey levels of Gaussian noise per pixel: no two files are identical


@functools.lru_cache(maxsize=1)
def sample_photos() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's china.jpg and flower.jpg as uint8 [427, 640, 3] arrays."""
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        raise HarnessError("the sample photos need scikit-learn: pip install scikit-learn") from None
    china, flower = load_sample_images().images
    return china, flower


def class_name(c: int) -> str:
    return f"class{c:03d}"


def photo(rng: np.random.Generator, c: int) -> Image.Image:
    """One image of class `c`: a random crop of the class's source photo, at a random ImageNet-like size, with the
    class's colour cast, a random mirror and per-pixel noise."""
    photos = sample_photos()
    src = photos[c % 2]
    if (c // 2) % 2:
        src = src[:, ::-1]  # classes 2, 3 (mod 4): the mirrored photos
    # the class's colour cast: per-channel gain, fixed by the class index alone (not the seed)
    gain = np.random.default_rng([7, c]).uniform(0.6, 1.4, size=3)
    w, h = int(rng.integers(*WIDTHS, endpoint=True)), int(rng.integers(*HEIGHTS, endpoint=True))
    # a crop with the output's aspect ratio, covering 40-100 % of the photo's shorter side scaled to fit
    sh, sw = src.shape[:2]
    fit = min(sh / h, sw / w)
    scale = fit * rng.uniform(0.4, 1.0)
    ch, cw = max(1, int(h * scale)), max(1, int(w * scale))
    top, left = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
    crop = Image.fromarray(np.ascontiguousarray(src[top : top + ch, left : left + cw]))
    img = np.asarray(crop.resize((w, h), Image.BILINEAR), dtype=np.float32)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    img = img * gain.astype(np.float32) + rng.standard_normal(img.shape, dtype=np.float32) * NOISE_STD
    return Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8))


def imagenet_like_jpegs(
    root: Path,
    n_per_class: int,
    classes: int,
    seed: int = 0,
    splits: tuple[str, ...] = ("train", "val"),
    processes: int = 1,
) -> Path:
    """Write root/<split>/<class>/<class>_<i>.JPEG, `n_per_class` images per class and split; return `root`.

    The same (seed, split, class, i) always gives the same file; splits and seeds give different images.
    `processes` > 1 writes the classes in that many processes (the same files)."""
    if n_per_class < 1 or classes < 1:
        raise HarnessError(f"need n_per_class >= 1 and classes >= 1, got {n_per_class} and {classes}")
    root = Path(root)
    if processes > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(processes) as pool:
            jobs = [pool.submit(_write_class, root, n_per_class, c, seed, splits) for c in range(classes)]
            for job in jobs:
                job.result()
        return root
    for c in range(classes):
        _write_class(root, n_per_class, c, seed, splits)
    return root


def _write_class(root: Path, n_per_class: int, c: int, seed: int, splits: tuple[str, ...]) -> None:
    for split in splits:
        folder = root / split / class_name(c)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HarnessError(f"cannot create {folder}: {e.strerror or e}") from None
        for i in range(n_per_class):
            rng = np.random.default_rng([seed, *split.encode(), c, i])  # keyed by the split's name
            photo(rng, c).save(folder / f"{class_name(c)}_{i:05d}.JPEG", quality=JPEG_QUALITY)

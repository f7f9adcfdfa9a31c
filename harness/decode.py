"""Decoding image files to 8-bit RGB tensors: JPEGs with torchvision's libjpeg-turbo decoder, the rest through PIL;
KSH12 s2's square of a file; a cheap whole-file check that a file decodes at all."""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms.v2 import functional as F

from harness.transforms import prepare_train

__all__ = ["UnreadableImageWarning", "check_image", "read_rgb", "read_square", "to_rgb"]


class UnreadableImageWarning(UserWarning):
    """An image file that PIL cannot decode; it is left out of the data set."""


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

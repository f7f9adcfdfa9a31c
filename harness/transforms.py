"""Image transforms of the papers' recipes: resize + crops, flips, PCA lighting, normalisation.

Geometry works on PIL images and on uint8 tensors [C,H,W] alike (torchvision v2 functionals accept both); the
photometric steps work on float tensors [3,H,W] in [0,1]. Every random draw uses torch's global RNG, one draw per
call (= per image), so `torch.manual_seed` and DataLoader worker seeding make augmentation reproducible.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from harness.errors import HarnessError
from variants.types import INPUT_SCALES, Protocol, TrainAug

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
TRAIN_AUGS: tuple[str, ...] = typing.get_args(TrainAug)
PROTOCOLS: tuple[str, ...] = typing.get_args(Protocol)

ImageLike = Image.Image | torch.Tensor


@dataclass(frozen=True)
class PcaEig:
    """Eigen-pairs of the 3x3 covariance of RGB pixels in [0, 1]. `eigvec` rows are R, G, B; columns are vectors."""

    eigval: tuple[float, float, float]
    eigvec: tuple[tuple[float, float, float], ...]


# FB `datasets/imagenet.lua`: the constants every PyTorch AlexNet port reuses; column 0 is the luminance axis.
IMAGENET_PCA = PcaEig(
    eigval=(0.2175, 0.0188, 0.0045),
    eigvec=(
        (-0.5675, 0.7192, 0.4009),
        (-0.5808, -0.0045, -0.8140),
        (-0.5836, -0.6948, 0.4203),
    ),
)


def to_float(img: ImageLike) -> torch.Tensor:
    """PIL image or uint8 tensor [1|3,H,W] -> float32 [3,H,W] in [0, 1] (grey is replicated to 3 channels)."""
    t = F.pil_to_tensor(img) if isinstance(img, Image.Image) else img
    t = t.to(torch.float32).div_(255.0)
    return t.expand(3, -1, -1).contiguous() if t.shape[0] == 1 else t


def normalize(x: torch.Tensor, input_scale: float = 1.0) -> torch.Tensor:
    """RGB in [0, 1] -> network input. input_scale 1: (x - MEAN) / STD (torchvision); 255: 255 * (x - MEAN), i.e.
    0-255 pixel values minus the mean in pixel units (KSH12/CC2 code). The per-channel MEAN; the per-pixel mean
    image of a prepared store is subtracted by `augment.to_input` (its `mean`)."""
    if input_scale == 1:
        return F.normalize(x, list(MEAN), list(STD))
    if input_scale == 255:
        return (x - torch.tensor(MEAN, dtype=x.dtype).view(3, 1, 1)).mul_(255.0)
    raise HarnessError(_bad_scale(input_scale))


def _bad_scale(input_scale: float) -> str:
    return (f"unknown input_scale {input_scale!r}; expected 1 ((x/255 - mean) / std, torchvision) or 255 "
            "(pixel values minus the training mean, KSH12/CC2 code)")  # fmt: skip


def resize_shorter(img: ImageLike, size: int) -> ImageLike:
    """Shorter side to `size`, bilinear with antialias (KSH12 s2 rescales to 256; TV's eval resize)."""
    return F.resize(img, size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True)


def random_crop(img: ImageLike, size: int) -> ImageLike:
    h, w = F.get_size(img)
    top = int(torch.randint(0, h - size + 1, (1,)).item())
    left = int(torch.randint(0, w - size + 1, (1,)).item())
    return F.crop(img, top, left, size, size)


def five_crops(img: ImageLike, size: int) -> list[ImageLike]:
    """Top-left, top-right, bottom-left, bottom-right, center: KSH12 s4.1 test-time patches."""
    h, w = F.get_size(img)
    corners = [
        F.crop(img, t, left, size, size) for t, left in ((0, 0), (0, w - size), (h - size, 0), (h - size, w - size))
    ]
    return corners + [F.center_crop(img, [size, size])]


@dataclass(frozen=True)
class PcaLighting:
    """KSH12 s4.1 "fancy PCA": add eigvec @ (alpha * eigval), alpha ~ N(0, alpha_std^2) per image, to every pixel."""

    eig: PcaEig
    alpha_std: float = 0.1
    _basis: torch.Tensor = field(init=False, repr=False, compare=False)  # eigvec with column j scaled by eigval j

    def __post_init__(self) -> None:
        eigvec = torch.tensor(self.eig.eigvec, dtype=torch.float32)
        object.__setattr__(self, "_basis", eigvec * torch.tensor(self.eig.eigval, dtype=torch.float32))

    def offset(self) -> torch.Tensor:
        """One draw of the RGB offset: eigvec @ (alpha * eigval)."""
        return self._basis @ (torch.randn(3) * self.alpha_std)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # no clamping to [0, 1]: neither KSH12 nor FB clamp
        return x + self.offset().view(3, 1, 1)


def prepare_train(img: ImageLike, aug: str, resize: int) -> ImageLike:
    """The deterministic part of training geometry, applied once per loaded image before `TrainTransform`."""
    if aug == "torchvision":
        return img  # TVREF: RandomResizedCrop on the original image, no resize first
    img = resize_shorter(img, resize)
    # KSH12 s2: "rescaled the image such that the shorter side was of length 256, and then cropped out the central
    # 256x256 patch"; ZF13 s3 does the same, and so does CC2 (make-data/make-data.py: CROP_TO_SQUARE = True).
    return F.center_crop(img, [resize, resize])


@dataclass(frozen=True)
class TrainTransform:
    """Training view of one image: recipe geometry + flip + optional PCA lighting + normalisation -> [3,H,W].
    aug "none" (an ablation) takes the centre crop and never flips, whatever `flip` says."""

    aug: str
    image_size: int
    resize: int
    flip: bool = True
    lighting: Callable[[torch.Tensor], torch.Tensor] | None = None  # PcaLighting, or None when the recipe has none
    prepared: bool = False  # True when `prepare_train` already ran (precomputed arrays)
    input_scale: float = 1.0  # see `normalize`

    def __call__(self, img: ImageLike) -> torch.Tensor:
        if not self.prepared:
            img = prepare_train(img, self.aug, self.resize)
        if self.aug == "torchvision":
            # TVREF: RandomResizedCrop(224) (scale 0.08-1, ratio 3/4-4/3), then flip
            img = v2.RandomResizedCrop(self.image_size, antialias=True)(img)
        elif self.aug == "none":
            # the KSH12 s4.1 ablation: no random patches (and no reflections below), the centre crop as at test time
            img = F.center_crop(img, [self.image_size, self.image_size])
        elif self.aug == "zf":
            # ZF13 s3: "10 different sub-crops of size 224x224 (corners + center with(out) horizontal flips)"; the
            # flip is drawn below, so one of the five positions is drawn here
            img = five_crops(img, self.image_size)[int(torch.randint(0, 5, (1,)).item())]
        else:
            img = random_crop(img, self.image_size)  # KSH12 s4.1: random 224x224 patches
        if self.flip and self.aug != "none" and torch.rand(1).item() < 0.5:
            img = F.horizontal_flip(img)  # KSH12 s4.1: and their horizontal reflections
        x = to_float(img)
        if self.lighting is not None:
            # on RGB in [0, 1], before normalisation (FB order): the offset is scaled with the pixels, x255 at
            # input_scale 255 (pixel units), /STD at input_scale 1
            x = self.lighting(x)
        return normalize(x, self.input_scale)


@dataclass(frozen=True)
class EvalTransform:
    """Deterministic val transform. center: resize + center crop -> [3,H,W] (TV eval).
    ten_crop: resize, central square, 4 corners + center and their flips -> [10,3,H,W] (KSH12 s4.1); five_crop: the
    same without the flips -> [5,3,H,W]."""

    protocol: str
    image_size: int
    resize: int
    prepared: bool = False  # True when the image is already resized (precomputed arrays)
    input_scale: float = 1.0  # see `normalize`

    def __call__(self, img: ImageLike) -> torch.Tensor:
        if not self.prepared:
            img = resize_shorter(img, self.resize)
        if self.protocol == "center":
            return normalize(to_float(F.center_crop(img, [self.image_size, self.image_size])), self.input_scale)
        square = F.center_crop(img, [self.resize, self.resize])
        crops = five_crops(square, self.image_size)
        if self.protocol == "ten_crop":
            crops += [F.horizontal_flip(c) for c in crops]
        return torch.stack([normalize(to_float(c), self.input_scale) for c in crops])


def check_input_scale(input_scale: float) -> None:
    if input_scale not in INPUT_SCALES:
        raise HarnessError(_bad_scale(input_scale))


def check_geometry(train_aug: str, protocol: str, image_size: int, resize: int) -> None:
    if train_aug not in TRAIN_AUGS:
        raise HarnessError(f"unknown train_aug {train_aug!r}; expected one of {', '.join(TRAIN_AUGS)}")
    if protocol not in PROTOCOLS:
        raise HarnessError(f"unknown test protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    if image_size < 1 or resize < image_size:
        raise HarnessError(f"need 1 <= image_size <= resize, got image_size={image_size} resize={resize}")

"""The papers' augmentation and test views on whole uint8 batches, on the training device (CPU or GPU alike).

A data set item is a uint8 image [C,S,S] (C = 1 or 3): the recipe's square of side `resize`, already rescaled and
centre-cropped (KSH12 s2) by the data set, or the original image's random-resized crop for torchvision's recipe.
`TrainView` turns a batch of them into the network's input: random crop, horizontal flip, PCA lighting and
normalisation (KSH12 s4.1), each sample with its own draw. The draws come from a CPU `torch.Generator` that the
engine seeds from (seed, epoch, rank), so they do not depend on the device, the number of DataLoader workers or the
batch's arrival time; the pixels move to the device once, as uint8 (4x fewer bytes than float32).

`harness.transforms` keeps the same operations per image (PIL or tensor): the reference that the tests compare
these batched versions with, draw for draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from harness.transforms import MEAN, STD, PcaEig, check_input_scale


@dataclass(frozen=True)
class Draw:
    """One batch's random choices, per sample: crop offsets, mirror, and PCA lighting's alpha (None: no lighting)."""

    tops: list[int]
    lefts: list[int]
    flips: list[bool]
    alphas: torch.Tensor | None  # [B, 3], alpha ~ N(0, alpha_std^2) (KSH12 s4.1)


def centre_offset(size: int, crop: int) -> int:
    """torchvision's `center_crop` offset: int(round((size - crop) / 2))."""
    return int(round((size - crop) / 2.0))


def five_offsets(h: int, w: int, crop: int) -> list[tuple[int, int]]:
    """(top, left) of the four corners and the centre, in `transforms.five_crops`' order (KSH12 s4.1, ZF13 s3)."""
    centre = (centre_offset(h, crop), centre_offset(w, crop))
    return [(0, 0), (0, w - crop), (h - crop, 0), (h - crop, w - crop), centre]


def channels_last(x: torch.Tensor) -> bool:
    """Whether an image [C,H,W] or a batch [B,C,H,W] of several channels keeps its channels innermost in memory: a
    decoded JPEG, PIL's pixels and the resize of either do (H,W,C is how they are stored)."""
    return x.shape[-3] > 1 and x.stride(-3) == 1


def crop_batch(x: torch.Tensor, tops: list[int], lefts: list[int], size: int, flips: list[bool] | None = None):
    """Per-sample `size` x `size` crops of a batch [B,C,H,W] at (tops[b], lefts[b]), mirrored where flips[b]. A
    channels-last batch (decoded files: harness.datasets.stack_images) gives a channels-last one, cut as rows of
    pixels; a planar batch a planar one."""
    corners = list(enumerate(zip(tops, lefts)))
    if channels_last(x):  # crop whole pixels, not byte by byte
        hwc = x.permute(0, 2, 3, 1)
        out = torch.stack([hwc[b, t : t + size, left : left + size] for b, (t, left) in corners]).permute(0, 3, 1, 2)
    else:
        out = torch.stack([x[b, :, t : t + size, left : left + size] for b, (t, left) in corners])
    if flips is not None and any(flips):
        idx = torch.tensor([b for b, f in enumerate(flips) if f], device=x.device)
        out[idx] = out[idx].flip(-1)
    return out


def mean_window(mean_image: torch.Tensor, size: int) -> torch.Tensor:
    """The part of a store's mean image [3,S,S] subtracted from every `size` crop: its centre, whatever the crop's
    position or mirror, as the 2012 code did (CHM convdata.py l.137: `data_mean_crop` is the mean image's central
    inner_size square; l.216-226: every training and test view is cut, and mirrored, before it is subtracted)."""
    s = mean_image.shape[-1]
    t = centre_offset(s, size)
    return mean_image[:, t : t + size, t : t + size].contiguous()


def to_input(
    x: torch.Tensor, input_scale: float, offsets: torch.Tensor | None = None, mean: torch.Tensor | None = None
) -> torch.Tensor:
    """uint8 [B,C,H,W] (C = 1 is replicated to RGB) -> float32 network input, as `transforms.normalize` of
    `to_float(x) + offset` would give, in one multiply-add: scale 1 ((x/255 + o - mean) / std), scale 255
    (x + 255 (o - mean)). `offsets` [B,3]: PCA lighting's RGB offsets on the [0, 1] scale. `mean` [3,H,W] (scale
    255 only): a per-pixel mean image in 0-255 units subtracted instead of the per-channel MEAN (KSH12 s2)."""
    check_input_scale(input_scale)
    if mean is not None and input_scale != 255:
        raise ValueError("a per-pixel mean image is subtracted at input_scale 255 only")
    # the per-channel mean, or zero where the mean image stands in for it
    mean_c = torch.tensor(MEAN, device=x.device) if mean is None else torch.zeros(3, device=x.device)
    bias = mean_c.expand(x.shape[0], 3) if offsets is None else mean_c - offsets.to(x.device)  # [B,3]: mean - o
    if input_scale == 1:
        std = torch.tensor(STD, device=x.device)
        gain, bias = 1.0 / (255.0 * std), -bias / std
    else:
        gain, bias = torch.ones(3, device=x.device), -255.0 * bias
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    # a planar float batch whatever the layout of x: the conversion and a channels-last batch's reordering are one
    # pass over the pixels, the multiply-add a second one in place
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device).copy_(x)
    out = torch.addcmul(bias[:, :, None, None], out, gain[None, :, None, None], out=out)
    return out if mean is None else out.sub_(mean.to(x.device, torch.float32))


@dataclass(frozen=True)
class TrainView:
    """A recipe's training view of a uint8 batch -> float [B,3,s,s]. aug (variants.types.TrainAug): "ksh12" and
    "cc2" random crops (KSH12 s4.1), "zf" one of five crops (ZF13 s3), "none" the centre crop and no mirror (the
    KSH12 ablation), "torchvision" the data set already cut RandomResizedCrop per image, so only the mirror is
    drawn here."""

    aug: str
    image_size: int
    flip: bool = True
    eig: PcaEig | None = None  # PCA lighting's eigen-pairs; None: no lighting
    alpha_std: float = 0.1
    input_scale: float = 1.0
    # a store's per-pixel mean image [3,S,S] (0-255 units; input_scale 255), or None: the per-channel MEAN
    mean_image: torch.Tensor | None = field(default=None, compare=False, repr=False)

    def draw(self, n: int, height: int, width: int, g: torch.Generator) -> Draw:
        """The draws for n samples, in a fixed order (offsets, mirrors, alphas) from `g`."""
        s = self.image_size
        if self.aug in ("none", "torchvision"):  # the centre; torchvision: the item is already the crop
            tops, lefts = [centre_offset(height, s)] * n, [centre_offset(width, s)] * n
        elif self.aug == "zf":
            table = five_offsets(height, width, s)
            tops, lefts = map(list, zip(*(table[i] for i in torch.randint(0, 5, (n,), generator=g).tolist())))
        else:  # "ksh12" and "cc2": random s x s patches (KSH12 s4.1; CC2 cuts them the same way)
            tops = torch.randint(0, height - s + 1, (n,), generator=g).tolist()
            lefts = torch.randint(0, width - s + 1, (n,), generator=g).tolist()
        mirror = self.flip and self.aug != "none"
        flips = (torch.rand(n, generator=g) < 0.5).tolist() if mirror else [False] * n
        alphas = torch.randn(n, 3, generator=g) * self.alpha_std if self.eig is not None else None
        return Draw(tops, lefts, flips, alphas)

    def offsets(self, alphas: torch.Tensor) -> torch.Tensor:
        """KSH12 s4.1's RGB offsets eigvec @ (alpha * eigval), one row per sample [B,3]."""
        assert self.eig is not None
        eigvec = torch.tensor(self.eig.eigvec, dtype=torch.float32)
        return (alphas * torch.tensor(self.eig.eigval, dtype=torch.float32)) @ eigvec.T

    def apply(self, x: torch.Tensor, d: Draw) -> torch.Tensor:
        crops = crop_batch(x, d.tops, d.lefts, self.image_size, d.flips)
        # lighting on RGB in [0, 1] before normalisation, unclamped (FB order; neither KSH12 nor FB clamp)
        offsets = None if d.alphas is None else self.offsets(d.alphas)
        return to_input(crops, self.input_scale, offsets, _window(self.mean_image, self.image_size))

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return self.apply(x, self.draw(x.shape[0], x.shape[-2], x.shape[-1], g))


@dataclass(frozen=True)
class EvalView:
    """The test view of a batch of uint8 squares (side `resize`). center: the centre crop -> [B,3,s,s] (TV eval).
    ten_crop: 4 corners + centre and their mirrors -> [B,10,3,s,s] (KSH12 s4.1), in `EvalTransform`'s order;
    five_crop: the same without the mirrors -> [B,5,3,s,s]."""

    protocol: str
    image_size: int
    input_scale: float = 1.0
    mean_image: torch.Tensor | None = field(default=None, compare=False, repr=False)  # as TrainView's

    def __call__(self, x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        h, w, s, n = x.shape[-2], x.shape[-1], self.image_size, x.shape[0]
        mean = _window(self.mean_image, s)
        if self.protocol == "center":
            crops = crop_batch(x, [centre_offset(h, s)] * n, [centre_offset(w, s)] * n, s)
            return to_input(crops, self.input_scale, None, mean)
        crops = [crop_batch(x, [t] * n, [left] * n, s) for t, left in five_offsets(h, w, s)]
        if self.protocol == "ten_crop":
            crops += [c.flip(-1) for c in crops]
        views = torch.stack(crops, 1)  # [B,10,C,s,s] (five_crop: [B,5,C,s,s])
        return to_input(views.flatten(0, 1), self.input_scale, None, mean).view(n, len(crops), 3, s, s)


def _window(mean_image: torch.Tensor | None, size: int) -> torch.Tensor | None:
    return None if mean_image is None else mean_window(mean_image, size)

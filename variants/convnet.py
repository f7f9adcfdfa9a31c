"""One spec-driven builder for the AlexNet family: conv stack -> 6x6 pool -> fully connected stack.

Layers carry the papers' names (conv1..conv6, fc6..fc8) so that init schemes, ablations and reports refer to them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class ConvSpec:
    name: str
    out: int
    kernel: int
    stride: int = 1
    pad: int = 0
    groups: int = 1  # KSH12 s3.5: groups=2 is "kernels connected only to kernel maps on the same GPU"
    norm: bool = False  # LRN after ReLU (KSH12 s3.3) or after pooling (ZF13 Fig. 3)
    pool: bool = False
    norm_after_pool: bool = False
    ceil_pad: bool = False  # cuda-convnet output size 1 + ceil((in + 2p - k) / s): pad right/bottom as needed


@dataclass(frozen=True)
class NetSpec:
    convs: tuple[ConvSpec, ...]
    fc: tuple[int, ...] = (4096, 4096)
    in_channels: int = 3
    pool_kernel: int = 3  # KSH12 s3.4: overlapping pooling, z=3, s=2
    pool_stride: int = 2
    pool_ceil: bool = True  # cuda-convnet pooling output 1 + ceil((in - z) / s); same sizes as floor at 224
    lrn_size: int = 5
    lrn_alpha: float = 1e-4  # PyTorch divides alpha by size: 2e-5 per squared sum, as the 2012 code computed
    lrn_beta: float = 0.75
    lrn_k: float = 2.0
    dropout: float = 0.5
    pool_to: int = 6  # adaptive average pool before fc6: the identity at the native size


class CeilPad(nn.Module):
    """Zero-pads right and bottom so that a conv gives cuda-convnet's ceil output size (CHM layer.py).

    A 224 crop becomes 227 for conv1 11x11/4, giving KSH12's 55x55 maps.
    """

    def __init__(self, kernel: int, stride: int, pad: int) -> None:
        super().__init__()
        self.kernel, self.stride, self.pad = kernel, stride, pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        extra_h = _ceil_extra(h + 2 * self.pad, self.kernel, self.stride)
        extra_w = _ceil_extra(w + 2 * self.pad, self.kernel, self.stride)
        if extra_h or extra_w:
            x = F.pad(x, (0, extra_w, 0, extra_h))
        return x

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}"


def _ceil_extra(size: int, kernel: int, stride: int) -> int:
    span = size - kernel
    return (stride - span % stride) % stride if span > 0 else 0


class ConvNet(nn.Module):
    """features (named conv blocks) -> avgpool -> classifier (fc -> ReLU -> dropout, KSH12 s4.2 order)."""

    def __init__(self, spec: NetSpec, num_classes: int) -> None:
        super().__init__()
        self.spec = spec
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = spec.in_channels
        for i, c in enumerate(spec.convs, start=1):
            if c.ceil_pad:
                layers[f"pad{i}"] = CeilPad(c.kernel, c.stride, c.pad)
            layers[c.name] = nn.Conv2d(channels, c.out, c.kernel, c.stride, c.pad, groups=c.groups)
            layers[f"relu{i}"] = nn.ReLU(inplace=True)
            if c.norm and not c.norm_after_pool:
                layers[f"norm{i}"] = self._lrn()
            if c.pool:
                layers[f"pool{i}"] = nn.MaxPool2d(spec.pool_kernel, spec.pool_stride, ceil_mode=spec.pool_ceil)
            if c.norm and c.norm_after_pool:
                layers[f"norm{i}"] = self._lrn()
            channels = c.out
        self.features = nn.Sequential(layers)
        self.avgpool = nn.AdaptiveAvgPool2d((spec.pool_to, spec.pool_to))
        head: OrderedDict[str, nn.Module] = OrderedDict()
        width = channels * spec.pool_to * spec.pool_to
        for j, units in enumerate(spec.fc, start=6):
            head[f"fc{j}"] = nn.Linear(width, units)
            head[f"relu_fc{j}"] = nn.ReLU(inplace=True)
            head[f"drop{j}"] = nn.Dropout(spec.dropout)
            width = units
        head[f"fc{6 + len(spec.fc)}"] = nn.Linear(width, num_classes)
        self.classifier = nn.Sequential(head)

    def _lrn(self) -> nn.LocalResponseNorm:
        s = self.spec
        return nn.LocalResponseNorm(s.lrn_size, alpha=s.lrn_alpha, beta=s.lrn_beta, k=s.lrn_k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def remove_convs(spec: NetSpec, names: tuple[str, ...]) -> NetSpec:
    """Ablation wiring rule: drop the named conv layers; every remaining layer keeps its own output width and
    groups, and takes the previous remaining layer's output as input. A removed layer's pooling and normalisation
    move to the layer before it. When the last conv layer is removed, the new last conv layer takes its output
    width, so fc6 keeps its 6x6x256 = 9216 inputs (paper-facts s1: otherwise removing conv5 grows fc6 by half)."""
    convs = list(spec.convs)
    for name in names:
        idx = next((i for i, c in enumerate(convs) if c.name == name), None)
        if idx is None:
            raise ValueError(f"no conv layer {name!r} to remove")
        if idx == 0:
            raise ValueError("removing conv1 is not a supported ablation")
        gone = convs.pop(idx)
        prev = convs[idx - 1]
        prev = replace(prev, pool=prev.pool or gone.pool, norm=prev.norm or gone.norm)
        if idx == len(convs):  # removed the last conv layer
            prev = replace(prev, out=gone.out)
        convs[idx - 1] = prev
    return replace(spec, convs=tuple(convs))


def remove_fcs(spec: NetSpec, count: int) -> NetSpec:
    """Drop the last `count` hidden fully connected layers (ZF13 Table 3: "removed layer 7", "removed layers 6,7")."""
    return replace(spec, fc=spec.fc[: len(spec.fc) - count])


def init_weights(model: nn.Module, scheme: object) -> None:
    """Apply an InitScheme to every named conv/fc layer: weight ~ N(0, std), bias = constant.

    A scheme with `fan_in_gain` draws std = gain / sqrt(fan_in) per layer (gain sqrt(2): He et al. 2015)."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for i, (name, module) in enumerate(layers):
        layer = name.rsplit(".", 1)[-1]
        fan_in = module.weight[0].numel()  # in_channels / groups x kernel area, or in_features
        rule = scheme.for_layer(layer, fan_in)  # type: ignore[attr-defined]
        output_std = getattr(scheme, "output_std", None)
        if output_std is not None and i == len(layers) - 1:
            rule = (output_std, rule[1] if rule else 0.0)
        if rule is None:
            continue
        std, bias = rule
        nn.init.normal_(module.weight, 0.0, std)
        if module.bias is not None:
            nn.init.constant_(module.bias, bias)


def renorm_filters(model: nn.Module, rms_max: float) -> int:
    """ZF13 s3: rescale each conv filter whose RMS exceeds `rms_max` to exactly `rms_max`. Returns how many."""
    count = 0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                w = module.weight
                rms = w.pow(2).mean(dim=(1, 2, 3)).sqrt()
                over = rms > rms_max
                if over.any():
                    w[over] *= (rms_max / rms[over]).view(-1, 1, 1, 1)
                    count += int(over.sum())
    return count


def feature_sizes(model: nn.Module, size: int) -> dict[str, int]:
    """Spatial size after every named conv and pool layer for a square input."""
    sizes: dict[str, int] = {}
    x = torch.zeros(1, 3, size, size)
    features = getattr(model, "features")
    with torch.no_grad():
        for name, layer in features.named_children():
            x = layer(x)
            if name.startswith(("conv", "pool")) or isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
                sizes[name] = x.shape[-1]
    return sizes


def count_macs(model: nn.Module, size: int) -> int:
    """Multiply-accumulates of one forward pass (conv and linear layers), as torchvision's `_ops` counts them."""
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = math.prod(module.kernel_size) * module.in_channels // module.groups
            total += output.numel() * k
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total

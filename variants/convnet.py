"""One spec-driven builder for the AlexNet family: conv stack -> 6x6 pool -> fully connected stack.

Layers carry the papers' names (conv1..conv6, fc6..fc8; a conv layer's ReLU, LRN and pooling carry its number) so
that init schemes, ablations and reports refer to them; the specs themselves are `variants.spec`. `trace` is the one
forward-hook walk that parameter, MAC and feature-map counts (and `harness.catalog`) use; it runs on the meta device,
so counting needs no weights.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

# the specs and the ablations' wiring rules are torch-free data (`variants.spec`); named here too, where the network
# that follows them is built
from variants.spec import ConvSpec, NetSpec, remove_convs, remove_fcs

__all__ = ["ConvNet", "ConvSpec", "NetSpec", "remove_convs", "remove_fcs"]


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


class GroupedLinear(nn.Linear):
    """A fully connected layer split into `groups` independent blocks: block g maps the g-th slice of the input to
    the g-th slice of the output (what two towers without communication compute). `in_features` is the full input
    width; the weight is (out_features, in_features // groups), so `weight[0].numel()` is the fan-in as for conv."""

    def __init__(self, in_features: int, out_features: int, groups: int) -> None:
        if in_features % groups or out_features % groups:
            raise ValueError(f"{in_features} -> {out_features} does not split into {groups} groups")
        super().__init__(in_features // groups, out_features)
        self.in_features, self.groups = in_features, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.groups
        w = self.weight.view(g, self.out_features // g, self.in_features // g)
        y = torch.einsum("ngi,goi->ngo", x.reshape(x.shape[0], g, -1), w)
        return y.reshape(x.shape[0], self.out_features) + self.bias

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, groups={self.groups}"


class FastLRN(nn.LocalResponseNorm):
    """`nn.LocalResponseNorm`'s function, computed 2-3x faster on the CPU (a running sum over channels instead of a
    3-d average pool; for beta = 0.75, d^-0.75 as rsqrt(d) * sqrt(rsqrt(d)) instead of a pow). Same constants:
    b = a / (k + alpha / size * sum of a^2 over `size` neighbouring maps)^beta (KSH12 s3.3, alpha as PyTorch divides
    it by size). Agrees with PyTorch's to float32 rounding (tests/test_variants.py); in the proxy's alexnet2012 the
    LRN layers took ~40 % of a training step (benchmarks/throughput.py: 583 img/s, 1,032 without LRN)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return super().forward(x)
        n = self.size
        sums = F.pad(x * x, (0, 0, 0, 0, n // 2 + 1, (n - 1) // 2)).cumsum(1)  # zero, then maps padded as PyTorch
        d = (sums[:, n:] - sums[:, :-n]) * (self.alpha / n) + self.k
        if self.beta == 0.75:
            r = d.rsqrt()
            return x * r * r.sqrt()
        return x / d.pow(self.beta)


class TowerLRN(FastLRN):
    """LRN over each of `towers` equal slices of the maps on its own: the 2012 code's two towers each normalise
    their own maps (CHM layers/layers-145.cfg: rnorm1a reads conv1a's 48 maps), so no window crosses the boundary
    between towers. `towers` = 1 is FastLRN."""

    def __init__(self, size: int, alpha: float, beta: float, k: float, towers: int) -> None:
        super().__init__(size, alpha=alpha, beta=beta, k=k)
        self.towers = towers

    def one_tower(self, x: torch.Tensor) -> torch.Tensor:
        """LRN over all of `x`'s maps: one tower's (what each rank of `--parallel towers` holds)."""
        return super().forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.towers == 1 or x.dim() != 4:
            return self.one_tower(x)
        b, c, h, w = x.shape  # each tower's maps as a sample of their own: one pass, no window across towers
        return self.one_tower(x.reshape(b * self.towers, c // self.towers, h, w)).reshape(b, c, h, w)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, towers={self.towers}"


class ScaleAtTestDropout(nn.Dropout):
    """The 2012 code's dropout (KSH12 s4.2; CHM src/layer.cu HiddenSexLayer::fpropActs l.1126-1135; CC2
    cudaconvnet/src/layer.cu Dropout2Layer::fpropActs l.1374-1383): in training each unit is kept where a uniform
    draw is below keep = 1 - p and passed on unscaled (`mask = uniform < keep; out = in * mask`); at test every unit
    is multiplied by keep (`in.scale(_keep)`). nn.Dropout instead scales kept units by 1 / keep in training."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = 1.0 - self.p
        if self.p == 0:
            return x
        if self.training:
            return x * (torch.rand_like(x) < keep)
        return x * keep


def set_dropout_scaling(model: nn.Module, scaling: Literal["test", "train"]) -> nn.Module:
    """`model` with every dropout module (nn.Dropout or ScaleAtTestDropout) replaced by the `scaling` kind at the
    same rate and name: "test" the 2012 code's, "train" nn.Dropout. Dropout has no parameters, so state dicts and
    parameter counts are unchanged."""
    kind = ScaleAtTestDropout if scaling == "test" else nn.Dropout
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Dropout) and type(child) is not kind:
                setattr(parent, name, kind(child.p))
    return model


def set_pool_to(model: nn.Module, n: int) -> nn.Module:
    """The same network with its adaptive average pool before fc6 (`avgpool`: ConvNet's and torchvision's AlexNet's)
    giving n x n positions, and fc6 reading them (channels x n x n inputs, fresh weights: call before init). At an
    input where the last pooling layer gives n x n maps the pool is the identity; below that a 6 x 6 pool copies each
    position into several that fc6 weighs separately but that always get the same gradient."""
    pool = getattr(model, "avgpool", None)
    if not isinstance(pool, nn.AdaptiveAvgPool2d):
        raise ValueError(f"{type(model).__name__} has no adaptive pool before its fully connected layers")
    if n < 1:
        raise ValueError(f"pool_to must be a positive number of positions, got {n}")
    size = pool.output_size
    old_h, old_w = (size, size) if isinstance(size, int) else size
    head = getattr(model, "classifier", None)
    fc = next((m for m in head.modules() if isinstance(m, nn.Linear)), None) if head is not None else None
    if fc is None:
        raise ValueError(f"{type(model).__name__} has no fully connected layer after its pool")
    channels = fc.in_features // (old_h * old_w)
    new: nn.Module = (
        GroupedLinear(channels * n * n, fc.out_features, fc.groups)
        if isinstance(fc, GroupedLinear)
        else nn.Linear(channels * n * n, fc.out_features, bias=fc.bias is not None)
    )
    for parent in head.modules():
        for name, child in list(parent.named_children()):
            if child is fc:
                setattr(parent, name, new)
    model.avgpool = nn.AdaptiveAvgPool2d((n, n))
    return model


def dropout_scaling_of(model: nn.Module) -> Literal["test", "train"]:
    """How a built network's dropout scales: "test" where it has the code's dropout, else "train" (nn.Dropout's)."""
    return "test" if any(isinstance(m, ScaleAtTestDropout) for m in model.modules()) else "train"


class ConvNet(nn.Module):
    """features (named conv blocks) -> avgpool -> classifier (fc -> ReLU -> dropout, KSH12 s4.2 order)."""

    def __init__(self, spec: NetSpec, num_classes: int) -> None:
        super().__init__()
        self.spec = spec
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = spec.in_channels
        for c in spec.convs:
            i = c.name.removeprefix("conv")  # relu4, norm4, pool4 belong to conv4 whatever was removed before it
            if not c.removed:
                if c.ceil_pad:
                    layers[f"pad{i}"] = CeilPad(c.kernel, c.stride, c.pad)
                layers[c.name] = nn.Conv2d(channels, c.out, c.kernel, c.stride, c.pad, groups=c.groups)
                if c.norm and c.norm_before_relu:
                    layers[f"norm{i}"] = self._lrn()
                layers[f"{spec.activation}{i}"] = self._act()
                if c.norm and not (c.norm_after_pool or c.norm_before_relu):
                    layers[f"norm{i}"] = self._lrn()
                channels = c.out
            if c.pool:
                layers[f"pool{i}"] = self._pool(c.pool_type)
            if c.norm and c.norm_after_pool and not c.removed:
                layers[f"norm{i}"] = self._lrn()
        self.features = nn.Sequential(layers)
        self.avgpool = nn.AdaptiveAvgPool2d((spec.pool_to, spec.pool_to))
        head: OrderedDict[str, nn.Module] = OrderedDict()
        width = channels * spec.pool_to * spec.pool_to
        groups = spec.fc_groups or (1,) * len(spec.fc)
        if len(groups) != len(spec.fc):
            raise ValueError(f"fc_groups {spec.fc_groups} does not match the hidden fc layers {spec.fc}")
        for j, (units, g) in enumerate(zip(spec.fc, groups, strict=True), start=6):
            head[f"fc{j}"] = nn.Linear(width, units) if g == 1 else GroupedLinear(width, units, g)
            head[f"{spec.activation}_fc{j}"] = self._act()
            head[f"drop{j}"] = (
                ScaleAtTestDropout(spec.dropout) if spec.dropout_scale == "test" else nn.Dropout(spec.dropout)
            )
            width = units
        head[f"fc{6 + len(spec.fc)}"] = nn.Linear(width, num_classes)
        self.classifier = nn.Sequential(head)

    def _act(self) -> nn.Module:
        return nn.Tanh() if self.spec.activation == "tanh" else nn.ReLU(inplace=True)

    def _pool(self, kind: str) -> nn.Module:
        s = self.spec
        if kind == "avg":
            # with ceil_mode a window past the edge averages its in-bounds values only (PyTorch's divisor)
            return nn.AvgPool2d(s.pool_kernel, s.pool_stride, ceil_mode=s.pool_ceil)
        return nn.MaxPool2d(s.pool_kernel, s.pool_stride, ceil_mode=s.pool_ceil)

    def _lrn(self) -> nn.LocalResponseNorm:
        s = self.spec
        if s.lrn_towers > 1:
            return TowerLRN(s.lrn_size, s.lrn_alpha, s.lrn_beta, s.lrn_k, s.lrn_towers)
        return FastLRN(s.lrn_size, alpha=s.lrn_alpha, beta=s.lrn_beta, k=s.lrn_k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def narrow(model: nn.Module, width: float) -> nn.Module:
    """The same network with `width` times the channels of every conv layer and the units of every hidden fc layer
    (rounded to a multiple of the layer's groups); the input's 3 channels and the output's classes stay. Works on any
    stack of Conv2d / Linear / GroupedLinear whose layers read the previous one (fc6 reads the last conv's maps
    flattened: its inputs scale with that conv's channels). Weights are fresh: call before `init_weights`."""
    if width == 1:
        return model
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prev_old = prev_new = 0
    for i, (name, m) in enumerate(layers):
        groups = getattr(m, "groups", 1)
        old_in, old_out = (
            (m.in_channels, m.out_channels) if isinstance(m, nn.Conv2d) else (m.in_features, m.out_features)
        )
        if i == 0:
            new_in = old_in
        elif old_in % prev_old:
            raise ValueError(f"{name} reads {old_in} inputs, not a multiple of the previous layer's {prev_old}")
        else:
            new_in = old_in // prev_old * prev_new
        new_out = old_out if i == len(layers) - 1 else max(groups, round(old_out * width / groups) * groups)
        if isinstance(m, nn.Conv2d):
            new: nn.Module = nn.Conv2d(
                new_in, new_out, m.kernel_size, m.stride, m.padding, groups=groups, bias=m.bias is not None
            )
        elif isinstance(m, GroupedLinear):
            new = GroupedLinear(new_in, new_out, groups)
        else:
            new = nn.Linear(new_in, new_out, bias=m.bias is not None)
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)
        prev_old, prev_new = old_out, new_out
    return model


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


def renorm_filters(model: nn.Module, rms_max: float) -> None:
    """ZF13 s3: rescale each conv filter whose RMS exceeds `rms_max` to exactly `rms_max`. Filters under the limit
    are multiplied by exactly 1, so no value is read back to the host (no device sync per layer)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                w = module.weight
                rms = w.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
                w.mul_(torch.where(rms > rms_max, rms_max / rms, torch.ones_like(rms)))


@dataclass(frozen=True)
class LayerTrace:
    """One leaf module met by a forward pass: its qualified name, the module, and its output shape without the batch
    dimension (C, H, W for maps, (units,) for fully connected layers)."""

    name: str
    module: nn.Module
    shape: tuple[int, ...]


def _device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def trace(model: nn.Module, size: int, channels: int = 3) -> list[LayerTrace]:
    """Every leaf module in the order a forward pass of one `size` x `size` image reaches it, with its output shape.

    The one forward-hook walk of the package: `feature_sizes`, `count_macs` and `harness.catalog` build on it. The
    input is made on the model's device, so a model built under `with torch.device("meta"):` is traced without
    allocating or computing anything (shapes only). The model runs in eval mode and is put back as it was."""
    found: list[LayerTrace] = []

    def leaves() -> Iterator[tuple[str, nn.Module]]:
        return ((n, m) for n, m in model.named_modules() if n and next(m.children(), None) is None)

    def hook(name: str) -> Callable[[nn.Module, object, torch.Tensor], None]:
        def record(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            found.append(LayerTrace(name, module, tuple(output.shape[1:])))

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in leaves()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, channels, size, size, device=_device(model)))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return found


def feature_sizes(model: nn.Module, size: int) -> dict[str, int]:
    """Spatial size after every named conv and pool layer of `model.features` for a square input."""
    sizes: dict[str, int] = {}
    for t in trace(model, size):
        prefix, _, name = t.name.rpartition(".")
        if prefix != "features":
            continue
        if name.startswith(("conv", "pool")) or isinstance(t.module, (nn.Conv2d, nn.MaxPool2d)):
            sizes[name] = t.shape[-1]
    return sizes


def layer_macs(t: LayerTrace) -> int:
    """Multiply-accumulates of one traced conv or linear layer (0 for any other module)."""
    m = t.module
    if isinstance(m, nn.Conv2d):
        return math.prod(t.shape) * math.prod(m.kernel_size) * m.in_channels // m.groups
    if isinstance(m, nn.Linear):
        return math.prod(t.shape) * m.in_features // getattr(m, "groups", 1)
    return 0


def count_macs(model: nn.Module, size: int) -> int:
    """Multiply-accumulates of one forward pass (conv and linear layers), as torchvision's `_ops` counts them."""
    return sum(layer_macs(t) for t in trace(model, size))

"""The conv nets' specifications as typed data (no torch): layer by layer, the ablations' wiring rules, and the
builder that turns a spec into `variants.convnet.ConvNet` (torch imported only there, so that the registry, and
`harness list`, load without it)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, replace
from typing import Literal

if typing.TYPE_CHECKING:
    from variants.convnet import ConvNet


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
    # LRN on the conv's raw output, ReLU after it (cuda-convnet2 layers-imagenet-1gpu.cfg: conv1 has no neuron,
    # rnorm1 reads conv1, the ReLU sits on pool1; ReLU commutes with max pooling, so relu-then-pool is the same)
    norm_before_relu: bool = False
    ceil_pad: bool = False  # cuda-convnet output size 1 + ceil((in + 2p - k) / s): pad right/bottom as needed
    # ablation (see `remove_convs`): the conv, its ReLU and LRN are gone; its pooling stays where it was
    removed: bool = False
    # "avg": average pooling (cuda-convnet example-layers/layers-80sec.cfg l.47-55, 70-78: pool2, pool3 pool=avg)
    pool_type: Literal["max", "avg"] = "max"


@dataclass(frozen=True)
class NetSpec:
    convs: tuple[ConvSpec, ...]
    fc: tuple[int, ...] = (4096, 4096)
    # groups of each hidden fc layer (empty: all dense); 2 = one block per tower, as the 2012 code's run #150
    # without tower communication (layers/layers-150.cfg: fc4096a reads pool3a only)
    fc_groups: tuple[int, ...] = ()
    in_channels: int = 3
    pool_kernel: int = 3  # KSH12 s3.4: overlapping pooling, z=3, s=2
    pool_stride: int = 2
    pool_ceil: bool = True  # cuda-convnet pooling output 1 + ceil((in - z) / s); same sizes as floor at 224
    lrn_size: int = 5
    lrn_alpha: float = 1e-4  # PyTorch divides alpha by size: 2e-5 per squared sum, as the 2012 code computed
    lrn_beta: float = 0.75
    lrn_k: float = 2.0
    dropout: float = 0.5
    # "test": the 2012 code's dropout (KSH12 s4.2 "multiply their outputs by 0.5" at test time; CHM src/layer.cu
    # HiddenSexLayer::fpropActs l.1126-1135, CC2 cudaconvnet/src/layer.cu Dropout2Layer::fpropActs l.1374-1383):
    # training zeroes units and keeps the others as they are. "train": PyTorch's nn.Dropout (kept units x 1/(1-p)
    # in training, the identity at test), what torchvision's net uses.
    dropout_scale: Literal["test", "train"] = "test"
    # LRN normalises each tower's maps on their own (CHM layers/layers-145.cfg: `[rnorm1a] inputs=conv1a
    # channels=48`, `[rnorm2a] inputs=conv2a channels=128`): 2 for the two-tower nets, 1 for one tower
    lrn_towers: int = 1
    pool_to: int = 6  # adaptive average pool before fc6: the identity at the native size
    # the nonlinearity after every conv and hidden fc layer; "tanh": KSH12 Fig. 1's dashed line. Modules are named
    # relu{i} / relu_fc{j} for "relu" (unchanged) and tanh{i} / tanh_fc{j} for "tanh"; neither has parameters.
    activation: Literal["relu", "tanh"] = "relu"


def remove_convs(spec: NetSpec, names: tuple[str, ...]) -> NetSpec:
    """Ablation wiring rule: remove each named conv layer with its ReLU and LRN; its pooling stays where it was
    (applied to the previous layer's output); every other layer keeps its width, kernel, padding and groups; the next
    layer's input channels and fc6's input follow. Removing the last conv layer therefore widens fc6 (KSH12 net
    without conv5: 384 x 6 x 6 = 13,824 inputs)."""
    convs = list(spec.convs)
    for name in names:
        idx = next((i for i, c in enumerate(convs) if c.name == name and not c.removed), None)
        if idx is None:
            raise ValueError(f"no conv layer {name!r} to remove")
        if idx == 0:
            raise ValueError("removing conv1 is not a supported ablation")
        convs[idx] = replace(convs[idx], removed=True)
    return replace(spec, convs=tuple(convs))


def remove_fcs(spec: NetSpec, count: int) -> NetSpec:
    """Drop the last `count` hidden fully connected layers (ZF13 Table 3: "removed layer 7", "removed layers 6,7")."""
    return replace(spec, fc=spec.fc[: len(spec.fc) - count])


def convnet(spec: NetSpec, num_classes: int) -> ConvNet:
    """The network of `spec` (a registered variant's builder: `partial(convnet, spec)`)."""
    from variants.convnet import ConvNet

    return ConvNet(spec, num_classes)

"""Typed data for the variant registry: architectures, recipes, reported numbers, paper claims.

Everything a report compares against is a field here, never prose. `variants` depends on torch only.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Literal

if typing.TYPE_CHECKING:  # the registry loads without torch (`harness list`); building a network imports it
    import torch.nn as nn

# center: one centre crop; ten_crop: 4 corners + centre and their mirrors (KSH12 s4.1); five_crop: the same 5 crops
# without mirrors (the CPU proxy's stand-in for ten_crop: a mirrored digit is another symbol)
Protocol = Literal["center", "ten_crop", "five_crop"]
# "table": a fixed per-layer-group lr per epoch (`Recipe.lr_table`: what the 2012 code ran, `LrTable`)
Schedule = Literal["plateau", "multistep", "step", "warmup_linear", "table"]
ParamKind = Literal["weight", "bias"]
# "none": no crop or flip augmentation, the centre crop of the resized image (the KSH12 s4.1 ablation)
TrainAug = Literal["ksh12", "torchvision", "zf", "cc2", "none"]
Metric = Literal["top1", "top5"]
# How dropout scales (`Recipe.dropout_scaling`): "test", the 2012/2014 code's (kept units unscaled in training, x keep
# at test: `variants.convnet.ScaleAtTestDropout`); "train", PyTorch's nn.Dropout (kept units x 1/keep in training)
DropoutScaling = Literal["test", "train"]

# The smallest input every builder takes (torchvision: "min_size": (63, 63); the ceil-mode pools here match it).
MIN_INPUT_SIZE = 63
# difference: "X lowers error by d" (a signed change); at_least: "by over d" (a lower bound on the change);
# equivalence: "X changes little" (|change| <= delta); direction: "X lowers error" with no size given (only the sign
# of delta counts: -1 or +1 by convention).
# speedup: "X reaches a training error `threshold` `delta` times faster than the baseline" (KSH12 Fig. 1): measured
# as training images seen until the running training error first falls to the threshold, per run.
ClaimKind = Literal["difference", "at_least", "equivalence", "direction", "speedup"]


@dataclass(frozen=True)
class Paper:
    """The paper (or code release) a module's variants come from. `key` is what `Variant.paper` names."""

    key: str  # short citation key, e.g. "KSH12"
    citation: str


@dataclass(frozen=True)
class LayerInit:
    """Weight std and bias constant for one named layer (conv1..conv6, fc6..fc8)."""

    layer: str
    std: float
    bias: float


@dataclass(frozen=True)
class InitScheme:
    """How weights and biases start. `default_std=None` keeps PyTorch's own default init."""

    name: str
    default_std: float | None = None
    default_bias: float = 0.0
    overrides: tuple[LayerInit, ...] = ()
    fan_in_gain: float | None = None  # std = gain / sqrt(fan_in) for layers without an override (He et al. 2015)
    output_std: float | None = None  # std of the output (last fc) layer, whatever its name; overrides the rest

    def for_layer(self, layer: str, fan_in: int | None = None) -> tuple[float, float] | None:
        """(std, bias) for a layer, or None when PyTorch's default init is kept."""
        for o in self.overrides:
            if o.layer == layer:
                return o.std, o.bias
        if self.fan_in_gain is not None:
            if fan_in is None:
                raise ValueError(f"init {self.name!r} scales by fan-in: give the fan-in of {layer}")
            return self.fan_in_gain / fan_in**0.5, self.default_bias
        if self.default_std is None:
            return None
        return self.default_std, self.default_bias


@dataclass(frozen=True)
class LrGroup:
    """One parameter group of a fixed schedule: its lr from each listed epoch on (1-based, `(first epoch, lr)`; the
    first entry is epoch 1), and whether the recipe's weight decay applies. `layers` names the layers it covers
    (conv1, fc8, ...); () covers every layer of its kind that no other group names."""

    name: str
    kind: ParamKind
    steps: tuple[tuple[int, float], ...]
    layers: tuple[str, ...] = ()
    weight_decay: bool = True

    def lr(self, epoch: int) -> float:
        """The lr in force during `epoch` (1-based)."""
        return [lr for first, lr in self.steps if first <= epoch][-1]


@dataclass(frozen=True)
class LrTable:
    """A fixed schedule as a code release ran it: a learning rate per parameter group and epoch, and the epoch from
    which the colour noise (PCA lighting) is off. The lrs are the code's own values; a run scales them all by its lr
    over `base_lr` (the weights' first lr), so `--set lr=` moves the whole table."""

    name: str
    source: str
    base_lr: float
    epochs: int  # how long the code trained; a run of other length stretches the table (`table_epoch`)
    groups: tuple[LrGroup, ...]
    lighting_off_from: int | None = None  # first epoch without PCA lighting (None: on to the end)

    def __post_init__(self) -> None:
        for g in self.groups:
            if not g.steps or g.steps[0][0] != 1 or list(g.steps) != sorted(g.steps):
                raise ValueError(f"lr table {self.name}: group {g.name!r} must start at epoch 1, epochs ascending")

    def table_epoch(self, epoch: int, run_epochs: int) -> int:
        """The table's epoch that a run of `run_epochs` epochs is at in its `epoch` (both 1-based): the identity when
        the run is as long as the table, else the same fraction of training."""
        return 1 + (epoch - 1) * self.epochs // run_epochs

    def lr(self, group: LrGroup, epoch: int, run_epochs: int) -> float:
        return group.lr(self.table_epoch(epoch, run_epochs))

    def lighting(self, epoch: int, run_epochs: int) -> bool:
        """Whether PCA lighting is on in the run's `epoch`."""
        off = self.lighting_off_from
        return off is None or self.table_epoch(epoch, run_epochs) < off

    def group_of(self, layer: str, kind: ParamKind) -> LrGroup:
        """The group that holds `layer`'s weight or bias: the one naming the layer, else its kind's default."""
        named = [g for g in self.groups if g.kind == kind and layer in g.layers]
        rest = [g for g in self.groups if g.kind == kind and not g.layers]
        if not (named or rest):
            raise ValueError(f"lr table {self.name} has no group for {layer} {kind}s")
        return (named or rest)[0]


# Recipe.input_scale. 1: torchvision's (x - mean) / std on x in [0, 1]. 255: pixel values 0-255 minus the training
# mean in pixel units, 255 * (x - mean), no division by a std: what the 2012 code (convdata.py:
# `datadic['data'] - self.data_mean`) and cuda-convnet2 feed, the scale their LRN constants and std-0.01 init were
# tuned at.
INPUT_SCALES = (1.0, 255.0)


@dataclass(frozen=True)
class Recipe:
    """A training recipe as its paper gives it. Field names are the names logged to MLflow."""

    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    epochs: int
    schedule: Schedule
    gamma: float = 0.1
    milestones: tuple[float, ...] = ()  # multistep: fractions of `epochs`
    step_size: int = 30  # step: epochs between drops
    plateau_patience: int = 5  # plateau: epochs without val_top1 gain before a drop
    # table: each parameter group's lr per epoch and its weight decay, and when the colour noise stops, from this
    # table (`bias_lr_mult` and `bias_weight_decay` are then unused); the other schedules ignore it
    lr_table: LrTable | None = None
    max_lr_drops: int = 3  # KSH12 s5: "reduced three times prior to termination"
    warmup_epochs: float = 0.0  # warmup_linear: lr rises linearly over these epochs, then falls linearly to 0
    lr_scale_batch: int | None = None  # OWT14 s5: lr scales linearly with batch / this
    bias_lr_mult: float = 1.0
    bias_weight_decay: bool = True
    init: InitScheme = InitScheme("pytorch")
    filter_rms_max: float | None = None  # ZF13 s3: conv filters with RMS above this are renormalised to it
    train_aug: TrainAug = "ksh12"
    pca_lighting: bool = True
    pca_alpha_std: float = 0.1
    resize: int = 256
    crop: int = 224
    test_protocol: Protocol = "ten_crop"
    # 1: (x/255 - mean) / std as torchvision; 255: pixel values minus the training mean, as the 2012/2014 code fed
    input_scale: float = 1.0
    # Channel width multiplier: every conv and hidden fc layer has `width` times the paper's units (`convnet.narrow`).
    # 1 is the paper's network; only a profile (the CPU proxy) or `--set width=` changes it, as a recorded deviation.
    width: float = 1.0
    # None: the network's own dropout (NetSpec.dropout_scale; torchvision's nn.Dropout); "test" or "train" swaps every
    # dropout module for that kind (`convnet.set_dropout_scaling`). A resolved run config always names one.
    dropout_scaling: DropoutScaling | None = None
    # None: the network's own adaptive pool before fc6 (6 x 6, the identity at 224 px); n: fc6 reads n x n positions
    # (`convnet.set_pool_to`). Only a profile changes it (the CPU proxy: pool5 is 1 x 1 at 64 px, and the native 6 x 6
    # pool would copy it into 36 positions), as a recorded deviation.
    pool_to: int | None = None

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class Reported:
    """One number a source reports. Accuracies in percent (100 - error).

    `source` names where the number was read: a paper's table or section ("KSH12 Table 2", "ZF13 Table 3") or a file
    of the original code with its line ("CHM layers/layer-params-150.cfg l.179"). The training-setup fields are for
    rows that vary the hardware or batch (OWT14 Table 1); None where the source does not say."""

    dataset: str  # "ILSVRC-2012", "ILSVRC-2010", "ImageNet Fall 2009", ...
    split: str  # "val" or "test"
    protocol: Protocol
    top1: float | None
    top5: float | None
    source: str  # the table or file it was read from, e.g. "KSH12 Table 2"
    ensemble: int = 1  # number of networks whose softmax is averaged
    pretrained: str | None = None  # e.g. "ImageNet Fall 2011"
    note: str = ""
    tolerance: float = 1.0  # |reproduced - reported| top-1 within this counts as reproduced
    reference_only: bool = False  # another network or recipe produced it: shown, never reproduced / not reproduced
    gpus: int | None = None  # GPUs the run was trained on
    batch_size: int | None = None  # images per SGD step in the conv layers (the whole batch across GPUs)
    fc_batch_size: int | None = None  # images per step in the fully connected layers, where they differ (OWT14)
    train_hours: float | None = None  # wall-clock training time the source gives


@dataclass(frozen=True)
class Claim:
    """A paper claim checkable as an accuracy difference between two runs (or two protocols of one run)."""

    name: str
    text: str
    variant: str  # the run that changes one thing
    baseline: str  # the run it is compared to (same variant for protocol claims)
    metric: Metric
    delta: float  # claimed accuracy change variant - baseline, percentage points (direction: -1 or +1, the sign)
    source: str  # where the claim and its numbers were read, as `Reported.source`
    protocol: Protocol | None = None  # protocol claims: compare ten_crop of `variant` with center of `baseline`
    kind: ClaimKind = "difference"  # equivalence: `delta` is the bound on |variant - baseline| (positive)
    ensemble: int = 1  # > 1: the variant side is the softmax average of this many runs of `variant` (KSH12 Table 2)
    # speedup claims: `delta` is the claimed factor (> 1: the variant needs 1/delta of the baseline's images), and
    # the threshold is a training top-1 error in percent (KSH12 Fig. 1: 25 %) on the papers' data;
    # `proxy_threshold` is the one used on proxy data (the harness's choice, with the reason at the claim)
    threshold: float | None = None
    proxy_threshold: float | None = None


@dataclass(frozen=True)
class Variant:
    name: str
    paper: str  # `Paper.key` of the module that defines it (see `variants.PAPERS`)
    summary: str
    builder: Callable[[int], nn.Module]
    recipe: Recipe
    input_size: int = 224  # native input size
    # classes of the data its reported numbers are for (ImageNet's 1,000; KSH12 Fig. 1's CIFAR-10: 10): the output
    # layer that `reported_params` and the report's fidelity table count
    num_classes: int = 1000
    min_input_size: int = MIN_INPUT_SIZE
    reported: tuple[Reported, ...] = ()
    reported_params: int | None = None
    reported_macs: float | None = None  # GMACs
    reported_size_mb: float | None = None  # MiB of float32 weights
    ablation_of: str | None = None
    deviations: tuple[str, ...] = field(default=())

    def build(
        self,
        num_classes: int = 1000,
        width: float = 1.0,
        dropout_scaling: DropoutScaling | None = None,
        pool_to: int | None = None,
    ) -> nn.Module:
        """The network for `num_classes`; `width` != 1 scales every conv and hidden fc layer (`convnet.narrow`);
        `dropout_scaling` (None: the network's own) sets how its dropout scales (`convnet.set_dropout_scaling`);
        `pool_to` (None: the network's own) sets the positions fc6 reads (`convnet.set_pool_to`)."""
        from variants.convnet import narrow, set_dropout_scaling, set_pool_to

        model = self.builder(num_classes)
        if pool_to is not None:
            model = set_pool_to(model, pool_to)
        model = narrow(model, width)
        return model if dropout_scaling is None else set_dropout_scaling(model, dropout_scaling)

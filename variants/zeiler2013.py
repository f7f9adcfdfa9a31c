"""ZFNet (ZF13 Fig. 3) and its widened variant from ZF13 Table 3."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from variants.convnet import ConvNet, ConvSpec, NetSpec
from variants.types import InitScheme, Recipe, Reported, Variant

# ZF13 Fig. 3: 7x7/2 conv1 (224 -> 110), pool 3/2 (-> 55), norm; 5x5/2 conv2 (-> 26), pool (-> 13), norm;
# conv3-5 dense at 384-384-256; pool (-> 6). padding=1 on conv1 and ceil pooling reproduce 110/55/26/13/6.
SPEC = NetSpec(
    convs=(
        ConvSpec("conv1", 96, 7, stride=2, pad=1, norm=True, pool=True, norm_after_pool=True),
        ConvSpec("conv2", 256, 5, stride=2, norm=True, pool=True, norm_after_pool=True),
        ConvSpec("conv3", 384, 3, pad=1),
        ConvSpec("conv4", 384, 3, pad=1),
        ConvSpec("conv5", 256, 3, pad=1, pool=True),
    ),
)
SPEC_WIDE = replace(
    SPEC,
    convs=SPEC.convs[:2]
    + (ConvSpec("conv3", 512, 3, pad=1), ConvSpec("conv4", 1024, 3, pad=1), ConvSpec("conv5", 512, 3, pad=1, pool=True)),
)

RECIPE = Recipe(
    lr=0.01,
    momentum=0.9,
    weight_decay=5e-4,  # deviation: ZF13 states none; KSH12's value
    batch_size=128,
    epochs=70,  # ZF13 s3: stopped after 70 epochs
    schedule="plateau",  # ZF13 s3: "annealed throughout training manually when the validation error plateaus"
    gamma=0.1,
    init=InitScheme("zf", default_std=0.01, default_bias=0.0),  # ZF13 s3: weights 10^-2, biases 0
    filter_rms_max=0.1,  # ZF13 s3: renormalise conv filters whose RMS exceeds 10^-1
    train_aug="zf",  # resize 256, centre 256, random 224 crops + flips
    pca_lighting=False,
    test_protocol="ten_crop",
)

DEVIATIONS = (
    "Contrast normalisation across maps uses AlexNet's LRN constants (size 5, alpha 1e-4, beta 0.75, k 2): ZF13 "
    "gives none.",
    "Weight decay 5e-4 (KSH12's): ZF13 gives no value.",
    "The manual annealing on plateau is ReduceLROnPlateau on val top-1 (factor 0.1, patience 5, at most 3 drops).",
    "conv1 padding 1 and ceil-mode pooling give Fig. 3's 110/55/26/13/6 maps; an adaptive average pool to 6x6 "
    "before fc6 is the identity at 224.",
)

VARIANTS = (
    Variant(
        name="zfnet",
        paper="ZF13",
        summary="ZF13 Fig. 3: 7x7/2 conv1, 5x5/2 conv2, 384-384-256 dense conv, fc 4096-4096",
        builder=partial(ConvNet, SPEC),
        recipe=RECIPE,
        reported_params=62_357_608,
        reported=(Reported("ILSVRC-2012", "val", "ten_crop", 61.6, 83.5, "ZF13 Table 2",
                           note="arXiv v1 gives 61.7 / 83.6"),),
        deviations=DEVIATIONS,
    ),
    Variant(
        name="zfnet_wide",
        paper="ZF13",
        summary="ZF13 Table 3: ZFNet with conv3-5 at 512-1024-512 maps",
        builder=partial(ConvNet, SPEC_WIDE),
        recipe=RECIPE,
        ablation_of="zfnet",
        reported=(Reported("ILSVRC-2012", "val", "ten_crop", 62.5, 84.0, "ZF13 Table 3"),),
        deviations=DEVIATIONS,
    ),
)

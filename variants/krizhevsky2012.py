"""AlexNet 2012, two towers (KSH12), its conv6 extension and the ablations the papers report.

Sources: KSH12 (the paper), CHM (the 2012 cuda-convnet code and lab notes), ZF13 Tables 2-3, CAFFE. See
shared/reference/paper-facts.md for every figure below.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from variants.convnet import ConvNet, ConvSpec, NetSpec, remove_convs, remove_fcs
from variants.types import Claim, InitScheme, LayerInit, Recipe, Reported, Variant

# KSH12 s3.5 / Fig. 2. conv1 sees the whole image in both towers (dense); conv2, conv4, conv5 are same-tower only.
SPEC = NetSpec(
    convs=(
        ConvSpec("conv1", 96, 11, stride=4, norm=True, pool=True, ceil_pad=True),
        ConvSpec("conv2", 256, 5, pad=2, groups=2, norm=True, pool=True),
        ConvSpec("conv3", 384, 3, pad=1),  # connected across towers
        ConvSpec("conv4", 384, 3, pad=1, groups=2),
        ConvSpec("conv5", 256, 3, pad=1, groups=2, pool=True),
    ),
)

# CHM layers-146-2012-2011.cfg: conv6 after pool5, 3x3 pad 1, two 128-map towers, no pooling after it.
SPEC_CONV6 = replace(SPEC, convs=SPEC.convs + (ConvSpec("conv6", 256, 3, pad=1, groups=2),))

# KSH12 s5: N(0, 0.01) weights; bias 1 in conv2, conv4, conv5 and the hidden fully connected layers, 0 elsewhere.
INIT = InitScheme(
    "ksh12",
    default_std=0.01,
    default_bias=0.0,
    overrides=tuple(LayerInit(n, 0.01, 1.0) for n in ("conv2", "conv4", "conv5", "conv6", "fc6", "fc7")),
)

RECIPE = Recipe(
    lr=0.01,
    momentum=0.9,
    weight_decay=5e-4,
    batch_size=128,
    epochs=90,  # KSH12 s5: "roughly 90 cycles"
    schedule="plateau",  # KSH12 s5: divide by 10 when val error stops improving, three times
    gamma=0.1,
    max_lr_drops=3,
    init=INIT,
    train_aug="ksh12",
    pca_lighting=True,  # KSH12 s4.1
    test_protocol="ten_crop",  # KSH12 s4.1: four corners + centre, and their flips
)

COMMON_DEVIATIONS = (
    "Input: the paper's 224x224 crop is zero-padded right/bottom to 227 before conv1, emulating cuda-convnet's "
    "output size 1 + ceil((224 - 11) / 4) = 55 (CHM layer.py); Caffe uses 227 crops, torchvision conv1 padding 2.",
    "LRN constants as the 2012 code computed them: (2 + 2e-5 * sum a^2)^0.75 over 5 maps (nn.LocalResponseNorm "
    "alpha=1e-4, k=2); KSH12 s3.3's formula read literally would be 5x stronger.",
    "The two towers run on one device as groups=2 convolutions (conv2, conv4, conv5); the paper split them over "
    "two GTX 580s.",
    "Max pooling uses cuda-convnet's ceil output size and an adaptive average pool to 6x6 precedes fc6: both are "
    "the identity at 224 (maps 55/27/13/6) and let inputs down to 63 px through.",
    "Follows the paper text where the 2012 code differs (CHM layers-145.cfg): LRN after ReLU on conv1 (code: "
    "before), no extra spatial normalisation after conv2, init std 0.01 everywhere (code: 0.03 for conv3-5), "
    "biases with the weights' lr and decay (code: 2x lr, no decay).",
    "The authors' manual 'divide lr by 10 when validation error stops improving, three times' is "
    "ReduceLROnPlateau on val top-1 (factor 0.1, patience 5 epochs, at most 3 drops).",
    "PyTorch SGD applies the lr outside the momentum buffer (KSH12 s5: inside); identical at constant lr.",
)

ILSVRC12 = "ILSVRC-2012"
ZF_BASE_NOTE = "ZF13 ablated their own one-GPU replication of KSH12 (dense conv layers), trained from scratch"


def _build(spec: NetSpec, num_classes: int) -> ConvNet:
    return ConvNet(spec, num_classes)


def _variant(name: str, summary: str, spec: NetSpec, **kw: object) -> Variant:
    deviations = COMMON_DEVIATIONS + tuple(kw.pop("extra_deviations", ()))  # type: ignore[arg-type]
    kw.setdefault("recipe", RECIPE)
    return Variant(
        name=name, paper="KSH12", summary=summary, builder=partial(_build, spec), deviations=deviations, **kw
    )  # type: ignore[arg-type]


def _ablation(name: str, summary: str, spec: NetSpec, wiring: str | None = None, **kw: object) -> Variant:
    extra = (f"Ablation wiring: {wiring}",) if wiring else ()
    return _variant(name, summary, spec, ablation_of="alexnet2012", extra_deviations=extra, **kw)


CONV_WIRING = (
    "each remaining conv layer keeps its width and groups and takes the previous remaining layer's output; a "
    "removed last conv layer's width passes to the new last one so fc6 keeps 9216 inputs."
)

VARIANTS = (
    _variant(
        "alexnet2012",
        "KSH12 two-tower AlexNet: 96-256-384-384-256 conv, groups=2 on conv2/4/5, LRN, overlapping pooling",
        SPEC,
        reported_params=60_965_224,  # CAFFE bvlc_alexnet; CHM layers-145.cfg counted by hand
        reported=(
            Reported("ILSVRC-2010", "test", "ten_crop", 62.5, 83.0, "KSH12 Table 1"),
            Reported(ILSVRC12, "val", "ten_crop", 59.3, 81.8, "KSH12 Table 2"),
            Reported(
                ILSVRC12, "test", "ten_crop", None, 81.8, "seed table",
                note="KSH12 Table 2 prints '-' for the 1-CNN test top-5; the seed table gives 81.8",
            ),
            Reported(ILSVRC12, "val", "ten_crop", 61.9, 83.6, "KSH12 Table 2", ensemble=5),
            Reported(
                ILSVRC12, "test", "ten_crop", None, 83.6, "KSH12 Table 2", ensemble=5,
                note="the seed table gives 83.7",
            ),
            Reported(ILSVRC12, "val", "ten_crop", 59.5, 81.9, "ZF13 Table 2", note=ZF_BASE_NOTE),
            Reported(
                ILSVRC12, "val", "center", 57.1, 80.2, "CAFFE bvlc_alexnet",
                note="Caffe's recipe: 227 crops, bias init 0.1, lr steps every 100k iterations",
            ),
            Reported(
                ILSVRC12, "val", "center", 57.4, 80.4, "CAFFE bvlc_reference_caffenet",
                note="CaffeNet swaps pooling and normalisation order",
            ),
        ),
    ),
    _variant(
        "alexnet2012_conv6",
        "KSH12 s6: AlexNet with a sixth conv layer after the last pooling layer",
        SPEC_CONV6,
        extra_deviations=(
            "conv6 is two 128-map towers (groups=2) as in CHM layers-146-2012-2011.cfg; a dense conv6 would have "
            "61,555,304 parameters.",
        ),
        reported=(
            Reported(
                "ImageNet Fall 2009", "test", "ten_crop", 32.6, 59.1, "KSH12 s6",
                note="10,184 classes, 8.9M images, half for training and half for test",
            ),
            Reported(ILSVRC12, "val", "ten_crop", 61.0, 83.4, "KSH12 Table 2", pretrained="ImageNet Fall 2011"),
            Reported(
                ILSVRC12, "val", "ten_crop", 63.3, 84.6, "KSH12 Table 2", ensemble=7,
                pretrained="ImageNet Fall 2011",
                note="2 conv6 nets pretrained on Fall 2011 averaged with the 5 plain alexnet2012 nets",
            ),
            Reported(
                ILSVRC12, "test", "ten_crop", None, 84.7, "KSH12 Table 2", ensemble=7,
                pretrained="ImageNet Fall 2011",
            ),
        ),
    ),
    _ablation(
        "alexnet2012_no_conv3", "KSH12 s7: conv3 removed", remove_convs(SPEC, ("conv3",)), CONV_WIRING
    ),
    _ablation(
        "alexnet2012_no_conv4", "KSH12 s7: conv4 removed", remove_convs(SPEC, ("conv4",)), CONV_WIRING
    ),
    _ablation(
        "alexnet2012_no_conv5", "KSH12 s7: conv5 removed (conv4 outputs 256 maps)", remove_convs(SPEC, ("conv5",)),
        CONV_WIRING,
    ),
    _ablation(
        "alexnet2012_no_conv3_conv4",
        "ZF13 Table 3: layers 3 and 4 removed",
        remove_convs(SPEC, ("conv3", "conv4")),
        CONV_WIRING,
        reported=(Reported(ILSVRC12, "val", "ten_crop", 54.6, 77.9, "ZF13 Table 3", note=ZF_BASE_NOTE),),
    ),
    _ablation(
        "alexnet2012_no_fc7",
        "ZF13 Table 3: fully connected layer 7 removed (fc6 -> fc8)",
        remove_fcs(SPEC, 1),
        reported=(Reported(ILSVRC12, "val", "ten_crop", 60.0, 81.6, "ZF13 Table 3", note=ZF_BASE_NOTE),),
    ),
    _ablation(
        "alexnet2012_no_fc6_fc7",
        "ZF13 Table 3: fully connected layers 6 and 7 removed (pool5 -> fc8)",
        remove_fcs(SPEC, 2),
        reported=(Reported(ILSVRC12, "val", "ten_crop", 55.2, 77.6, "ZF13 Table 3", note=ZF_BASE_NOTE),),
    ),
    _ablation(
        "alexnet2012_no_conv3_conv4_fc6_fc7",
        "ZF13 Table 3: layers 3, 4, 6 and 7 removed",
        remove_fcs(remove_convs(SPEC, ("conv3", "conv4")), 2),
        CONV_WIRING,
        reported=(Reported(ILSVRC12, "val", "ten_crop", 28.7, 49.9, "ZF13 Table 3", note=ZF_BASE_NOTE),),
    ),
    _ablation(
        "alexnet2012_fc2048",
        "ZF13 Table 3: fully connected layers 6 and 7 at 2048 units",
        replace(SPEC, fc=(2048, 2048)),
        reported=(Reported(ILSVRC12, "val", "ten_crop", 58.3, 81.2, "ZF13 Table 3", note=ZF_BASE_NOTE),),
    ),
    _ablation(
        "alexnet2012_no_lrn",
        "KSH12 s3.3: no response normalisation layers",
        replace(SPEC, convs=tuple(replace(c, norm=False) for c in SPEC.convs)),
        reported=(
            Reported(ILSVRC12, "val", "ten_crop", 57.97, 80.64, "CHM lab notes", note="42.03 / 19.36 % error"),
        ),
    ),
    _ablation(
        "alexnet2012_nonoverlap_pool",
        "KSH12 s3.4: non-overlapping pooling s=2, z=2 (same map sizes)",
        replace(SPEC, pool_kernel=2, pool_stride=2, pool_ceil=False),
        reported=(
            Reported(ILSVRC12, "val", "ten_crop", 58.94, 81.49, "CHM lab notes", note="41.06 / 18.51 % error"),
        ),
    ),
    _ablation(
        "alexnet2012_one_tower_half",
        "KSH12 s3.2: one tower with half the kernels in conv1-4 (48-128-192-192-256), fc 4096",
        NetSpec(
            convs=(
                ConvSpec("conv1", 48, 11, stride=4, norm=True, pool=True, ceil_pad=True),
                ConvSpec("conv2", 128, 5, pad=2, norm=True, pool=True),
                ConvSpec("conv3", 192, 3, pad=1),
                ConvSpec("conv4", 192, 3, pad=1),
                ConvSpec("conv5", 256, 3, pad=1, pool=True),  # KSH12 s3.2 fn: the last conv layer is not halved
            ),
        ),
        reported=(
            Reported("ILSVRC-2010", "test", "ten_crop", 60.83, 81.77, "CHM lab notes", note="39.17 / 18.23 % error"),
        ),
    ),
    _ablation(
        "alexnet2012_no_pca",
        "KSH12 s4.1: trained without PCA lighting",
        SPEC,
        recipe=replace(RECIPE, pca_lighting=False),
    ),
)

CLAIMS = (
    Claim("lrn", "LRN lowers top-1 error by 1.4 %", "alexnet2012_no_lrn", "alexnet2012", "top1", -1.4,
          "KSH12 s3.3"),
    Claim("lrn_top5", "LRN lowers top-5 error by 1.2 %", "alexnet2012_no_lrn", "alexnet2012", "top5", -1.2,
          "KSH12 s3.3"),
    Claim("overlap_pool", "Overlapping pooling lowers top-1 error by 0.4 %", "alexnet2012_nonoverlap_pool",
          "alexnet2012", "top1", -0.4, "KSH12 s3.4"),
    Claim("two_towers", "Two towers beat a half-width one-tower net by 1.7 % top-1", "alexnet2012_one_tower_half",
          "alexnet2012", "top1", -1.7, "KSH12 s3.5"),
    Claim("pca_lighting", "PCA lighting lowers top-1 error by over 1 %", "alexnet2012_no_pca", "alexnet2012",
          "top1", -1.0, "KSH12 s4.1"),
    *(
        Claim(f"no_{c}", f"Removing {c} costs about 2 % top-1", f"alexnet2012_no_{c}", "alexnet2012", "top1", -2.0,
              "KSH12 s7")
        for c in ("conv3", "conv4", "conv5")
    ),
    Claim("ten_crop", "10-crop testing gains about 1.5-2.1 top-1 over a centre crop", "alexnet2012", "alexnet2012",
          "top1", 1.5, "CHM, CC2 wiki", protocol="ten_crop"),
    Claim("zf_no_conv3_conv4", "Removing layers 3,4 costs 4.9 top-1", "alexnet2012_no_conv3_conv4", "alexnet2012",
          "top1", -4.9, "ZF13 Table 3"),
    Claim("zf_no_fc7", "Removing layer 7 gains 0.5 top-1", "alexnet2012_no_fc7", "alexnet2012", "top1", 0.5,
          "ZF13 Table 3"),
    Claim("zf_no_fc6_fc7", "Removing layers 6,7 costs 4.3 top-1", "alexnet2012_no_fc6_fc7", "alexnet2012", "top1",
          -4.3, "ZF13 Table 3"),
    Claim("zf_no_conv3_conv4_fc6_fc7", "Removing layers 3,4,6,7 costs 30.8 top-1",
          "alexnet2012_no_conv3_conv4_fc6_fc7", "alexnet2012", "top1", -30.8, "ZF13 Table 3"),
)

"""ZFNet (ZF13 Fig. 3), its widened variant, and ZF13's own one-GPU replication of KSH12 with the ablations of
ZF13 Table 3.

Source: the paper, Zeiler & Fergus, arXiv:1311.2901 (v3; ECCV 2014): s3 training details, s5.1 Tables 2 and 3
(ILSVRC-2012 error rates; accuracies here are 100 - error). Table 2's "Our replication of (Krizhevsky et al., 2012)"
is the net Table 3 ablates ("we first explore the architecture of (Krizhevsky et al., 2012) by adjusting the size of
layers, or removing them entirely. In each case, the model is trained from scratch").
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from variants.spec import ConvSpec, NetSpec, convnet, remove_convs, remove_fcs
from variants.types import Claim, InitScheme, Paper, Recipe, Reported, Variant

PAPER = Paper(
    "ZF13", "Zeiler, Fergus. Visualizing and Understanding Convolutional Networks. arXiv:1311.2901 / ECCV 2014"
)

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
SPEC_WIDE = replace(  # ZF13 Table 3: "Adjust layers 3,4,5: 512,1024,512 maps"
    SPEC,
    convs=SPEC.convs[:2]
    + (
        ConvSpec("conv3", 512, 3, pad=1),
        ConvSpec("conv4", 1024, 3, pad=1),
        ConvSpec("conv5", 512, 3, pad=1, pool=True),
    ),
)

# ZF13's replication of KSH12 on one GPU: KSH12's layers (s3.5 / Fig. 2, LRN after ReLU then pooling), every conv
# layer dense. ZF13 s3 says of its own net that "the sparse connections used in Krizhevsky's layers 3,4,5 (due to the
# model being split across 2 GPUs) are replaced with dense connections"; the replication is taken to be dense too.
SPEC_REPLICATION = NetSpec(
    convs=(
        ConvSpec("conv1", 96, 11, stride=4, norm=True, pool=True, ceil_pad=True),
        ConvSpec("conv2", 256, 5, pad=2, norm=True, pool=True),
        ConvSpec("conv3", 384, 3, pad=1),
        ConvSpec("conv4", 384, 3, pad=1),
        ConvSpec("conv5", 256, 3, pad=1, pool=True),
    ),
)

# ZF13 s3, for the nets of this paper: SGD, batch 128, lr 1e-2, momentum 0.9, lr annealed by hand on plateau,
# dropout 0.5 on fc6/fc7, weights initialised at 1e-2 and biases at 0, conv filters renormalised to RMS 0.1, 70 epochs,
# inputs: resize to 256, centre 256x256, per-pixel mean subtracted, 224 crops and flips; 10 crops at test.
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
    input_scale=255.0,  # ZF13 s3: "subtracting the per-pixel mean (across all images)", no division by a std
)

COMMON_DEVIATIONS = (
    "Input scale 255 (pixel values minus the mean, as the code fed them). The mean is the per-pixel mean image "
    "of the training squares (ZF13 s3) centred under every crop (CHM convdata.py l.137): a run from a prepared "
    "store that holds it (`harness prepare`) subtracts it; any other run subtracts ImageNet's per-channel mean "
    "(x255) and records so, with the reason, among its own deviations.",
    "Weight decay 5e-4 (KSH12's): ZF13 gives no value.",
    "Dropout as KSH12's code computed it (kept units unscaled in training, outputs x 0.5 at test; KSH12 s4.2): "
    "ZF13 s3 gives only the rate 0.5 and released no code, so its scaling is not verified.",
    "The manual annealing on plateau is ReduceLROnPlateau on val top-1 (factor 0.1, patience 5, at most 3 drops).",
)
DEVIATIONS = (
    "Contrast normalisation across maps uses AlexNet's LRN constants (size 5, alpha 1e-4, beta 0.75, k 2): ZF13 "
    "gives none.",
    *COMMON_DEVIATIONS,
    "conv1 padding 1 and ceil-mode pooling give Fig. 3's 110/55/26/13/6 maps; an adaptive average pool to 6x6 "
    "before fc6 is the identity at 224.",
)
REPLICATION_DEVIATIONS = (
    "ZF13 s5.1 calls the replication 'the exact architecture specified in (Krizhevsky et al., 2012)' and gives no "
    "layer table; it is built here as KSH12's layers with every conv layer dense (one GPU, as ZF13 s3 describes for "
    "its own net). With KSH12's two towers it would be alexnet2012's network (60,965,224 parameters).",
    "Recipe: ZF13 s3's, which the paper gives for its own nets (batch 128, lr 1e-2, weights at 1e-2 and biases at "
    "0, filter RMS renormalisation, 70 epochs, no PCA lighting), taken to be the replication's too: the paper "
    "trained all of Table 3 from scratch with one implementation.",
    "LRN with the 2012 code's constants (size 5, alpha 1e-4, beta 0.75, k 2), after the ReLU of conv1 and conv2 as "
    "KSH12 s3.3 places it.",
    "The 224 crop is zero-padded right/bottom to 227 before conv1 (cuda-convnet's ceil output size, 55x55 maps); "
    "ceil-mode max pooling and an adaptive average pool to 6x6 are the identity at 224.",
    *COMMON_DEVIATIONS,
)
T2, T3 = "ZF13 Table 2", "ZF13 Table 3"
ILSVRC12 = "ILSVRC-2012"


def _variant(name: str, summary: str, spec: NetSpec, deviations: tuple[str, ...], **kw: object) -> Variant:
    return Variant(
        name=name,
        paper=PAPER.key,
        summary=summary,
        builder=partial(convnet, spec),
        recipe=RECIPE,
        deviations=deviations,
        **kw,
    )  # type: ignore[arg-type]


def _replication_ablation(
    name: str, summary: str, spec: NetSpec, params: int, top1: float, top5: float, wiring: str | None = None
) -> Variant:
    extra = (f"Ablation wiring: {wiring}",) if wiring else ()
    return _variant(
        f"zf13_alexnet_replication_{name}",
        summary,
        spec,
        REPLICATION_DEVIATIONS + extra,
        ablation_of="zf13_alexnet_replication",
        reported_params=params,
        reported=(Reported(ILSVRC12, "val", "ten_crop", top1, top5, T3),),
    )


CONV_WIRING = (
    "the removed conv layers go with their ReLU and LRN; their pooling stays where it was; conv5 reads conv2's "
    "pooled 256 maps. ZF13 does not say how the layers were rewired."
)
NO_CONV34 = remove_convs(SPEC_REPLICATION, ("conv3", "conv4"))

VARIANTS = (
    _variant(
        "zfnet",
        "ZF13 Fig. 3: 7x7/2 conv1, 5x5/2 conv2, 384-384-256 dense conv, fc 4096-4096",
        SPEC,
        DEVIATIONS,
        reported_params=62_357_608,
        reported=(
            Reported(
                ILSVRC12,
                "val",
                "ten_crop",
                61.6,
                83.5,
                T2,
                note="'1 convnet as per Fig. 3': 38.4 / 16.5 % error (arXiv v1: 38.3 / 16.4)",
            ),
            Reported(
                ILSVRC12,
                "val",
                "ten_crop",
                63.3,
                84.7,
                T2,
                ensemble=5,
                note="'5 convnets as per Fig. 3 - (a)': 36.7 / 15.3 % error",
            ),
            Reported(ILSVRC12, "test", "ten_crop", None, 84.7, T2, ensemble=5, note="15.3 % test top-5 error"),
            Reported(
                ILSVRC12,
                "val",
                "ten_crop",
                64.0,
                85.3,
                T2,
                ensemble=6,
                reference_only=True,
                note="'6 convnets, (a) & (b) combined': the 5 zfnet nets and 1 zfnet_wide, 36.0 / 14.7 % error "
                "(a mixed ensemble, so no ensemble of one variant reproduces it)",
            ),
            Reported(
                ILSVRC12,
                "test",
                "ten_crop",
                None,
                85.2,
                T2,
                ensemble=6,
                reference_only=True,
                note="the same mixed ensemble of 6: 14.8 % test top-5 error",
            ),
        ),
    ),
    _variant(
        "zfnet_wide",
        "ZF13 Tables 2-3: ZFNet with conv3-5 at 512-1024-512 maps",
        SPEC_WIDE,
        DEVIATIONS,
        ablation_of="zfnet",
        reported_params=107_627_624,
        reported=(
            Reported(
                ILSVRC12,
                "val",
                "ten_crop",
                62.5,
                84.0,
                T3,
                note="'Adjust layers 3,4,5: 512,1024,512 maps': 37.5 / 16.0 % error (Table 2's (b): the same)",
            ),
            Reported(ILSVRC12, "test", "ten_crop", None, 83.9, T2, note="(b): 16.1 % test top-5 error"),
        ),
    ),
    _variant(
        "zf13_alexnet_replication",
        "ZF13 s5.1: ZF's one-GPU replication of KSH12 (96-256-384-384-256, all conv dense), ZF13's recipe",
        SPEC_REPLICATION,
        REPLICATION_DEVIATIONS,
        reported_params=62_378_344,
        reported=(
            Reported(
                ILSVRC12,
                "val",
                "ten_crop",
                59.5,
                81.9,
                T2,
                note="'Our replication of (Krizhevsky et al., 2012), 1 convnet': 40.5 / 18.1 % error (Table 3: "
                "the same, train top-1 error 35.1)",
            ),
        ),
    ),
    _replication_ablation(
        "no_conv3_conv4",
        "ZF13 Table 3: replication with layers 3 and 4 removed",
        NO_CONV34,
        59_870_824,
        54.6,
        77.9,
        CONV_WIRING,
    ),
    _replication_ablation(
        "no_fc7",
        "ZF13 Table 3: replication with layer 7 removed (fc6 -> fc8)",
        remove_fcs(SPEC_REPLICATION, 1),
        45_597_032,
        60.0,
        81.6,
    ),
    _replication_ablation(
        "no_fc6_fc7",
        "ZF13 Table 3: replication with layers 6 and 7 removed (pool5 -> fc8)",
        remove_fcs(SPEC_REPLICATION, 2),
        12_964_200,
        55.2,
        77.6,
    ),
    _replication_ablation(
        "no_conv3_conv4_fc6_fc7",
        "ZF13 Table 3: replication with layers 3, 4, 6 and 7 removed",
        remove_fcs(NO_CONV34, 2),
        10_456_680,
        28.7,
        49.9,
        CONV_WIRING,
    ),
    _replication_ablation(
        "fc2048",
        "ZF13 Table 3: replication with layers 6 and 7 at 2048 units",
        replace(SPEC_REPLICATION, fc=(2048, 2048)),
        28_868_968,
        58.3,
        81.2,
    ),
)

# Deltas are differences of the Table 2 / Table 3 values, in accuracy points (variant - baseline).
REP = "zf13_alexnet_replication"
CLAIMS = (
    Claim(
        "zfnet_over_replication",
        "ZFNet beats the replicated KSH12 net by 2.1 top-1 (38.4 vs 40.5 % error)",
        "zfnet",
        REP,
        "top1",
        2.1,
        T2,
    ),
    Claim(
        "zfnet_over_replication_top5",
        "ZFNet beats the replicated KSH12 net by 1.6 top-5 (16.5 vs 18.1 % error)",
        "zfnet",
        REP,
        "top5",
        1.6,
        T2,
    ),
    Claim(
        "zfnet_wide",
        "Widening conv3-5 to 512-1024-512 gains 0.9 top-1 (37.5 vs 38.4 % error)",
        "zfnet_wide",
        "zfnet",
        "top1",
        0.9,
        T3,
    ),
    Claim(
        "zfnet_wide_top5",
        "Widening conv3-5 to 512-1024-512 gains 0.5 top-5 (16.0 vs 16.5 % error)",
        "zfnet_wide",
        "zfnet",
        "top5",
        0.5,
        T3,
    ),
    Claim(
        "zf_fc2048",
        "fc6/fc7 at 2048 units instead of 4096 cost 1.2 top-1 (41.7 vs 40.5 % error; the text: "
        "'makes little difference')",
        f"{REP}_fc2048",
        REP,
        "top1",
        -1.2,
        T3,
    ),
    Claim(
        "zf_fc2048_top5",
        "fc6/fc7 at 2048 units instead of 4096 cost 0.7 top-5 (18.8 vs 18.1 % error)",
        f"{REP}_fc2048",
        REP,
        "top5",
        -0.7,
        T3,
    ),
    Claim(
        "zf_no_conv3_conv4",
        "Removing layers 3,4 costs 4.9 top-1 (45.4 vs 40.5 % error)",
        f"{REP}_no_conv3_conv4",
        REP,
        "top1",
        -4.9,
        T3,
    ),
    Claim(
        "zf_no_conv3_conv4_top5",
        "Removing layers 3,4 costs 4.0 top-5 (22.1 vs 18.1 % error)",
        f"{REP}_no_conv3_conv4",
        REP,
        "top5",
        -4.0,
        T3,
    ),
    Claim(
        "zf_no_fc7",
        "Removing layer 7 changes top-1 little: within 1 point (Table 3: +0.5, 40.0 vs 40.5 % error)",
        f"{REP}_no_fc7",
        REP,
        "top1",
        1.0,
        T3,
        kind="equivalence",
    ),
    Claim(
        "zf_no_fc7_top5",
        "Removing layer 7 changes top-5 little: within 1 point (Table 3: -0.3, 18.4 vs 18.1 %)",
        f"{REP}_no_fc7",
        REP,
        "top5",
        1.0,
        T3,
        kind="equivalence",
    ),
    Claim(
        "zf_no_fc6_fc7",
        "Removing layers 6,7 costs 4.3 top-1 (44.8 vs 40.5 % error)",
        f"{REP}_no_fc6_fc7",
        REP,
        "top1",
        -4.3,
        T3,
    ),
    Claim(
        "zf_no_fc6_fc7_top5",
        "Removing layers 6,7 costs 4.3 top-5 (22.4 vs 18.1 % error)",
        f"{REP}_no_fc6_fc7",
        REP,
        "top5",
        -4.3,
        T3,
    ),
    Claim(
        "zf_no_conv3_conv4_fc6_fc7",
        "Removing layers 3,4,6,7 costs 30.8 top-1 (71.3 vs 40.5 % error)",
        f"{REP}_no_conv3_conv4_fc6_fc7",
        REP,
        "top1",
        -30.8,
        T3,
    ),
    Claim(
        "zf_no_conv3_conv4_fc6_fc7_top5",
        "Removing layers 3,4,6,7 costs 32.0 top-5 (50.1 vs 18.1 % error)",
        f"{REP}_no_conv3_conv4_fc6_fc7",
        REP,
        "top5",
        -32.0,
        T3,
    ),
)

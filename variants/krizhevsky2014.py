"""AlexNet 2014, one tower ("one weird trick", OWT14), as in cuda-convnet2's code (CC2 layers-imagenet-1gpu.cfg)."""

from __future__ import annotations

from functools import partial

from variants.convnet import ConvNet, ConvSpec, NetSpec
from variants.types import InitScheme, LayerInit, Recipe, Reported, Variant

# CC2 code: 64-192-384-256-256 (the OWT14 footnote says 64-192-384-384-256; torchvision follows the code).
SPEC = NetSpec(
    convs=(
        ConvSpec("conv1", 64, 11, stride=4, norm=True, pool=True, ceil_pad=True),
        ConvSpec("conv2", 192, 5, pad=2, norm=True, pool=True),
        ConvSpec("conv3", 384, 3, pad=1),
        ConvSpec("conv4", 256, 3, pad=1),
        ConvSpec("conv5", 256, 3, pad=1, pool=True),
    ),
)

# CC2 init: std 0.01 conv1/2 and FC, 0.03 conv3-5; bias 1 on conv2, conv4, conv5 and the hidden FC, fc8 bias -7.
INIT = InitScheme(
    "cc2",
    default_std=0.01,
    default_bias=0.0,
    overrides=(
        LayerInit("conv2", 0.01, 1.0),
        LayerInit("conv3", 0.03, 0.0),
        LayerInit("conv4", 0.03, 1.0),
        LayerInit("conv5", 0.03, 1.0),
        LayerInit("fc6", 0.01, 1.0),
        LayerInit("fc7", 0.01, 1.0),
        LayerInit("fc8", 0.01, -7.0),
    ),
)

RECIPE = Recipe(
    lr=0.01,
    momentum=0.9,
    weight_decay=5e-4,
    batch_size=128,
    epochs=90,
    schedule="multistep",
    milestones=(0.25, 0.5, 0.75),  # OWT14 s5; Python round() gives epochs 22, 45, 68 of 90
    gamma=250 ** (-1 / 3),  # lr falls 250-fold over three drops
    lr_scale_batch=128,  # OWT14 s5: lr 0.01 at batch 128, scaled linearly for 256 / 512 / 1024
    bias_lr_mult=2.0,  # CC2 configs: epsB = 2 x epsW, no decay on biases
    bias_weight_decay=False,
    init=INIT,
    train_aug="cc2",
    pca_lighting=True,  # CC2: colour noise 0.1
    test_protocol="center",
)

VARIANT = Variant(
    name="alexnet2014",
    paper="OWT14",
    summary="OWT14 one-tower net as in cuda-convnet2: 64-192-384-256-256 conv with LRN, fc 4096-4096",
    builder=partial(ConvNet, SPEC),
    recipe=RECIPE,
    reported_params=61_100_840,  # same layer sizes as torchvision's alexnet; LRN has no parameters
    reported=(
        Reported("ILSVRC-2012", "val", "center", 57.73, None, "seed table (OWT14)",
                 note="the seed table names no test protocol; centre crop assumed"),
        Reported("ILSVRC-2012", "val", "center", 57.45, 80.19, "CC2 wiki", note="42.548 / 19.810 % error"),
        Reported("ILSVRC-2012", "val", "ten_crop", 59.58, 81.85, "CC2 wiki", note="40.420 / 18.150 % error"),
    ),
    deviations=(
        "Channels follow the CC2 code (conv4 256 maps), not the OWT14 footnote (384): 61,100,840 parameters "
        "instead of 61,838,248.",
        "Input: the 224 crop is zero-padded right/bottom to 227 before conv1 (cuda-convnet's ceil output size), "
        "giving 55x55 maps as the code did.",
        "LRN constants as in the 2012 code (nn.LocalResponseNorm alpha=1e-4, k=2, beta 0.75, size 5).",
        "Max pooling uses cuda-convnet's ceil output size and an adaptive average pool to 6x6 precedes fc6: the "
        "identity at 224.",
        "MultiStepLR milestones are round(0.25 / 0.5 / 0.75 x epochs).",
        "PyTorch SGD applies the lr outside the momentum buffer (cuda-convnet: inside); identical at constant lr.",
    ),
)

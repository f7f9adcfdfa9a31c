"""AlexNet 2014, one tower ("one weird trick", OWT14), as cuda-convnet2's code has it.

Sources: the paper (OWT14, arXiv:1404.5997) and its code, github.com/akrizhevsky/cuda-convnet2 (CC2 below): the net
`layers/layers-imagenet-1gpu.cfg`, its learning rates `layers/layer-params-imagenet-1gpu.cfg`, the schedule code
`cudaconvnet/src/lr.cu`, and the reference run on the repository's wiki branch, `TrainingExample.md`.
"""

from __future__ import annotations

from functools import partial

from variants.spec import ConvSpec, NetSpec, convnet
from variants.types import Claim, InitScheme, LayerInit, LrGroup, LrTable, Paper, Recipe, Reported, Variant

PAPER = Paper("OWT14", "Krizhevsky. One weird trick for parallelizing CNNs. arXiv:1404.5997, 2014")

# CC2 code: 64-192-384-256-256 (the OWT14 footnote says 64-192-384-384-256; torchvision follows the code).
# layers-imagenet-1gpu.cfg: conv1 has no neuron and rnorm1 reads it, the ReLU is on pool1 (so LRN before ReLU);
# conv2 has neuron=relu before rnorm2; conv5 has no neuron and pool3 carries the ReLU (the same as ReLU then pool).
# Dropout is the code's Dropout2Layer (NetSpec's default dropout_scale "test"): layers-imagenet-1gpu.cfg l.122-137
# `type=dropout2`, keep 0.5 by default (layer.py l.802), cudaconvnet/src/layer.cu l.1374-1383: kept units unscaled in
# training, outputs x 0.5 at test.
SPEC = NetSpec(
    convs=(
        ConvSpec("conv1", 64, 11, stride=4, norm=True, pool=True, ceil_pad=True, norm_before_relu=True),
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

# CC2 layers/layer-params-imagenet-1gpu.cfg, every layer: epsW=dexp[base=0.01;tgtFactor=250;numSteps=4] and
# epsB=dexp[base=0.02;tgtFactor=10;numSteps=2] (l.6-7). cudaconvnet/src/lr.cu DiscreteExpParameterSchedule (l.94-113):
# numSteps rates base x (1/tgtFactor)^(i / (numSteps - 1)), rate i while progress <= (i + 1) / numSteps; progress is
# the fraction of data batches done (python_util/gpumodel.py get_progress, l.293-295), of 90 epochs x 418 batches
# (wiki TrainingExample.md l.10, 20: --epochs 90, --train-range 0-417). The weights' rate therefore changes in the
# middle of epochs 23 and 68 and at the start of 46, the biases' at the start of 46; the table switches at the start
# of each. Biases have no weight decay (cudaconvnet/src/layer.cu l.743: the biases' Weights get wc 0).
CC2_SCHEDULE = LrTable(
    "cc2_imagenet_1gpu",
    "CC2 layers/layer-params-imagenet-1gpu.cfg l.6-7, cudaconvnet/src/lr.cu l.94-113",
    base_lr=0.01,
    epochs=90,
    groups=(
        LrGroup("weights", "weight", tuple((e, 0.01 * 250 ** (-i / 3)) for i, e in enumerate((1, 23, 46, 68)))),
        LrGroup("biases", "bias", ((1, 0.02), (46, 0.002)), weight_decay=False),
    ),
)

RECIPE = Recipe(
    lr=0.01,
    momentum=0.9,
    weight_decay=5e-4,
    batch_size=128,
    epochs=90,  # CC2 wiki TrainingExample.md l.10: --epochs 90
    schedule="table",
    lr_table=CC2_SCHEDULE,
    # `--set schedule=multistep`: the weights' rates as MultiStepLR (round(0.25 / 0.5 / 0.75 x epochs) = 22, 45, 68),
    # the biases at 2x the weights' lr, without decay
    milestones=(0.25, 0.5, 0.75),
    gamma=250 ** (-1 / 3),
    lr_scale_batch=128,  # OWT14 s5: lr 0.01 at batch 128, scaled linearly for 256 / 512 / 1024
    bias_lr_mult=2.0,  # CC2 epsB base 0.02 = 2 x epsW base
    bias_weight_decay=False,  # CC2: wc (weight decay) is given for weights only
    init=INIT,
    train_aug="cc2",
    pca_lighting=True,  # CC2: colour noise 0.1
    input_scale=255.0,  # cuda-convnet2 feeds 0-255 pixels minus the data mean, as the 2012 code did
    test_protocol="center",
)

VARIANT = Variant(
    name="alexnet2014",
    paper=PAPER.key,
    summary="OWT14 one-tower net as in cuda-convnet2: 64-192-384-256-256 conv with LRN, fc 4096-4096",
    builder=partial(convnet, SPEC),
    recipe=RECIPE,
    reported_params=61_100_840,  # same layer sizes as torchvision's alexnet; LRN has no parameters
    reported=(
        Reported(
            "ILSVRC-2012",
            "val",
            "center",
            57.73,
            None,
            "seed table (project brief), attributed to OWT14",
            note="not yet verified against OWT14 Table 1: which GPU count and batch sizes, and the test "
            "protocol (centre crop assumed), are unknown",
        ),
        Reported(
            "ILSVRC-2012",
            "val",
            "center",
            57.45,
            80.19,
            "CC2 wiki TrainingExample.md",
            note="1 GPU, batch 128, --test-only: 42.548 / 19.810 % error",
            gpus=1,
            batch_size=128,
        ),
        Reported(
            "ILSVRC-2012",
            "val",
            "ten_crop",
            59.58,
            81.85,
            "CC2 wiki TrainingExample.md",
            note="the same model, --multiview-test 1: 40.420 / 18.150 % error",
            gpus=1,
            batch_size=128,
        ),
    ),
    deviations=(
        "Input scale 255 (pixel values minus the mean, as the code fed them). The mean is the per-pixel mean "
        "image of the training squares that cuda-convnet2's data provider subtracts, centred under every crop: a "
        "run from a prepared store that holds it (`harness prepare`) subtracts it; any other run subtracts "
        "ImageNet's per-channel mean (x255) and records so, with the reason, among its own deviations.",
        "Channels follow the CC2 code (conv4 256 maps), not the OWT14 footnote (384): 61,100,840 parameters "
        "instead of 61,838,248.",
        "Input: the 224 crop is zero-padded right/bottom to 227 before conv1 (cuda-convnet's ceil output size), "
        "giving 55x55 maps as the code did.",
        "LRN constants as in the 2012 code (nn.LocalResponseNorm alpha=1e-4, k=2, beta 0.75, size 5).",
        "Max pooling uses cuda-convnet's ceil output size and an adaptive average pool to 6x6 precedes fc6: the "
        "identity at 224.",
        "Schedule: the code's (CC2 layer-params-imagenet-1gpu.cfg, lr.cu DiscreteExpParameterSchedule) as a table "
        "by epoch: weights 0.01 x 250^(-k/3) from epochs 1, 23, 46, 68, biases 0.02 then 0.002 from epoch 46. The "
        "code switches at fractions of its data batches, in the middle of epochs 23 and 68; here at their start.",
        "PyTorch SGD applies the lr outside the momentum buffer (cuda-convnet: inside); identical at constant lr.",
    ),
)

VARIANTS = (VARIANT,)
CLAIMS = (
    # CC2 wiki TrainingExample.md, one saved model on ILSVRC-2012 val: centre 42.548 / 19.810 % error, multiview
    # 40.420 / 18.150 ("the top-1 error rate has decreased by about 2%"): 10-crop gains 2.13 top-1, 1.66 top-5.
    Claim(
        "ten_crop_cc2",
        "10-crop testing gains 2.13 top-1 over the centre crop (cuda-convnet2 reference run)",
        "alexnet2014",
        "alexnet2014",
        "top1",
        2.13,
        "CC2 wiki TrainingExample.md",
        protocol="ten_crop",
    ),
    Claim(
        "ten_crop_cc2_top5",
        "10-crop testing gains 1.66 top-5 over the centre crop (cuda-convnet2 reference run)",
        "alexnet2014",
        "alexnet2014",
        "top5",
        1.66,
        "CC2 wiki TrainingExample.md",
        protocol="ten_crop",
    ),
)

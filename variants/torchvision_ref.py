"""torchvision's AlexNet, built by torchvision itself, with the reference recipe of its IMAGENET1K_V1 weights (TV).

Sources: torchvision `models/alexnet.py` and its `AlexNet_Weights.IMAGENET1K_V1` metadata; the recipe is the one
`references/classification/README.md` gives for AlexNet.
"""

from __future__ import annotations

import typing

if typing.TYPE_CHECKING:
    import torch.nn as nn

from variants.types import Claim, Paper, Recipe, Reported, Variant

PAPER = Paper("TV", "torchvision models.alexnet and references/classification (recipe of the IMAGENET1K_V1 weights)")


def build(num_classes: int) -> nn.Module:
    # Built by torchvision so that its official weights load unchanged (TV models/alexnet.py). Imported here: the
    # registry itself (and `harness list --help`) does not pay for torchvision's import.
    import torchvision

    return torchvision.models.alexnet(weights=None, num_classes=num_classes)


# TVREF references/classification: `--lr 0.01`, wd 1e-4, 32 images per GPU x 8 GPUs, StepLR(30, 0.1), 90 epochs.
RECIPE = Recipe(
    lr=0.01,
    momentum=0.9,
    weight_decay=1e-4,
    batch_size=256,
    epochs=90,
    schedule="step",
    step_size=30,
    gamma=0.1,
    train_aug="torchvision",  # RandomResizedCrop(224) + flip
    pca_lighting=False,
    test_protocol="center",  # resize 256, centre crop 224
)

VARIANT = Variant(
    name="torchvision_alexnet",
    paper=PAPER.key,
    summary="torchvision.models.alexnet: 64-192-384-256-256, no LRN, no towers, dropout before fc6/fc7",
    builder=build,
    recipe=RECIPE,
    reported_params=61_100_840,
    reported_macs=0.714,
    reported_size_mb=233.087,
    reported=(Reported("ILSVRC-2012", "val", "center", 56.522, 79.066, "TV IMAGENET1K_V1 metadata", tolerance=0.01),),
    deviations=(
        "None in the architecture: the model is torchvision's own. Its weights were trained on 8 GPUs x 32 images; "
        "a single-process run uses the global batch of 256 with the same lr.",
    ),
)

VARIANTS = (VARIANT,)
CLAIMS: tuple[Claim, ...] = ()

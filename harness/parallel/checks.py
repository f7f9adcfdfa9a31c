"""Which parallel scheme applies to which network and world size, and what it changes: pure checks, no processes.

`none`: plain DistributedDataParallel (or one process). `towers` (KSH12 s3.2, Fig. 2): each of two ranks holds one
tower of a two-tower net; a world of 2 x dp ranks runs dp replicas (a 2-D mesh dp x tower). `hybrid` (OWT14 s4 and
cuda-convnet2 layers/layers-imagenet-4gpu-data-model.cfg): convolutions data-parallel over all K ranks,
fc6 / fc7 model-parallel over the same K ranks.
"""

from __future__ import annotations

import torch.nn as nn

from harness.errors import HarnessError
from harness.request import PARALLELS
from variants.convnet import ConvNet, GroupedLinear

KINDS = PARALLELS
TOWERS = 2  # KSH12 s3.2: "we spread the net across two GPUs"


def linears(model: ConvNet) -> list[tuple[str, nn.Linear]]:
    return [(n, m) for n, m in model.classifier.named_children() if isinstance(m, nn.Linear)]


def convs(model: ConvNet) -> list[tuple[str, nn.Conv2d]]:
    return [(n, m) for n, m in model.features.named_children() if isinstance(m, nn.Conv2d)]


def check(kind: str, model: nn.Module, world_size: int, batch_size: int, name: str = "this variant") -> None:
    """Raise a one-line HarnessError when `kind` cannot run `model` on `world_size` ranks at global `batch_size`."""
    if kind not in KINDS:
        raise HarnessError(f"unknown parallel scheme {kind!r}; expected one of {', '.join(KINDS)}")
    if kind == "none":
        return
    if not isinstance(model, ConvNet):
        raise HarnessError(f"--parallel {kind} needs a ConvNet-built variant; {name} is not one")
    if kind == "towers":
        _check_towers(model, world_size, batch_size, name)
    else:
        _check_hybrid(model, world_size, batch_size, name)


def _check_towers(model: ConvNet, world: int, batch: int, name: str) -> None:
    if world < TOWERS or world % TOWERS:
        raise HarnessError(
            f"--parallel towers needs 2 ranks per replica (a world of 2, 4, 6, ...), not {world}: "
            "run under torchrun --nproc-per-node 2"
        )
    groups = {m.groups for _, m in convs(model)} | {getattr(m, "groups", 1) for _, m in linears(model)}
    if TOWERS not in groups or not groups <= {1, TOWERS}:
        raise HarnessError(f"--parallel towers needs a two-tower variant (groups=2 layers); {name} has groups {groups}")
    first = convs(model)[0][1]
    if first.groups != 1:
        raise HarnessError(f"--parallel towers: {name}'s first conv layer is grouped; its input is not split")
    widths = [m.out_channels for _, m in convs(model)] + [m.out_features for _, m in linears(model)]
    if any(w % TOWERS for w in widths):
        raise HarnessError(f"--parallel towers: {name} has a layer whose width is odd ({widths})")
    lrn = [m for m in model.features if isinstance(m, nn.LocalResponseNorm)]
    if any(getattr(m, "towers", 1) != TOWERS for m in lrn):
        raise HarnessError(
            f"--parallel towers: {name}'s LRN normalises across the towers; the scheme needs each tower's LRN on its "
            "own maps (NetSpec lrn_towers=2, as the 2012 code)"
        )
    dp = world // TOWERS
    if batch % dp:
        raise HarnessError(f"--parallel towers: batch size {batch} is not divisible by the {dp} replicas")


def _check_hybrid(model: ConvNet, world: int, batch: int, name: str) -> None:
    if world < 2:
        raise HarnessError(
            f"--parallel hybrid needs at least 2 ranks, not {world}: run under torchrun --nproc-per-node K"
        )
    fcs = linears(model)
    if len(fcs) != 3 or any(isinstance(m, GroupedLinear) for _, m in fcs):
        raise HarnessError(
            f"--parallel hybrid needs two dense hidden fc layers and an output layer (fc6, fc7, fc8); {name} has "
            f"{[n for n, _ in fcs]}"
        )
    for n, m in fcs[:2]:
        if m.out_features % world:
            raise HarnessError(f"--parallel hybrid: {n}'s {m.out_features} units do not split over {world} ranks")
    if batch % world:
        raise HarnessError(f"--parallel hybrid: batch size {batch} is not divisible by the world size {world}")


def deviations(kind: str) -> tuple[str, ...]:
    """What a scheme changes in the maths (recorded with the run); the arithmetic is otherwise the same network's."""
    if kind == "towers":
        return (
            "Parallel towers: each tower on its own rank (KSH12 s3.2); dropout masks are drawn per tower rank, so "
            "the random stream differs from one device's. Each tower's LRN normalises its own maps, on one device as "
            "on two (the 2012 code's per-tower LRN), so the maths equal the one-device net's.",
        )
    if kind == "hybrid":
        return (
            "Parallel hybrid (OWT14): convolutions data-parallel, fc6/fc7 split over the ranks; dropout on fc6 is "
            "drawn per rank for the whole batch's slice of units, so the random stream differs from DDP's.",
        )
    return ()

"""KSH12's two towers on two ranks (KSH12 s3.2 and Fig. 2; the 2012 code: CHM layers/layers-145.cfg, where every
layer is an `a` / `b` pair and a layer reads the other tower only where its `inputs=` names both).

Each tower rank holds half of every layer: conv1's 48 maps (of 96, reading the whole image), its tower's conv2, conv4
and conv5 (the groups=2 layers: one group each), and half of the maps or units of conv3, conv6 and fc6-fc8 (the
layers "connected across towers", KSH12 s3.5). Activations cross ranks only before those: an all-gather of both
towers' maps (conv3, conv6) or units (fc6-fc8), whose backward sums the two towers' gradients. The logits are gathered
so that both tower ranks compute the same loss. A world of 2 x dp ranks is a 2-D mesh (dp, tower): the dp replicas
read different images and all-reduce their gradients.

Each tower's LRN normalises its own maps, as the 2012 code's (rnorm1a reads conv1a) and the one-device net's
(`variants.convnet.TowerLRN`) do, so LRN needs nothing from the other rank.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from harness.distributed import Dist
from harness.parallel.checks import convs, linears
from harness.parallel.comm import Link, gather_replicated, gather_split, scale_grad, sync_grad
from harness.parallel.shard import Sharded
from variants.convnet import TowerLRN


def tower_dims(model: nn.Module) -> dict[str, int | None]:
    """Every parameter is cut along its output maps / units (dim 0): a groups=2 layer's group g is its rows g."""
    layers = [(f"features.{n}", m) for n, m in convs(model)] + [(f"classifier.{n}", m) for n, m in linears(model)]
    return {f"{n}.{p}": 0 for n, m in layers for p, _ in m.named_parameters()}


class Towers(Sharded):
    """One tower of a two-tower ConvNet; `tower` links the two tower ranks, `dp` this tower's replicas."""

    def __init__(self, model: nn.Module, tower: Link, dp: Link, data: Dist) -> None:
        super().__init__(model, tower, tower_dims(model))
        self.dp, self.data = dp, data

    def data_dist(self, d: Dist) -> Dist:
        return self.data

    def _param(self, p: torch.Tensor | None) -> torch.Tensor | None:
        return None if p is None else sync_grad(p, self.dp)  # the dp replicas' gradient all-reduce

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        link = self.link
        split = False  # whether x holds this tower's maps only (else both towers see the same tensor)
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                if m.groups == 1 and split:
                    x = gather_split(x, link, 1)  # conv3 / conv6 read both towers (KSH12 s3.5)
                x = F.conv2d(x, self._param(m.weight), self._param(m.bias), m.stride, m.padding, m.dilation)
                split = True
            elif isinstance(m, TowerLRN) and split:
                x = m.one_tower(x)  # this rank's maps are one tower's (`checks.check` requires TowerLRN, 2 towers)
            else:
                x = m(x)
        x = torch.flatten(self.avgpool(x), 1)  # this tower's maps: a contiguous slice of the flattened layer
        for m in self.classifier:
            if isinstance(m, nn.Linear):
                if getattr(m, "groups", 1) == 1:
                    x = gather_split(x, link, 1)  # fc6-fc8 read both towers' units
                x = F.linear(x, self._param(m.weight), self._param(m.bias))
            else:
                x = m(x)
        logits = gather_replicated(x, link, 1)  # both tower ranks compute the same loss
        return scale_grad(logits, 1 / self.dp.size)  # the mean over the dp replicas' batches, as DDP's

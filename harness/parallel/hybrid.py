"""OWT14's hybrid: data-parallel convolutions, model-parallel fully connected layers (OWT14 s4; cuda-convnet2
layers/layers-imagenet-4gpu-data-model.cfg and its wiki page MultiGPU.md, "The hybrid approach").

Each of the K ranks holds every conv layer (a replica: its gradient is all-reduced, as in data parallelism) and
reads its own K-th of the batch. The batch's last conv activations are all-gathered, so every rank has the whole
batch (OWT14: each worker's last-stage conv output goes to all workers); fc6 is split by output units (column-wise:
each rank computes 4096 / K units for the whole batch), fc7 by input units (row-wise: each rank's partial sums over
its fc6 units), and a reduce-scatter over the batch returns to each rank its own images' fc7 sums. fc7's bias and
fc8 then run data-parallel on each rank's images, replicated like the convolutions.

Against cuda-convnet2's config: there fc7 is split column-wise again (each GPU's fc1024b* reads all fc6 units via a
`pass` concatenation) and fc1000 runs on GPU 0 alone for the whole batch; the arithmetic is the same, the messages
differ. Not done: OWT14's variant that runs the fc layers on a smaller batch than the convolutions (one forward /
backward through the fc layers per worker's batch, cuda-convnet2 `updatePeriod`): here the fc layers see the whole
batch in one pass and update once per step.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from harness.parallel.checks import linears
from harness.parallel.comm import Link, gather_split, reduce_scatter, scale_grad, sync_grad
from harness.parallel.shard import Sharded


def hybrid_dims(model: nn.Module) -> dict[str, int | None]:
    """fc6 cut by output units (rows, and its bias), fc7 by input units (columns; its bias whole); the rest whole."""
    (fc6, _), (fc7, _), _ = linears(model)
    dims: dict[str, int | None] = {n: None for n, _ in model.named_parameters()}
    dims.update(
        {f"classifier.{fc6}.weight": 0, f"classifier.{fc6}.bias": 0, f"classifier.{fc7}.weight": 1},
    )
    return dims


class Hybrid(Sharded):
    def __init__(self, model: nn.Module, link: Link) -> None:
        super().__init__(model, link, hybrid_dims(model))
        (self.fc6, _), (self.fc7, _), (self.fc8, _) = linears(model)

    def _replica(self, p: torch.Tensor | None) -> torch.Tensor | None:
        return None if p is None else sync_grad(p, self.link)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.features:
            if isinstance(m, nn.Conv2d):  # data parallel: this rank's images, the gradient all-reduced
                x = F.conv2d(
                    x, self._replica(m.weight), self._replica(m.bias), m.stride, m.padding, m.dilation, m.groups
                )
            else:
                x = m(x)
        x = torch.flatten(self.avgpool(x), 1)
        x = gather_split(x, self.link, 0)  # the whole batch's conv activations on every rank
        for name, m in self.classifier.named_children():
            if name == self.fc6:  # column-wise: this rank's units, every image
                x = F.linear(x, m.weight, m.bias)
            elif name == self.fc7:  # row-wise: partial sums over this rank's fc6 units, summed onto each image's rank
                x = reduce_scatter(F.linear(x, m.weight), self.link, 0) + self._replica(m.bias)
            elif name == self.fc8:  # data parallel on this rank's images
                x = F.linear(x, self._replica(m.weight), self._replica(m.bias))
            else:
                x = m(x)
        return scale_grad(x, 1 / self.link.size)  # the mean over the ranks' batches, as DDP's

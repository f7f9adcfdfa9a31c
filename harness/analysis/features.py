"""Activations of a built model read with forward hooks (no second model definition), batch by batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from variants.convnet import trace

Inputs = Callable[[Sequence[int]], torch.Tensor]  # indices -> the network's float input [n,3,s,s]


def last_hidden_layer(model: nn.Module, size: int) -> str:
    """The leaf whose output feeds the output layer: KSH12 s6.1's "last, 4096-dimensional hidden layer" (fc7 after
    its ReLU and dropout: the identity in eval mode for nn.Dropout, x 0.5 for the 2012 code's, the same neighbours).
    Found from the variant's leaves (`variants.convnet.trace`)."""
    leaves = trace(model, size)
    last_fc = max(i for i, t in enumerate(leaves) if isinstance(t.module, nn.Linear))
    if last_fc == 0:
        raise ValueError("the model has no layer before its output layer")
    return leaves[last_fc - 1].name


@torch.no_grad()
def run_batches(
    model: nn.Module,
    inputs: Inputs,
    indices: Sequence[int],
    layer: str | None = None,
    batch_size: int = 128,
    also: Callable[[torch.Tensor], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(softmax probabilities [n,C], activations of `layer` flattened [n,d] or None, `also` of each input batch
    concatenated or None), `batch_size` images at a time."""
    device = next(model.parameters()).device
    modules = dict(model.named_modules())
    caught: list[torch.Tensor] = []
    handle = None
    if layer is not None:
        handle = modules[layer].register_forward_hook(lambda m, i, o: caught.append(o.detach().flatten(1).clone()))
    was_training = model.training
    model.eval()
    probs, feats, extra = [], [], []
    try:
        for start in range(0, len(indices), batch_size):
            x = inputs(indices[start : start + batch_size])
            if also is not None:
                extra.append(also(x))
            x = x.to(device)
            probs.append(torch.softmax(model(x).float(), dim=1).cpu().numpy())
            if caught:
                feats.append(caught.pop().float().cpu().numpy())
    finally:
        model.train(was_training)
        if handle is not None:
            handle.remove()
    p = np.concatenate(probs) if probs else np.zeros((0, 0), np.float32)
    return p, (np.concatenate(feats) if feats else None), (np.concatenate(extra) if extra else None)

"""Short binary codes for fast retrieval (KSH12 s6.1: "train an auto-encoder to compress these vectors to short
binary codes", after Krizhevsky & Hinton 2011): a small auto-encoder with a sigmoid bottleneck of `bits` units,
trained to reconstruct its (standardised) input; a code is the bottleneck thresholded at 1/2, packed into bytes.
The same auto-encoder on raw pixels is the baseline KSH12 says it beats."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

BITS = 64  # code length; KSH12 gives none (Krizhevsky & Hinton 2011 used 28 and 256)
HIDDEN = 128


@dataclass
class CodeModel:
    """A trained auto-encoder and the standardisation of its input."""

    encoder: nn.Module
    mean: np.ndarray
    std: np.ndarray
    bits: int
    final_loss: float

    @torch.no_grad()
    def codes(self, x: np.ndarray, batch: int = 1024) -> np.ndarray:
        """Packed binary codes (n, ceil(bits / 8)) uint8."""
        out = []
        for s in range(0, len(x), batch):
            z = torch.from_numpy(((x[s : s + batch] - self.mean) / self.std).astype(np.float32))
            out.append(np.packbits(self.encoder(z).numpy() > 0.5, axis=1))
        return np.concatenate(out) if out else np.zeros((0, (self.bits + 7) // 8), np.uint8)


def train_codes(
    x: np.ndarray, bits: int = BITS, hidden: int = HIDDEN, epochs: int = 10, batch: int = 128, seed: int = 0
) -> CodeModel:
    """Train the auto-encoder on rows of `x` (Adam, mean squared error, a seeded generator: deterministic on CPU)."""
    if bits < 1:
        raise ValueError(f"bits must be positive, got {bits}")
    gen = torch.Generator().manual_seed(seed)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    d = x.shape[1]
    encoder = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, bits), nn.Sigmoid())
    decoder = nn.Sequential(nn.Linear(bits, hidden), nn.ReLU(), nn.Linear(hidden, d))
    torch.random.set_rng_state(torch_state)
    mean = x.mean(axis=0)
    std = x.std(axis=0) + 1e-6
    data = torch.from_numpy(((x - mean) / std).astype(np.float32))
    opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3)
    loss = torch.tensor(0.0)
    for _ in range(epochs):
        for idx in torch.randperm(len(data), generator=gen).split(batch):
            z = encoder(data[idx])
            # noise on the bottleneck pushes its units towards 0 or 1 (Salakhutdinov & Hinton's semantic hashing),
            # so that thresholding loses little
            z = z + 0.1 * torch.randn(z.shape, generator=gen)
            loss = nn.functional.mse_loss(decoder(z), data[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    encoder.eval()
    return CodeModel(encoder, mean, std, bits, float(loss.detach()))

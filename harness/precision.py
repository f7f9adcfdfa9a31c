"""Arithmetic precision of training and evaluation: fp32 (the papers'), tf32 or bf16, and the CUDA settings with it.

fp32 is the paper profile's default; tf32 and bf16 are recorded as deviations (harness.config.resolve). PyTorch
lets cuDNN use TF32 for convolutions by default: under fp32 that is switched off here, so fp32 means fp32.
"""

from __future__ import annotations

import contextlib
import typing

import torch

from harness.request import PRECISIONS


def configure(device: torch.device, precision: str) -> None:
    """TF32 on or off for matmuls and convolutions; cuDNN's autotuner on (AlexNet's shapes repeat every step)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.benchmark = True


def autocast(device: torch.device, precision: str) -> typing.ContextManager:
    """bf16 autocast (weights, optimiser and loss stay fp32), or nothing."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on CUDA (cuDNN's fast convolution layout with tensor cores), the default layout elsewhere."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format

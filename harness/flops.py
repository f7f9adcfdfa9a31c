"""Training FLOPs per image, dense peak TFLOP/s per GPU model and precision, and model FLOPs utilisation (MFU).

Convention (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", s2.1; Chowdhery et al. 2022, PaLM,
appendix B): a training step costs 3x the forward pass (the backward pass computes gradients with respect to both
activations and weights: 2x the forward), and one multiply-accumulate is 2 FLOPs. So training FLOPs per image =
6 x forward MACs, counting conv and linear layers only (`variants.convnet.count_macs`, as torchvision's `_ops`).
MFU = achieved model FLOP/s / the GPU's dense peak at the precision the step ran in (PaLM appendix B).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from variants import Variant
from variants.convnet import count_macs

PRECISIONS = ("fp32", "tf32", "bf16")


def training_flops_per_image(macs: int) -> int:
    """6 x forward MACs: forward + backward = 3 x forward, 1 MAC = 2 FLOPs (Kaplan et al. s2.1, PaLM app. B)."""
    return 6 * macs


def variant_flops_per_image(variant: Variant, size: int, num_classes: int = 1000) -> int:
    """Training FLOPs per `size` x `size` image of `variant`, traced on the meta device (no memory, no compute)."""
    with torch.device("meta"):
        model = variant.build(num_classes)
    return training_flops_per_image(count_macs(model, size))


@dataclass(frozen=True)
class Peak:
    """Dense (no 2:4 sparsity) peak TFLOP/s of one GPU model; None where the source gives no number for that
    precision or the GPU has no such unit (V100: no TF32 or BF16 tensor cores)."""

    gpu: str
    pattern: str  # regex, case-insensitive, searched in torch.cuda.get_device_name()
    fp32: float | None
    tf32: float | None
    bf16: float | None
    source: str


# First match wins: the more specific names come first. NVIDIA's datasheets print tensor-core numbers "with
# sparsity"; the dense figure is half (the datasheets' footnote: "Specifications 1/2 lower without sparsity").
PEAKS: tuple[Peak, ...] = (
    Peak(
        "H100 PCIe",
        r"H100.*PCIE",
        51.0,
        378.0,  # 756 with sparsity
        756.5,  # 1,513 with sparsity
        "NVIDIA H100 Tensor Core GPU datasheet, as reproduced in https://archive-lib.hpctech.co.jp/gpuproduct/"
        "nvidia-h100.html (FP32 51, TF32 756*, BF16 1,513*; * with sparsity, 1/2 without)",
    ),
    Peak(
        "H100 SXM",
        r"H100(?!.*(PCIE|NVL))",  # torch names the SXM part "NVIDIA H100 80GB HBM3"
        67.0,
        494.7,  # 989 with sparsity
        989.4,  # 1,979 with sparsity
        "NVIDIA H100 Tensor Core GPU datasheet, as reproduced in https://archive-lib.hpctech.co.jp/gpuproduct/"
        "nvidia-h100.html (FP32 67, TF32 989*, BF16 1,979*); dense TF32 494.7 and BF16 989.4 in "
        "https://glennklockwood.com/garden/processors/h100",
    ),
    Peak(
        "H200 SXM",
        r"H200(?!.*NVL)",
        66.9,
        None,  # not read in a source for the H200 itself: MFU at tf32 prints n/a
        989.0,
        "FP32 66.91: https://hmc-tech.com/gpu/nvidia-h100-vs-nvidia-h200-sxm-vs-nvidia-gb200; dense FP16/BF16 "
        "~989: https://itkb.uw.cz/2026/06/nvidia-h200-vs-b300-precisions-cores.html (NVIDIA H200 datasheet: "
        "1,979 with sparsity)",
    ),
    Peak(
        "A100",
        r"A100",
        19.5,
        156.0,
        312.0,
        "NVIDIA A100 datasheet https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
        "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf, as tabulated in "
        "https://glennklockwood.com/garden/processors/A100 (SXM4 and PCIe: same peaks)",
    ),
    Peak(
        "L4",
        r"\bL4\b",
        30.3,
        60.0,  # 120 with sparsity
        121.0,  # 242 with sparsity (FP16; Ada runs BF16 tensor ops at the FP16 rate)
        "NVIDIA L4 datasheet figures: TF32 120 TFLOPS with sparsity (https://store.sourcecode.com/en-us/"
        "bg-bucket-compare/125/9820), FP16 242 with sparsity (https://grokipedia.com/page/NVIDIA_L4_vs_L40S), "
        "FP32 30.29 and BF16 tensor = FP16 tensor (https://fpsbench.com/compare/gpu/nvidia-l4-vs-nvidia-tesla-m40, "
        "https://hmc-tech.com/gpu/nvidia-l4-vs-nvidia-a100-40gb)",
    ),
    Peak(
        "V100 PCIe",
        r"V100(?!S).*PCIE",
        14.0,
        None,
        None,
        "NVIDIA Tesla V100 PCIe: 14 TFLOPS FP32 at 1,370 MHz (https://www.io-tech.fi/uutinen/"
        "nvidia-esitteli-tesla-v100-pci-express-kiihdyttimen-tieteelliseen-laskentaan/); Volta's tensor cores are "
        "FP16/FP32 only (https://developer.nvidia.com/programming-tensor-cores-cuda-9-0)",
    ),
    Peak(
        "V100 SXM2",
        r"V100(?!S)",
        15.7,
        None,
        None,
        "5,120 FP32 cores x 2 FLOPs x 1.53 GHz = 15.7 TFLOPS (https://cvw.cac.cornell.edu/gpu-architecture/"
        "gpu-example-tesla-v100/tesla); no TF32 or BF16 tensor cores on Volta",
    ),
)


def find_peak(device_name: str) -> Peak | None:
    """The table's entry for a `torch.cuda.get_device_name()` string, or None for a GPU not in the table."""
    return next((p for p in PEAKS if re.search(p.pattern, device_name, re.IGNORECASE)), None)


def peak_tflops(device_name: str, precision: str) -> float | None:
    """Dense peak TFLOP/s of the named GPU at `precision` (fp32, tf32 or bf16); None when unknown."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    peak = find_peak(device_name)
    return None if peak is None else getattr(peak, precision)


def mfu(images_per_sec: float, flops_per_image: float, peak: float) -> float:
    """Model FLOPs utilisation, a fraction: achieved FLOP/s over the peak (`peak` in TFLOP/s)."""
    return images_per_sec * flops_per_image / (peak * 1e12)

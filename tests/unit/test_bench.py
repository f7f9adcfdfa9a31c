"""`harness bench`, its FLOPs and peaks (harness.flops), the ImageNet-sized JPEGs (harness.photos) and
scripts/gpu-check.sh (QUICK=1: the same steps, tiny, on the CPU)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import variants
from harness import bench, flops, photos

# --- harness.photos -------------------------------------------------------------------------------------------------


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.JPEG"))


def test_photos_are_real_distinct_jpegs_of_imagenet_like_sizes(tmp_path: Path) -> None:
    root = photos.imagenet_like_jpegs(tmp_path / "a", n_per_class=10, classes=3)
    files = _files(root)
    assert len(files) == 2 * 3 * 10
    assert sorted({f.parent.parent.name for f in files}) == ["train", "val"]
    assert len({f.parent.name for f in files}) == 3
    sizes = []
    for f in files:
        with Image.open(f) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            im.load()  # decodes the whole file
            sizes.append(im.size)
    widths, heights = zip(*sizes)
    assert all(photos.WIDTHS[0] <= w <= photos.WIDTHS[1] for w in widths)
    assert all(photos.HEIGHTS[0] <= h <= photos.HEIGHTS[1] for h in heights)
    assert len(set(sizes)) > len(sizes) // 2  # variable resolution (KSH12 s2), not one size
    mean_w, mean_h = sum(widths) / len(widths), sum(heights) / len(heights)
    assert 360 < mean_w < 440 and 310 < mean_h < 390  # ImageNet's average ~400x350
    digests = {hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    assert len(digests) == len(files)  # no two files identical


def test_photos_are_deterministic_per_seed_and_classes_differ(tmp_path: Path) -> None:
    a = _files(photos.imagenet_like_jpegs(tmp_path / "a", 2, 2, seed=0, splits=("train",)))
    b = _files(photos.imagenet_like_jpegs(tmp_path / "b", 2, 2, seed=0, splits=("train",)))
    c = _files(photos.imagenet_like_jpegs(tmp_path / "c", 2, 2, seed=1, splits=("train",)))
    assert [f.read_bytes() for f in a] == [f.read_bytes() for f in b]
    assert all(x.read_bytes() != y.read_bytes() for x, y in zip(a, c))
    # the class's colour cast: mean RGB of class 0 and class 2 (same source photo, other cast) differ clearly
    root = photos.imagenet_like_jpegs(tmp_path / "d", 3, 3, splits=("train",))
    means = {
        c_: np.concatenate(
            [np.asarray(Image.open(f)).reshape(-1, 3) for f in _files(root / "train" / photos.class_name(c_))]
        ).mean(0)
        for c_ in (0, 2)
    }
    assert np.abs(means[0] - means[2]).max() > 10


def test_photos_bad_counts_are_one_line_errors(tmp_path: Path) -> None:
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="n_per_class >= 1"):
        photos.imagenet_like_jpegs(tmp_path, 0, 2)


# --- harness.flops --------------------------------------------------------------------------------------------------


def test_training_flops_of_torchvision_alexnet_are_six_times_its_macs() -> None:
    v = variants.get_variant("torchvision_alexnet")
    with torch.device("meta"):
        model = v.build(1000)
    from variants.convnet import count_macs

    # torchvision's AlexNet_Weights metadata "_ops": 0.714 GFLOPS, which are multiply-accumulates
    assert count_macs(model, 224) == 714_188_480
    assert flops.variant_flops_per_image(v, 224) == 6 * 714_188_480


@pytest.mark.parametrize(
    ("name", "precision", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", "fp32", 67.0),  # the SXM part, as torch.cuda.get_device_name() spells it
        ("NVIDIA H100 80GB HBM3", "bf16", 989.4),
        ("NVIDIA H100 80GB HBM3", "tf32", 494.7),
        ("NVIDIA H100 PCIe", "bf16", 756.5),
        ("NVIDIA H100 NVL", "bf16", None),  # not in the table
        ("NVIDIA H200", "bf16", 989.0),
        ("NVIDIA H200", "tf32", None),  # no source read for it
        ("NVIDIA A100-SXM4-80GB", "tf32", 156.0),
        ("NVIDIA A100 80GB PCIe", "bf16", 312.0),
        ("NVIDIA L4", "bf16", 121.0),
        ("NVIDIA L40S", "fp32", None),
        ("Tesla V100-SXM2-16GB", "fp32", 15.7),
        ("Tesla V100-PCIE-32GB", "fp32", 14.0),
        ("Tesla V100-SXM2-16GB", "bf16", None),  # Volta has no bf16 tensor cores
        ("Tesla V100S-PCIE-32GB", "fp32", None),
        ("NVIDIA GeForce RTX 4090", "bf16", None),
    ],
)
def test_peak_lookup_by_device_name(name: str, precision: str, peak: float | None) -> None:
    assert flops.peak_tflops(name, precision) == peak


def test_every_peak_names_its_source_and_mfu_is_a_fraction() -> None:
    assert all("http" in p.source for p in flops.PEAKS)
    with pytest.raises(ValueError, match="unknown precision"):
        flops.peak_tflops("NVIDIA H100 PCIe", "fp16")
    # 1,000 images/s x 6 GFLOP per image = 6 TFLOP/s: 1 % of 600
    assert flops.mfu(1000, 6e9, 600.0) == pytest.approx(0.01)


# --- harness bench --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_bench_prints_header_and_rows_and_writes_the_same_json(harness_main, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = ["bench", "alexnet2012", "--size", "64", "--batch-size", "4", "--steps", "2", "--images", "6"]
    code, stdout, stderr = harness_main([*argv, "--device", "cpu", "--json", str(out)])
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].startswith("device cpu") and "precision fp32" in lines[0] and "64 px, batch 4" in lines[0]
    assert lines[1].split()[:4] == ["variant", "what", "img/s", "ratio"] and "GFLOP/s" in lines[1]
    # columns: variant (24), what (24), then img/s, ratio, GFLOP/s, MFU, data wait
    rows = [(line[:24].strip(), line[25:49].strip(), line[49:].split(maxsplit=3)) for line in lines[2:8]]
    assert [(v, w) for v, w, _ in rows] == [
        ("alexnet2012", "bare loop"), ("alexnet2012", "harness step"),
        ("-", "torchvision PIL preset"), ("alexnet2012", "harness pipeline"),
        ("alexnet2012", "harness pipeline + view"), ("alexnet2012", "prepared store + view"),
    ]  # fmt: skip
    assert all(float(rest[0]) > 0 and float(rest[1].rstrip("x")) > 0 for _, _, rest in rows)
    assert rows[0][2][1] == "1.00x" and rows[1][2][3].startswith("n/a (CPU)") and rows[1][2][3].endswith(" %")
    assert rows[2][2][2] == "-" and rows[2][2][3].split() == ["-", "-"]  # no model: no FLOP/s, MFU or data wait
    result = bench.read_json(out)
    assert result.header.device.startswith("cpu") and result.header.size == 64
    assert [(r.variant, r.what) for r in result.rows] == [(v, w) for v, w, _ in rows]
    assert [f"{r.images_per_sec:.1f}" for r in result.rows] == [rest[0] for _, _, rest in rows]
    assert result.rows[1].ratio == pytest.approx(result.rows[1].images_per_sec / result.rows[0].images_per_sec)
    assert result.rows[0].data_wait is None and 0 <= result.rows[1].data_wait < 1  # the harness step's
    assert result.rows[1].mfu is None and result.rows[1].tflops > 0
    assert json.loads(out.read_text())["rows"][0]["vs"] == "bare loop"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["alexnet2013"], "unknown variant"),
        (["alexnet2012", "--size", "32"], "below alexnet2012's smallest input, 63 px"),
        (["alexnet2012", "--json", "/nonexistent-dir/b.json"], "does not exist"),
        (["alexnet2012", "--json", "."], "is a folder"),
    ],
)
def test_bench_bad_input_is_one_line_and_exit_2(harness_main, args: list[str], message: str) -> None:
    code, stdout, stderr = harness_main(["bench", *args, "--device", "cpu"])
    assert code == 2 and stdout == ""
    assert stderr.startswith("harness: error: ") and message in stderr and stderr.count("\n") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible here")
def test_bench_cuda_without_a_gpu_is_one_line(harness_main) -> None:
    code, _, stderr = harness_main(["bench", "alexnet2012", "--device", "cuda"])
    assert code == 2 and "no CUDA GPU" in stderr and stderr.count("\n") == 1


# --- scripts/gpu-check.sh -------------------------------------------------------------------------------------------


def test_target_lines_say_whether_the_bf16_store_row_meets_the_target() -> None:
    def result(precision: str, ips: float, wait: float | None, size: int = 224) -> bench.BenchResult:
        header = bench.BenchHeader("NVIDIA H100", "2.11", 16, precision, size, 128, 20)
        rows = (
            bench.BenchRow("alexnet2014", "bare loop", 20_000.0, 1.0, "bare loop"),
            bench.BenchRow("alexnet2014", "harness step, store", ips, ips / 20_000, "bare loop", data_wait=wait),
        )
        return bench.BenchResult(header, rows)

    fp32, bf16 = bench.target_lines([result("fp32", 9_000.0, 0.01), result("bf16", 16_000.0, 0.02)])
    assert fp32 == "alexnet2014 224 px fp32 from a store: 9,000 images/s, data wait 1.0 %"  # no target: what fp32 gives
    assert bf16.endswith("16,000 images/s, data wait 2.0 % (target: >= 15,000 images/s, data wait <= 5 %: met)")
    for ips, wait in ((14_999.0, 0.01), (16_000.0, 0.06), (16_000.0, None)):
        assert bench.target_lines([result("bf16", ips, wait)])[0].endswith("NOT met)")
    assert bench.target_lines([result("bf16", 16_000.0, 0.01, size=64)]) == [
        "the target's row (alexnet2014 224 px, harness step, store) was not measured"
    ]

"""`harness bench`: images/s of the bare loop and the harness's step, the input pipeline, TFLOP/s and MFU."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import Subparsers, non_negative_int, positive_int


def add_bench(sub: Subparsers) -> None:
    """`harness bench [VARIANT ...]`."""
    p = sub.add_parser(
        "bench",
        help="images/s: bare loop vs the harness's step, input pipeline per core vs torchvision's, TFLOP/s and MFU",
    )
    p.add_argument("names", nargs="*", metavar="VARIANT", help="variants to time (default: alexnet2012)")
    p.add_argument("--size", type=positive_int, default=224, help="input size in px (default 224)")
    p.add_argument("--batch-size", type=positive_int, default=128, help="batch size (default 128)")
    p.add_argument("--steps", type=positive_int, default=20, help="timed training steps, after 3 warm-up (default 20)")
    p.add_argument("--precision", choices=("fp32", "tf32", "bf16"), default="fp32", help="(default fp32)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="(default auto)")
    p.add_argument(
        "--images", type=non_negative_int, default=200, help="JPEGs per pipeline measurement; 0 skips it (default 200)"
    )
    p.add_argument("--rounds", type=positive_int, default=1, help="alternate (a) and (b) N times, print medians")
    p.add_argument(
        "--jpegs",
        help="an ImageNet-style folder of JPEGs to read (default: --images generated ones); the training rows from "
        "JPEGs and from a store appear when its train/ holds (3 + steps) x batch images",
    )
    p.add_argument("--json", type=Path, help="also write the header and rows to this JSON file")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from harness import bench

    spec = bench.BenchSpec(
        bench.names_or_default(args.names), args.size, args.batch_size, args.steps, args.precision, args.device,
        args.images, args.rounds,
    )  # fmt: skip
    print(bench.bench_command(spec, args.json, Path(args.jpegs) if args.jpegs else None))
    return 0

"""`harness prepare` (an ImageNet-style folder to a store of KSH12 s2's 256 squares) and `harness pca` (the
lighting eigen-pairs of KSH12 s4.1)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import Subparsers, int_range, positive_int


def add_prepare(sub: Subparsers) -> None:
    """`harness prepare --data DIR --out STORE`."""
    p = sub.add_parser(
        "prepare",
        help="decode an ImageNet-style folder once into a store of 256x256 centre patches (KSH12 s2)",
    )
    p.add_argument("--data", required=True, help="DIR with train/<class>/* and val/<class>/*")
    p.add_argument("--out", required=True, help="the store folder: new or empty (a store of the same DIR: no-op)")
    p.add_argument(
        "--format",
        choices=["raw", "jpeg"],
        default="raw",
        help="raw (default): uint8 arrays, fastest to read; jpeg: re-encoded, ~5x smaller, ~20x slower to read",
    )
    # --resize's upper bound: harness.prepare.check_settings, before anything is read or written
    p.add_argument("--resize", type=positive_int, default=256, help="shorter side, then the central square (256)")
    p.add_argument("--quality", type=int_range(1, 100), default=95, help="JPEG quality of --format jpeg (default 95)")
    p.add_argument("--workers", type=positive_int, help="decoding threads (default: one per CPU)")
    p.set_defaults(func=cmd_prepare)


def add_pca(sub: Subparsers) -> None:
    """`harness pca --data DIR`."""
    p = sub.add_parser("pca", help="compute the PCA lighting eigen-pairs of an ImageNet-style training set")
    p.add_argument("--data", required=True)
    p.set_defaults(func=cmd_pca)


def cmd_prepare(args: argparse.Namespace) -> int:
    from harness.prepare import prepare

    prepare(
        Path(args.data), Path(args.out), resize=args.resize, fmt=args.format, quality=args.quality, workers=args.workers
    )
    return 0


def cmd_pca(args: argparse.Namespace) -> int:
    from harness.pca import pca_command

    print(pca_command(Path(args.data)))
    return 0

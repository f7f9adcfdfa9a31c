"""`harness analyze`: the papers' qualitative evaluation of a finished run (KSH12 s6.1), logged to that run."""

from __future__ import annotations

import argparse

from harness import mlruns
from harness.cli.common import Subparsers, add_store_option
from harness.errors import HarnessError


def add_analyze(sub: Subparsers) -> None:
    """`harness analyze RUN_ID | --variant NAME`."""
    p = sub.add_parser(
        "analyze",
        help="the papers' qualitative evaluation of a finished run (KSH12 s6.1), logged to that run",
        description="Tower colour index of conv1, top-5 examples, fc7 retrieval against pixels, auto-encoder codes "
        "and accuracy against shift, computed from a finished run's final weights and data and logged to it "
        "(metrics qual.*, figures under qualitative/).",
    )
    p.add_argument("run_id", nargs="?", help="a finished variant run")
    p.add_argument("--variant", help="analyze the latest finished run of this variant instead")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    add_store_option(p)
    p.set_defaults(func=cmd_analyze)


def cmd_analyze(args: argparse.Namespace) -> int:
    from harness import tracking
    from harness.analysis import record

    if bool(args.run_id) == bool(args.variant):
        raise HarnessError("give a RUN_ID or --variant NAME (its latest finished run), not both or neither")
    uri = mlruns.resolve(args.tracking_uri)
    if problem := mlruns.missing(uri):
        raise HarnessError(problem)
    run_id = args.run_id or tracking.latest_finished(uri, args.variant)
    summary = record.analyze_run(uri, run_id, device=args.device)
    print(f"run {run_id}: {len(summary.metrics)} qualitative metrics and {len(summary.artifacts)} artifacts logged "
          f"in {summary.seconds:.1f} s")  # fmt: skip
    return 0

"""`harness report`, and the report at the end of `run` and `sweep` (the work is `harness.report.build`'s)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import mlruns
from harness.cli.common import Subparsers, add_store_option, add_ui_url_option
from harness.errors import HarnessError


def add_report(sub: Subparsers) -> None:
    """`harness report [--experiment NAME] [--out FILE]`."""
    p = sub.add_parser("report", help="write the markdown report (and figures) of tracked runs under reports/")
    p.add_argument(
        "--experiment",
        dest="experiments",
        action="append",
        metavar="NAME",
        help="an MLflow experiment to report (repeatable; default: all experiments in the store)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="markdown file to write (default: reports/<experiment names>.md); figures go beside it",
    )
    add_store_option(p)
    add_ui_url_option(p)
    p.set_defaults(func=cmd_report)


def write_report(
    uri: str,
    experiments: list[str] | None,
    out: Path | None,
    ui_url: str | None = None,
    parent: str | None = None,
    exp_id: str = "",
) -> int:
    """The report of a run's experiment, and (with `parent`) its copy on the batch's parent run."""
    from harness import tracking
    from harness.report.build import generate_report

    try:
        path = generate_report(uri, experiments, out, ui_url=ui_url)
    except HarnessError as e:
        print(f"harness: report: {e}", file=sys.stderr)
        return 1
    print(f"Report: {path}")
    if parent:
        try:
            tracking.log_report(uri, parent, path)
        except Exception as e:  # noqa: BLE001 - the report is written; only its copy in MLflow is missing
            print(f"harness: report: not logged to the parent run {parent}: {e}", file=sys.stderr)
            return 1
        print(f"Report logged to the parent run: {tracking.ui_link(ui_url or mlruns.ui_url(uri), exp_id, parent)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.build import generate_report

    print(generate_report(mlruns.resolve(args.tracking_uri), args.experiments, args.out, ui_url=args.ui_url))
    return 0

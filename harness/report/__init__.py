"""Generated reports: reproduced versus reported, ensembles, architecture fidelity, paper claims, figures.

`read` (MLflow -> RunRow) is separate from the pure `render(ReportInputs) -> str`; `build.generate_report` glues
them. Heavy imports (mlflow, matplotlib, torch) wait until the command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def generate_report(tracking_uri: str, experiments: Sequence[str] | None = None,
                    out_path: str | Path | None = None) -> Path:
    from harness.report.build import generate_report as build

    return build(tracking_uri, experiments, out_path)


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.report.build import default_tracking_uri

    print(generate_report(args.tracking_uri or default_tracking_uri(), args.experiments, args.out))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `report [--experiment NAME ...] [--out PATH] [--tracking-uri URI]`."""
    p = sub.add_parser("report", help="write the markdown report (and figures) of tracked runs under reports/")
    p.add_argument("--experiment", dest="experiments", action="append", metavar="NAME",
                   help="an MLflow experiment to report (repeatable; default: all experiments in the store)")
    p.add_argument("--out", type=Path, default=None,
                   help="markdown file to write (default: reports/<experiment names>.md); figures go beside it")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlruns/mlflow.db)")
    p.set_defaults(func=_cmd_report)

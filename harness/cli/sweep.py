"""`harness sweep`: an Optuna search around one variant's recipe (the work is `harness.sweep`'s)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from harness import mlruns, spaces
from harness.cli.common import (
    Subparsers,
    add_data_options,
    add_recipe_options,
    add_ui_url_option,
    child_options,
    non_negative_int,
    parent_only,
    positive_float,
    positive_int,
    request,
)
from harness.cli.report import write_report
from harness.errors import HarnessError
from harness.request import PRUNERS, SweepRequest


def add_sweep(sub: Subparsers) -> None:
    """`harness sweep NAME`."""
    p = sub.add_parser(
        "sweep",
        help="Optuna search around a variant's recipe, one nested MLflow run per trial (single process)",
        description="Hyperparameter search with Optuna (TPE, seeded; median pruning on per-epoch val_top1), tracked "
        "in MLflow as a parent run with one nested run per trial. Runs in one process: no torchrun/DDP. "
        "The study lives in optuna.db beside the MLflow store; the same --study-name continues it.",
    )
    p.add_argument("name", help="variant name (see `harness list`)")
    # the parent sweep gives each worker its share of the trials, its index, the study's name and its parent run
    trials = "trials to run now, added to the study (default 6)"
    parent_only(p.add_argument("--trials", type=positive_int, default=6, help=trials))
    p.add_argument(
        "--storage",
        help="the study's storage: an Optuna RDB URL (postgresql://..., sqlite:///...) or journal:PATH (a journal "
        "file, e.g. on shared storage); default: optuna.db beside the MLflow store",
    )
    jobs = "N worker processes on the study (TPE with constant_liar, each its own sampler seed); --trials in all"
    parent_only(p.add_argument("--jobs", type=positive_int, default=1, metavar="N", help=jobs))
    parent_only(p.add_argument("--worker-index", type=non_negative_int, default=0, help=argparse.SUPPRESS))
    parent_only(p.add_argument("--parent-run-id", help=argparse.SUPPRESS))
    study = "Optuna study (default: VARIANT-PROFILE-SPACE); an existing one continues"
    parent_only(p.add_argument("--study-name", help=study))
    p.add_argument("--space", default="default", help=f"search space (default: default). {spaces.describe()}")
    p.add_argument("--timeout", type=positive_float, help="start no new trial after this many seconds")
    p.add_argument(
        "--pruner",
        choices=PRUNERS,
        default="median",
        help="median (default): stop a trial whose val_top1 is below the median of complete trials at the same epoch",
    )
    add_recipe_options(p, batch_size=False)
    add_data_options(p)
    p.add_argument(
        "--report",
        action="store_true",
        help="then write the experiment's report (reports/<experiment>.md) and log it to the sweep's run",
    )
    add_ui_url_option(p)
    p.set_defaults(func=cmd_sweep, run_parser=p)


def cmd_sweep(args: argparse.Namespace) -> int:
    from harness.sweep.command import sweep_command

    req = request(SweepRequest, args, names=(args.name,))
    if problem := mlruns.shared_sqlite_problem(req.uri, os.environ):
        raise HarnessError(problem)
    logging.getLogger("optuna.study._optimize").addFilter(_no_interrupt_traceback)
    code = sweep_command(req, child_options(args))
    if args.report:  # the sweep's experiment's report, also logged to the sweep's run
        from harness import tracking

        mine = tracking.own_latest(req.uri, "sweep")
        if mine is not None:
            out = Path("reports") / f"{mine.experiment}.md"
            code = max(code, write_report(req.uri, [mine.experiment], out, req.ui_url, mine.run_id, mine.exp_id))
    return code


def _no_interrupt_traceback(record: logging.LogRecord) -> bool:
    """Optuna logs a trial stopped by Ctrl-C or SIGTERM with its traceback: keep the line, drop the traceback."""
    if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
        record.exc_info = None
        record.exc_text = None
    return True

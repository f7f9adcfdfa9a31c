"""The command line: one module per subcommand (its options and its handler), assembled here; bad input is one
line + exit 2.

Control flow of the main job: `run` (`harness.cli.run`) -> `runner.run_variants(RunRequest)` -> engine.fit /
evaluate -> tracking -> the outcomes come back there -> `report.build.generate_report`. Each handler imports what it
needs when it runs, so `python -m harness --help` loads no torch, MLflow or Optuna. Shared argument types, option
groups and `request` (arguments to a frozen request) are in `harness.cli.common`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import typing

from harness import interrupts
from harness.cli import analyze, bench, evaluation, listing, prepare, report, run, serve, sweep
from harness.cli.common import child_options, request
from harness.cli.serve import served
from harness.errors import HarnessError

__all__ = ["build_parser", "child_options", "entry_point", "main", "request", "served"]


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line (`harness run: error: ...`) and exit status 2; `-h` still prints the usage."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} -h`)\n")


DESCRIPTION = """\
Reproduce the AlexNet family (KSH12's two-tower net, the 2014 one-tower net,
torchvision's AlexNet, ZFNet, the papers' ablations) with the papers' own recipes,
track every run in MLflow, and write a report that compares what was reproduced
with what the papers report.

main commands:
  harness run --all                 every variant on the embedded mnist-clutter
                                    proxy (CPU, no download), then the report
  harness prepare --data DIR --out STORE
                                    an ImageNet-style folder to 256x256 squares
  harness run NAME --data STORE --dataset-name ILSVRC-2012
                                    one variant on ImageNet, its paper's recipe
  harness report                    the markdown report under reports/
  harness ui                        MLflow's UI on this store

`harness list` names the variants, `harness COMMAND -h` gives a command's
options, and README.md has a quickstart for a GPU node."""


# `harness -h` lists the subcommands in this order
SUBCOMMANDS = (
    listing.add_list,
    listing.add_show,
    run.add_run,
    evaluation.add_eval,
    analyze.add_analyze,
    sweep.add_sweep,
    report.add_report,
    serve.add_ui,
    bench.add_bench,
    serve.add_server,
    prepare.add_pca,
    prepare.add_prepare,
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (what Slurm and container runtimes send before a kill), raised wherever the program is, as Ctrl-C
    raises KeyboardInterrupt: the step under way is dropped, the last epoch's checkpoint stays, runs and sweeps are
    closed KILLED on the way out, and the exit status is 143 (128 + 15)."""


def _terminate() -> None:
    raise Terminated


def _on_sigterm(signum: int, frame: object) -> None:
    if isinstance(sys.exc_info()[1], KeyboardInterrupt):
        return  # already stopping (an `except` closing runs KILLED): a second SIGTERM does not interrupt that
    if interrupts.defer(_terminate):
        return  # a store write is under way: raised when it ends (harness.interrupts)
    raise Terminated  # (not SIG_IGN after the first: one raised inside a __del__ is lost, and the next must count)


# Ctrl-C: Python's own KeyboardInterrupt, except inside a store write, which it waits for (harness.interrupts); a
# second Ctrl-C while it waits acts at once, and one while runs are being closed interrupts that, as anywhere
_on_sigint = interrupts.waiting(signal.default_int_handler, again_acts=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    # SIGINT keeps an ignored disposition (a process started in the background, or by a parent that ignores it)
    ignored = in_main_thread and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    previous_int = signal.signal(signal.SIGINT, _on_sigint) if in_main_thread and not ignored else None
    try:
        return int(args.func(args) or 0)
    except HarnessError as e:
        print(f"harness: error: {e}", file=sys.stderr)
        return e.exit_code
    except Terminated:
        print("harness: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)


def entry_point(argv: list[str] | None = None) -> int:
    """`python -m harness`: under torchrun, torch's elastic `record` writes an uncaught error's traceback to the
    error file torchrun reads, so that torchrun names the failing rank and its traceback (torch is imported only
    there: `--help` stays fast)."""
    if os.environ.get("TORCHELASTIC_ERROR_FILE"):
        from torch.distributed.elastic.multiprocessing.errors import record

        return record(main)(argv)
    return main(argv)

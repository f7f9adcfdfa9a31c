"""`harness eval`: given weights, a finished run's checkpoint or a registered model, evaluated."""

from __future__ import annotations

import argparse

from harness import mlruns
from harness.cli.common import Subparsers, add_data_options, positive_int, request
from harness.errors import HarnessError
from harness.request import EvalRequest


def add_eval(sub: Subparsers) -> None:
    """`harness eval VARIANT --weights | --run-id | --model`."""
    p = sub.add_parser("eval", help="evaluate given weights, a finished run's checkpoint or a registered model")
    p.add_argument("variant", nargs="?", help="the variant (with --model: default the registered model's name)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="a state-dict file, or IMAGENET1K_V1 for torchvision's official weights")
    src.add_argument("--run-id", help="a finished run whose final checkpoint to evaluate")
    src.add_argument("--model", help="a registered model version: models:/NAME/VERSION (or models:/NAME@ALIAS)")
    add_data_options(p)
    p.add_argument("--tta", choices=["center", "ten_crop"], help="test protocol (default: the recipe's)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="evaluate under a changed recipe field, e.g. --set dropout_scaling=train for weights trained with "
        "nn.Dropout (default: what the run logged; for --weights the variant's own dropout)",
    )
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from harness.runs.weights import evaluate_weights

    req = request(EvalRequest, args)
    if (req.model or req.run_id) and (problem := mlruns.missing(req.uri)):
        raise HarnessError(problem)  # reading a run or a model never creates a store
    outcome = evaluate_weights(req)
    if outcome.is_main:
        print(outcome.line())
    return 0

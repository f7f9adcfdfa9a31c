"""What the subcommands share: range-checked argument types, the option groups of a request's fields, the one place
arguments become a request, and the options a worker process repeats of its parent's command line."""

from __future__ import annotations

import argparse
import typing
from dataclasses import fields

from harness import mlruns
from harness.request import DATASETS, PRECISIONS, PROFILE_NAMES, DataRequest

R = typing.TypeVar("R", bound=DataRequest)
Subparsers = argparse._SubParsersAction  # what `add_subparsers` returns
Options = argparse._ActionsContainer  # a parser or one of its argument groups

# --- argument types -------------------------------------------------------------------------------------------------


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive_int(text: str) -> int:
    value = _int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {value}")
    return value


def int_range(lo: int, hi: int, what: str = "") -> typing.Callable[[str], int]:
    """An argparse type: an integer in lo..hi (`what` names the unit in the message)."""

    def parse(text: str) -> int:
        value = _int(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be {what + ' ' if what else ''}in {lo}..{hi}, got {value}")
        return value

    parse.__name__ = f"integer in {lo}..{hi}"  # argparse names the type in "invalid ... value" messages
    return parse


tcp_port = int_range(1, 65535, "a TCP port")
seed_int = int_range(0, 2**63 - 1)  # torch.manual_seed takes 64 bits; harness.loader.epoch_seed works mod 2**63 - 1


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


# --- option groups: the fields of a request ------------------------------------------------------------------------


def add_data_options(p: Options, *, execution: Options | None = None, tracking: Options | None = None) -> None:
    """The fields of `DataRequest`: data, profile, device, store. `execution` and `tracking` (argument groups of
    `run`) take the device and precision, and the store; by default everything goes to `p`."""
    execution, tracking = execution or p, tracking or p
    p.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        help="paper (default with --data), proxy (default without: mnist5k), smoke (synthetic, seconds)",
    )
    p.add_argument("--data", help="data folder: ImageNet-style train/ and val/ (or a CIFAR-10 folder)")
    p.add_argument("--dataset", help=f"{', '.join(DATASETS)} (default from the profile and --data)")
    p.add_argument("--dataset-name", help="what the data is, for the report, e.g. ILSVRC-2012 or ILSVRC-2010")
    execution.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    add_store_option(tracking)
    p.add_argument(
        "--workers",
        type=non_negative_int,
        help="DataLoader worker processes (default: 0 for data in memory, else this process's CPUs - 1, at most 8)",
    )
    execution.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32 (the papers', default), tf32 or bf16 (autocast); anything but fp32 is a recorded deviation",
    )
    p.add_argument("--limit-train", type=positive_int, help="use only the first N training images (a slice)")
    p.add_argument("--limit-val", type=positive_int, help="use only the first N validation images (a slice)")


def add_store_option(p: Options) -> None:
    p.add_argument(
        "--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlruns/mlflow.db)"
    )


def add_recipe_options(p: Options, *, batch_size: bool = True, seeds: Options | None = None) -> None:
    """Changes to the recipe: --epochs, --batch-size, --seed (to `seeds`, `run`'s group, if given), --set."""
    p.add_argument("--epochs", type=positive_int, help="epochs (default: the profile's or the recipe's)")
    if batch_size:
        p.add_argument("--batch-size", type=positive_int, help="global batch size (all ranks together)")
    # a worker is given its own seed: `harness.pool` (run --jobs) and `harness.sweep.command` (sweep --jobs) add --seed
    parent_only((seeds or p).add_argument("--seed", type=seed_int, help="training seed (default 0)"))
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a recipe field, e.g. --set lr=0.005 (marks the run recipe_modified)",
    )


def add_ui_url_option(p: Options) -> None:
    p.add_argument(
        "--ui-url",
        help="the MLflow UI the report links runs to (default: `harness ui`'s http://127.0.0.1:5000 for a local "
        "store, the server itself for an http store)",
    )


# --- arguments to requests, and to a worker's command line ---------------------------------------------------------


def request(cls: type[R], args: argparse.Namespace, **extra: object) -> R:
    """The one place arguments become a request: every field of `cls` that the parser defines, plus `extra`."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    if isinstance(values.get("names"), list):
        values["names"] = tuple(values["names"])
    if values.get("seed") is None:
        values.pop("seed", None)  # the request's default (0): `--seed` not given
    if "sets" in values:
        from harness.config import parse_set

        values["sets"] = parse_set(list(values["sets"]))
    return cls(**(values | extra))


def parent_only(action: argparse.Action) -> argparse.Action:
    """Mark an option that a worker process does not repeat from its parent's command line (`child_options`): what
    the parent decides for each worker (its variant and seed, the plan, the pool itself, the report). Every other
    option a worker repeats, so that a new option reaches the workers unless it is marked here where it is defined."""
    action.parent_only = True  # type: ignore[attr-defined]
    return action


def forwarded(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options of `parser` that a worker repeats: not positionals, not `-h`, not `parent_only` ones, and not the
    store (`child_options` gives it resolved)."""
    return [
        a
        for a in parser._actions
        if a.option_strings
        and not isinstance(a, argparse._HelpAction)
        and not getattr(a, "parent_only", False)
        and a.dest != "tracking_uri"
    ]


def child_options(args: argparse.Namespace) -> list[str]:
    """The `run` (or `sweep`) options given (not left at their defaults), as a worker's command line repeats them;
    the store as the resolved URI, so that every worker writes to the parent's."""
    out: list[str] = []
    for action in forwarded(args.run_parser):
        value = getattr(args, action.dest, None)
        if isinstance(action, argparse.BooleanOptionalAction):  # --X / --no-X as given; None: the worker's default
            out += [] if value is None else [action.option_strings[0 if value else 1]]
            continue
        flag = action.option_strings[-1]
        if value is None or value is False or (value == action.default and not isinstance(value, list)):
            continue
        if value is True:
            out.append(flag)
        elif isinstance(value, list):
            out += [part for v in value for part in (flag, str(v))]
        else:
            out += [flag, str(value)]
    return out + ["--tracking-uri", mlruns.resolve(args.tracking_uri)]

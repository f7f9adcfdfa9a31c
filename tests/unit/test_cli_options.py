"""Every subcommand's options, as the parser defines them, equal a committed record (`golden/cli_options.json`):
option strings, destination, default, choices, `nargs`, action kind, type, requiredness, metavar and help. A change
to the command line is then a visible change to that file, and moving code between modules changes nothing.

After an intended change to an option, regenerate the record and review its diff:
    PYTHONPATH=. python -c "from tests.unit.test_cli_options import write; write()"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness import cli
from harness.cli import common

GOLDEN = Path(__file__).parent / "golden" / "cli_options.json"


def _plain(value: object) -> object:
    """A default or choice as JSON holds it: Paths and other objects by their str, tuples as lists."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def _action(action: argparse.Action, exclusive: dict[int, int]) -> dict[str, object]:
    kind = type(action).__name__.lstrip("_")
    return {
        "option_strings": list(action.option_strings),
        "dest": action.dest,
        "default": _plain(action.default),
        "choices": _plain(action.choices),
        "nargs": _plain(action.nargs),
        "action": kind,
        "type": None if action.type is None else getattr(action.type, "__name__", str(action.type)),
        "required": action.required,
        "metavar": _plain(action.metavar),
        "help": action.help,
        "exclusive_group": exclusive.get(id(action)),
    }


def snapshot(parser: argparse.ArgumentParser) -> dict[str, object]:
    """{subcommand: {"actions": [...], "defaults": {...}}} of every subparser, in definition order."""
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    out: dict[str, object] = {}
    for name, p in sub.choices.items():
        exclusive = {id(a): i for i, g in enumerate(p._mutually_exclusive_groups) for a in g._group_actions}
        out[name] = {
            "help": next(c.help for c in sub._choices_actions if c.dest == name),
            "actions": [_action(a, exclusive) for a in p._actions],
            "required_groups": [g.required for g in p._mutually_exclusive_groups],
            # set_defaults beyond the actions' (the handler and the parser itself are objects, not options)
            "defaults": {k: _plain(v) for k, v in sorted(p._defaults.items()) if k not in ("func", "run_parser")},
        }
    return out


def write() -> None:
    """One line per action, so that a diff names the option that changed."""
    lines = ["{"]
    records = snapshot(cli.build_parser())
    for i, (name, rec) in enumerate(records.items()):
        lines.append(f" {json.dumps(name)}: {{")
        lines.append(f'  "help": {json.dumps(rec["help"])},')
        lines.append('  "actions": [')
        lines += [f"   {json.dumps(a)}," for a in rec["actions"]]
        lines[-1] = lines[-1].rstrip(",")
        lines.append("  ],")
        lines.append(f'  "required_groups": {json.dumps(rec["required_groups"])},')
        lines.append(f'  "defaults": {json.dumps(rec["defaults"])}')
        lines.append(" }" + ("," if i < len(records) - 1 else ""))
    GOLDEN.write_text("\n".join(lines + ["}"]) + "\n")


def _by_option(actions: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    """Actions keyed by their first option string (a positional by its dest): argument groups may reorder them."""
    return {str((a["option_strings"] or [a["dest"]])[0]): a for a in actions}


def test_every_subcommand_option_is_as_recorded() -> None:
    expected = json.loads(GOLDEN.read_text())
    got = json.loads(json.dumps(snapshot(cli.build_parser())))
    assert sorted(got) == sorted(expected)
    for name in expected:
        want, have = expected[name], got[name]
        assert _by_option(have["actions"]) == _by_option(want["actions"]), name
        assert [a["dest"] for a in have["actions"] if not a["option_strings"]] == [
            a["dest"] for a in want["actions"] if not a["option_strings"]
        ], name  # positionals keep their order
        assert (have["help"], have["required_groups"], have["defaults"]) == (
            want["help"],
            want["required_groups"],
            want["defaults"],
        ), name


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[command]


def _every_option_given(parser: argparse.ArgumentParser, command: str, positional: list[str]) -> list[str]:
    """`command` with every option set away from its default (values that parse; not that make sense together)."""
    argv = [command, *positional]
    for a in _subparser(parser, command)._actions:
        if not a.option_strings or a.dest == "help":
            continue
        flag = a.option_strings[0]
        if a.nargs == 0:
            argv.append(flag)  # store_true, and BooleanOptionalAction's --flag (True, not the default None)
        elif a.choices:
            argv += [flag, next(str(c) for c in a.choices if c != a.default)]
        elif a.dest == "sets":
            argv += [flag, "lr=0.5"]
        elif a.dest == "gpus":
            argv += [flag, "0,1"]
        else:
            argv += [flag, "7"]  # every typed option takes 7 (ports and qualities too); strings take it as text
    return argv


# what a `--jobs` worker (run) or a `--jobs` sweep worker repeats of its parent's command line: pinned, so that moving
# where the options are defined forwards exactly the same ones (the store always, as the resolved URI)
RUN_FORWARDED = {
    "--profile", "--data", "--dataset", "--dataset-name", "--device", "--tracking-uri", "--workers", "--precision",
    "--limit-train", "--limit-val", "--epochs", "--batch-size", "--set", "--checkpoint-dir", "--from-sweep",
    "--sweep-storage", "--wait", "--compile", "--register", "--keep-weights", "--system-metrics", "--ui-url",
    "--parallel", "--dist-timeout", "--launcher", "--partition", "--time", "--nodes", "--gpus-per-node",
    "--cpus-per-task", "--array-parallelism",
}  # fmt: skip
SWEEP_FORWARDED = {
    "--storage", "--space", "--timeout", "--pruner", "--epochs", "--set", "--profile", "--data", "--dataset",
    "--dataset-name", "--device", "--tracking-uri", "--workers", "--precision", "--limit-train", "--limit-val",
    "--report", "--ui-url",
}  # fmt: skip


def test_workers_repeat_exactly_the_pinned_options(tmp_path) -> None:
    parser = cli.build_parser()
    for command, positional, expected in (("run", ["zfnet"], RUN_FORWARDED), ("sweep", ["zfnet"], SWEEP_FORWARDED)):
        argv = _every_option_given(parser, command, positional)
        argv[argv.index("--tracking-uri") + 1] = f"sqlite:///{tmp_path}/m.db"
        options = cli.child_options(parser.parse_args(argv))
        by_flag = _subparser(parser, command)._option_string_actions
        # named by the first option string: BooleanOptionalAction's --no-X is the option --X
        assert {by_flag[o].option_strings[0] for o in options if o.startswith("--")} == expected, command


def test_an_option_is_forwarded_unless_marked_where_it_is_defined() -> None:
    """What a worker repeats is decided where each option is defined (`common.parent_only`), not in a list."""
    parser = cli.build_parser()
    for command in ("run", "sweep"):
        p = _subparser(parser, command)
        marked = {a.option_strings[0] for a in p._actions if getattr(a, "parent_only", False)}
        given = {a.option_strings[0] for a in common.forwarded(p)} | {"--tracking-uri"}
        assert given | marked | {"-h"} == {a.option_strings[0] for a in p._actions if a.option_strings}
        assert given == (RUN_FORWARDED if command == "run" else SWEEP_FORWARDED)


def test_a_worker_repeats_yes_or_no_as_given(tmp_path) -> None:
    """`--register` reaches a `--jobs` worker as `--register`, `--no-keep-weights` as `--no-keep-weights`, and an
    option left at None not at all (the worker's profile decides, as the parent's would)."""
    parser = cli.build_parser()
    argv = [
        "run",
        "zfnet",
        "--jobs",
        "2",
        "--register",
        "--no-keep-weights",
        "--tracking-uri",
        f"sqlite:///{tmp_path}/m.db",
    ]
    options = cli.child_options(parser.parse_args(argv))
    assert options[:2] == ["--register", "--no-keep-weights"] and "--system-metrics" not in " ".join(options)

"""`harness --help` describes the program to a user: what it does and its main commands (in process)."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from harness.cli import build_parser, main


def help_text(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    return out.getvalue()


def example_commands(text: str) -> list[list[str]]:
    """The description's example lines, `  harness ARGS   what it does`, as argument lists."""
    lines = [line for line in text.splitlines() if line.startswith("  harness ")]
    return [re.split(r"\s{2,}", line.strip())[0].split()[1:] for line in lines]


def test_top_level_help_describes_the_program_and_its_main_commands() -> None:
    text = help_text(["--help"])
    assert "AlexNet family" in text and "MLflow" in text and "report" in text
    assert "README.md" in text
    assert [argv[0] for argv in example_commands(text)] == ["run", "prepare", "run", "report", "ui"]
    # the module docstring is for developers: its wording is not the program's description
    assert "parser and handler" not in text


def test_every_example_command_in_the_help_parses() -> None:
    parser = build_parser()
    for argv in example_commands(help_text(["--help"])):
        args = parser.parse_args(argv)
        assert args.command == argv[0]


def test_run_help_puts_every_option_in_a_group() -> None:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    run = sub.choices["run"]
    titled = {g.title: [a.dest for a in g._group_actions] for g in run._action_groups}
    assert titled.pop("options") == ["help"] and titled.pop("positional arguments") == []
    assert list(titled) == [
        "what to train", "recipe changes", "data", "seeds and plan", "execution", "tracking and report",
        "many runs: worker processes on this node, or submitit jobs",
    ]  # fmt: skip
    assert sorted(d for dests in titled.values() for d in dests) == sorted(a.dest for a in run._actions[1:])
    text = help_text(["run", "--help"])
    assert all(f"\n{title}:\n" in text for title in titled)

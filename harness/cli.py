"""The command line: parse, dispatch to one plain function per subcommand, turn bad input into one line + exit 2.

Control flow of the main job: `run` -> harness.runner.run_variants -> engine.fit / evaluate -> tracking -> report.
"""

from __future__ import annotations

import argparse
import sys
import typing

from harness.errors import HarnessError


def _cmd_list(args: argparse.Namespace) -> int:
    from harness import catalog
    from variants import list_variants

    print(catalog.list_json(list_variants()) if args.json else catalog.list_table(list_variants()))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from harness import catalog

    print(catalog.show(_variant(args.name)))
    return 0


def _variant(name: str):  # noqa: ANN202 - Variant, imported lazily
    from variants import UnknownVariantError, get_variant

    try:
        return get_variant(name)
    except UnknownVariantError as e:
        raise HarnessError(str(e)) from None


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line (`harness run: error: ...`) and exit status 2; `-h` still prints the usage."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} -h`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list registered variants with computed and reported parameter counts")
    p.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("show", help="architecture, recipe, reported numbers and deviations of one variant")
    p.add_argument("name")
    p.set_defaults(func=_cmd_show)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


_EXTRA_COMMANDS: list = []


def _load_extra_commands() -> None:
    """Subcommands that live next to their concern register themselves here (run, eval, report, sweep, ui)."""
    import importlib

    if _EXTRA_COMMANDS:
        return
    for module in ("harness.commands",):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue
        _EXTRA_COMMANDS.extend(mod.REGISTER)


def main(argv: list[str] | None = None) -> int:
    _load_extra_commands()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HarnessError as e:
        print(f"harness: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

"""`harness list` and `harness show`: the registry's variants (the counting is `harness.catalog`'s)."""

from __future__ import annotations

import argparse

from harness.cli.common import Subparsers
from harness.errors import HarnessError


def add_list(sub: Subparsers) -> None:
    """`harness list [--json]`."""
    p = sub.add_parser("list", help="list registered variants with computed and reported parameter counts")
    p.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    p.set_defaults(func=cmd_list)


def add_show(sub: Subparsers) -> None:
    """`harness show NAME`."""
    p = sub.add_parser("show", help="architecture, recipe, reported numbers and deviations of one variant")
    p.add_argument("name")
    p.set_defaults(func=cmd_show)


def cmd_list(args: argparse.Namespace) -> int:
    from harness import catalog
    from variants import list_variants

    print(catalog.list_json(list_variants()) if args.json else catalog.list_table(list_variants()))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from harness import catalog
    from variants import UnknownVariantError, get_variant

    try:
        variant = get_variant(args.name)
    except UnknownVariantError as e:
        raise HarnessError(str(e)) from None
    print(catalog.show(variant))
    return 0

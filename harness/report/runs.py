"""Which runs count, and how they group: finished runs with the paper's recipe, their data sets and splits, and a
run's accuracy under one test protocol. Pure: shared by every computation of the report."""

from __future__ import annotations

from collections.abc import Iterable

from harness.report.types import RunRow
from variants import Variant


def run_metric(row: RunRow, protocol: str, metric: str) -> float | None:
    """A run's accuracy under `protocol`: its `<protocol>_val_<metric>`, else its final metric if that protocol."""
    value = getattr(row, f"{protocol}_{metric}", None)
    if value is None and row.protocol == protocol:
        value = getattr(row, f"final_{metric}")
    return value


def plain_runs(rows: Iterable[RunRow]) -> list[RunRow]:
    """Finished variant runs with the paper's recipe: the only runs that count as reproductions."""
    return [r for r in rows if r.kind == "variant" and r.finished and not r.recipe_modified]


def order(rows: Iterable[RunRow]) -> list[RunRow]:
    return sorted(rows, key=lambda r: (r.data, r.split, r.variant, r.seed is None, r.seed or 0, r.run_id))


def paper_datasets(variants: Iterable[Variant]) -> set[str]:
    return {r.dataset for v in variants for r in v.reported}


def groups(rows: Iterable[RunRow]) -> list[tuple[str, str]]:
    """(data, split) pairs the variant runs used, sorted."""
    return sorted({(r.data, r.split) for r in rows if r.kind == "variant"})


def proxy_groups(rows: Iterable[RunRow], variants: Iterable[Variant]) -> list[tuple[str, str]]:
    """Data sets no paper reports on (e.g. the mnist5k proxy)."""
    known = paper_datasets(variants)
    return [g for g in groups(rows) if g[0] not in known]


def data_label(data: str, split: str, proxy: bool) -> str:
    return f"{data} (proxy) {split}" if proxy else f"{data} {split}"


def other_protocol(protocol: str) -> str:
    """The protocol a protocol claim compares against: the centre crop for the multi-crop ones, else 10-crop."""
    return "center" if protocol in ("ten_crop", "five_crop") else "ten_crop"

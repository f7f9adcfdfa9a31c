"""Section 5 of the report: the variants run on proxy data (no paper reports on it), ranked by top-1, each
ablation beside its base variant. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.report.runs import order, other_protocol, plain_runs, run_metric
from harness.report.stats import summarize
from harness.report.types import RunRow, Stat
from variants import Variant


@dataclass(frozen=True)
class ProxyRow:
    variant: str
    protocol: str
    top1: Stat | None  # under the variant's own test protocol (final_val_top1)
    top5: Stat | None
    center_top1: Stat | None  # every variant under one protocol
    runs: int
    unfinished: int
    not_learned: int
    base: str | None
    change: float | None  # top-1 change against `base`, both under the base's protocol
    run_ids: tuple[str, ...]


def proxy_table(rows: Sequence[RunRow], variants: Sequence[Variant], data: str, split: str) -> list[ProxyRow]:
    """Variants run on one data set, best top-1 first (variants with no finished run last, registry order)."""
    by_name = {v.name: v for v in variants}
    here = [
        x for x in order(rows) if x.kind == "variant" and (x.data, x.split) == (data, split) and not x.recipe_modified
    ]  # tuned runs are listed under Deviations, not ranked
    plain = plain_runs(here)
    names = sorted(
        {x.variant for x in here}, key=lambda n: (n not in by_name, list(by_name).index(n) if n in by_name else 0, n)
    )

    def mean_under(name: str, protocol: str) -> float | None:
        s = summarize(run_metric(x, protocol, "top1") for x in plain if x.variant == name)
        return None if s is None else s.mean

    def change_against(name: str, base: str) -> float | None:
        """Under the base's protocol, else the other one if only that was logged for both."""
        first = by_name[base].recipe.test_protocol if base in by_name else "center"
        for protocol in (first, other_protocol(first)):
            a, b = mean_under(name, protocol), mean_under(base, protocol)
            if a is not None and b is not None:
                return a - b
        return None

    out = []
    for name in names:
        mine = [x for x in plain if x.variant == name]
        all_mine = [x for x in here if x.variant == name]
        base = by_name[name].ablation_of if name in by_name else None
        change = change_against(name, base) if base else None
        out.append(
            ProxyRow(
                variant=name,
                protocol=", ".join(sorted({x.protocol for x in mine})) or "-",
                top1=summarize(x.final_top1 for x in mine),
                top5=summarize(x.final_top5 for x in mine),
                center_top1=summarize(x.center_top1 for x in mine),
                runs=len(all_mine),
                unfinished=len([x for x in all_mine if not x.finished]),
                not_learned=len([x for x in mine if x.learned == 0.0]),
                base=base,
                change=change,
                run_ids=tuple(x.run_id for x in mine),
            )
        )
    return sorted(out, key=lambda p: (p.top1 is None, -(p.top1.mean if p.top1 else 0.0), names.index(p.variant)))

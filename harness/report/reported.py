"""Section 1 of the report: each number the papers report beside its reproduction, and its status. Pure.

Status of a reported number, first rule that applies:
  reference only  another network or recipe produced the number (Reported.reference_only): shown with its note,
                  never compared;
  not run         no run of the variant at all, or none finished, or (ensembles) fewer finished runs on the
                  reported data than the ensemble has networks;
  not comparable  finished runs exist, but none on the reported data set (tag `dataset_name`), split, pretraining
                  and protocol (a `<protocol>_val_top1` metric, or `final_val_top1` of a run whose
                  `test_protocol` is that protocol); no difference is computed;
  modified recipe the only matching runs changed the paper's recipe (tag `recipe_modified`): never a reproduction;
  reproduced      |mean top-1 over seeds - reported top-1| <= Reported.tolerance (top-5 when no top-1 is reported);
  not reproduced  otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from harness.report import fmt
from harness.report.runs import order, run_metric
from harness.report.stats import summarize
from harness.report.types import EnsembleResult, RunRow, Stat
from variants import Reported, Variant

Status = Literal["reproduced", "not reproduced", "not comparable", "modified recipe", "not run", "reference only"]
STATUSES: tuple[Status, ...] = (
    "reproduced",
    "not reproduced",
    "not comparable",
    "modified recipe",
    "not run",
    "reference only",
)


@dataclass(frozen=True)
class Comparison:
    variant: str
    reported: Reported
    status: Status
    top1: Stat | None  # reproduced, over seeds (an ensemble: one value, n = 1)
    top5: Stat | None
    diff: float | None  # reproduced - reported, on `diff_metric`; None unless reproduced / not reproduced
    diff_metric: str
    run_ids: tuple[str, ...]
    note: str


def needs(r: Reported) -> str:
    """What a run must have to test this reported number."""
    data = f"ImageNet ({r.dataset} {r.split})" if r.dataset.startswith("ILSVRC") else f"{r.dataset} ({r.split})"
    if r.dataset == "ILSVRC-2012" and r.split == "test":
        data += " whose labels only the ILSVRC evaluation server holds"
    parts = [data, f"{fmt.protocol(r.protocol)} evaluation"]
    if r.ensemble > 1:
        parts.append(f"an ensemble of {r.ensemble} runs")
    if r.pretrained:
        parts.append(f"pretraining on {r.pretrained}")
    return "needs " + ", ".join(parts)


def describe_data(runs: Sequence[RunRow]) -> str:
    """Which data finished runs used, with their accuracy (own protocol), for information only."""
    keys = sorted({(r.data, r.split, r.protocol) for r in runs})
    parts = []
    for data, split, protocol in keys:
        s = summarize(r.final_top1 for r in runs if (r.data, r.split, r.protocol) == (data, split, protocol))
        parts.append(f"{data} {split} ({fmt.protocol(protocol)}): top-1 {fmt.stat(s)}")
    return "runs used " + "; ".join(parts)


def _matches(row: RunRow, r: Reported, metric: str) -> bool:
    return (
        row.dataset_name == r.dataset
        and row.split == r.split
        and row.pretrained == r.pretrained
        and run_metric(row, r.protocol, metric) is not None
    )


def _status(mean: float, reference: float, tolerance: float) -> Status:
    return "reproduced" if abs(mean - reference) <= tolerance else "not reproduced"


def compare(variant: Variant, r: Reported, rows: Sequence[RunRow], ensembles: Sequence[EnsembleResult]) -> Comparison:
    metric = "top1" if r.top1 is not None else "top5"
    reference = r.top1 if r.top1 is not None else r.top5

    def result(
        status: Status,
        note: str,
        top1: Stat | None = None,
        top5: Stat | None = None,
        ids: Iterable[str] = (),
        diff: float | None = None,
    ) -> Comparison:
        return Comparison(variant.name, r, status, top1, top5, diff, metric, tuple(ids), note)

    if r.reference_only:  # another network or recipe produced it: a reference point, not a target
        return result("reference only", "; ".join(x for x in ("not a reproduction target", r.note) if x))
    runs = [x for x in rows if x.kind == "variant" and x.variant == variant.name]
    finished = [x for x in runs if x.finished]
    if not finished:
        failed = f"; {len(runs)} run(s) did not finish" if runs else ""
        return result("not run", needs(r) + failed)
    matching = order(x for x in finished if _matches(x, r, metric))
    if not matching:
        return result("not comparable", describe_data(order(finished)) + "; no difference computed")
    plain = [x for x in matching if not x.recipe_modified]
    if r.ensemble > 1:
        return _compare_ensemble(variant, r, plain, ensembles)
    top1 = summarize(run_metric(x, r.protocol, "top1") for x in (plain or matching))
    top5 = summarize(run_metric(x, r.protocol, "top5") for x in (plain or matching))
    if not plain:
        keys = sorted({k for x in matching for k in x.modified_keys.split(",") if k})
        return result(
            "modified recipe",
            f"only runs with a modified recipe ({', '.join(keys) or 'unknown keys'}); not a reproduction",
            top1,
            top5,
            (x.run_id for x in matching),
        )
    s = top1 if metric == "top1" else top5
    assert s is not None and reference is not None  # _matches guarantees the metric
    diff = s.mean - reference
    note = "" if metric == "top1" else "compared on top-5 (no top-1 reported)"
    return result(_status(s.mean, reference, r.tolerance), note, top1, top5, (x.run_id for x in plain), diff)


def _compare_ensemble(
    variant: Variant, r: Reported, plain: Sequence[RunRow], ensembles: Sequence[EnsembleResult]
) -> Comparison:
    metric = "top1" if r.top1 is not None else "top5"
    key = (variant.name, r.dataset, r.split, r.protocol, r.pretrained, r.ensemble)
    found = [e for e in ensembles if (e.variant, e.data, e.split, e.protocol, e.pretrained, e.k) == key]
    if not found:
        have = len([x for x in plain if x.protocol == r.protocol])
        note = f"{needs(r)}; {have} finished run(s) with the paper's recipe on this data"
        return Comparison(variant.name, r, "not run", None, None, None, metric, (), note)
    e = found[0]
    value, reference = (e.top1, r.top1) if r.top1 is not None else (e.top5, r.top5)
    assert reference is not None
    return Comparison(
        variant.name,
        r,
        _status(value, reference, r.tolerance),
        Stat(e.top1, None, 1),
        Stat(e.top5, None, 1),
        value - reference,
        metric,
        e.run_ids,
        f"softmax of {e.k} runs averaged",
    )


def compare_all(
    variants: Sequence[Variant], rows: Sequence[RunRow], ensembles: Sequence[EnsembleResult]
) -> list[Comparison]:
    return [compare(v, r, rows, ensembles) for v in variants for r in v.reported]

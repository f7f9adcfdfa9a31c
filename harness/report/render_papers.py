"""The report's sections on the papers' own numbers: reproduced versus reported (a table, or one line per variant
when every run is on proxy data), ensembles and architecture fidelity. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.report import fmt
from harness.report.fidelity import APPROXIMATE, MACS_TOL_G, SIZE_TOL_MB, approx_match, fidelity
from harness.report.reported import STATUSES, Comparison
from harness.report.runs import data_label, proxy_groups
from harness.report.types import ReportInputs

if TYPE_CHECKING:
    from variants import Variant


MARK = {True: "yes", False: "**NO**", None: "-"}
ENSEMBLES = (
    "KSH12 averages the softmax outputs of several networks. An ensemble here averages the saved validation "
    "softmax (`predictions/val_predictions.npz`) of that many finished runs of the variant with the paper's "
    "recipe on one data set, lowest seeds first."
)


def _data_cell(c: Comparison) -> str:
    r = c.reported
    text = f"{r.dataset} {r.split}"
    if r.ensemble > 1:
        text += f", ensemble of {r.ensemble}"
    if r.pretrained:
        text += f", pretrained on {r.pretrained}"
    return text


def _diff(c: Comparison) -> str:
    if c.diff is None:
        return fmt.DASH
    return fmt.signed(c.diff) + (" (top-5)" if c.diff_metric == "top5" else "")


def section_reported(comparisons: Sequence[Comparison]) -> list[str]:
    header = [
        "variant",
        "data set, split",
        "protocol",
        "source",
        "reported top-1",
        "reported top-5",
        "reproduced top-1",
        "reproduced top-5",
        "difference",
        "status",
        "runs / note",
    ]
    body = []
    for c in comparisons:
        r = c.reported
        note = "; ".join(x for x in (fmt.run_ids(c.run_ids) if c.run_ids else "", c.note) if x)
        body.append(
            [
                f"`{c.variant}`",
                _data_cell(c),
                fmt.protocol(r.protocol),
                r.source,
                fmt.reported(r.top1),
                fmt.reported(r.top5),
                fmt.stat(c.top1),
                fmt.stat(c.top5),
                _diff(c),
                f"**{c.status}**",
                note or fmt.DASH,
            ]
        )
    return ["## Reproduced versus reported", "", *fmt.table(header, body), ""]


def section_reported_folded(comparisons: Sequence[Comparison]) -> list[str]:
    """Reproduced versus reported on a report of proxy runs only: no run is on a paper's data set, so one line per
    variant counts its reported numbers by status instead of a table of rows that compare nothing."""
    out = [
        "## Reproduced versus reported",
        "",
        "Every run in this report is on proxy data, so no number the papers report is compared here; per variant, "
        "how many reported numbers there are and why none is compared (`harness show VARIANT` lists them):",
        "",
    ]
    for variant in dict.fromkeys(c.variant for c in comparisons):
        mine = [c for c in comparisons if c.variant == variant]
        counts = ", ".join(f"{n} {status}" for status in STATUSES if (n := sum(c.status == status for c in mine)))
        out.append(f"- `{variant}`: {len(mine)} reported number{'s' if len(mine) != 1 else ''}: {counts}")
    return [*out, ""]


def section_ensembles(inputs: ReportInputs, comparisons: Sequence[Comparison]) -> list[str]:
    out = ["## Ensembles", "", ENSEMBLES, ""]
    rows = [c for c in comparisons if c.reported.ensemble > 1]
    out += fmt.table(
        ["variant", "networks", "data set, split", "source", "reported top-1", "reported top-5", "status", "note"],
        (
            [
                f"`{c.variant}`",
                str(c.reported.ensemble),
                _data_cell(c),
                c.reported.source,
                fmt.reported(c.reported.top1),
                fmt.reported(c.reported.top5),
                f"**{c.status}**",
                "; ".join(x for x in (c.note, "" if c.reported.note in c.note else c.reported.note) if x),
            ]
            for c in rows
        ),
    )
    out.append("")
    if inputs.ensembles:
        proxies = {d for d, _ in proxy_groups(inputs.rows, inputs.variants)}
        out += ["Ensembles computed from the runs (on any data set):", ""]
        out += fmt.table(
            ["variant", "networks", "data set, split", "protocol", "top-1", "top-5", "runs"],
            (
                [
                    f"`{e.variant}`",
                    str(e.k),
                    data_label(e.data, e.split, e.data in proxies),
                    fmt.protocol(e.protocol),
                    fmt.num(e.top1),
                    fmt.num(e.top5),
                    fmt.run_ids(e.run_ids, limit=10),
                ]
                for e in sorted(inputs.ensembles, key=lambda e: (e.variant, e.k, e.data, e.split, e.protocol))
            ),
        )
    else:
        out.append("No variant has enough finished runs on one data set to form an ensemble.")
    return out + [""]


def _class_counts(variants: Sequence[Variant]) -> str:
    """ "1,000 classes, 10 for `a`, `b`": the commonest count, then the variants built with another."""
    by_count: dict[int, list[str]] = {}
    for v in variants:
        by_count.setdefault(v.num_classes, []).append(v.name)
    if not by_count:
        return "none"
    common = max(by_count, key=lambda n: len(by_count[n]))
    others = [f"{n:,} for {', '.join(f'`{name}`' for name in names)}" for n, names in by_count.items() if n != common]
    return ", ".join([f"{common:,} classes", *others])


def section_fidelity(inputs: ReportInputs) -> list[str]:
    intro = (
        "Computed from the built models at each variant's native input size and class count (that of the data its "
        f"reported numbers are for: {_class_counts(inputs.variants)}); measurable on any machine. "
        f"Parameters must match exactly, GMACs within {MACS_TOL_G} (the reported figure's precision), "
        f"size within {SIZE_TOL_MB} MiB (a weights file adds serialisation overhead)."
    )
    out = ["## Architecture fidelity", "", intro, ""]
    body = []
    for v in inputs.variants:
        m = inputs.measured.get(v.name)
        if m is None:
            continue
        f = fidelity(v, m.params, m.macs, m.size_mb)
        body.append(
            [
                f"`{v.name}`",
                f"{f.params:,}",
                f"{f.reported_params:,}" if f.reported_params else fmt.DASH,
                MARK[f.params_match],
                f"{f.gmacs:.3f}",
                fmt.reported(f.reported_gmacs),
                MARK[f.gmacs_match],
                f"{f.size_mb:.3f}",
                fmt.reported(f.reported_size_mb),
                MARK[f.size_match],
            ]
        )
    if not body:
        return out + ["Not measured.", ""]
    out += fmt.table(
        [
            "variant",
            "params",
            "reported params",
            "match",
            "GMACs",
            "reported GMACs",
            "match",
            "size MiB",
            "reported MiB",
            "match",
        ],
        body,
    )
    approx = [(a, inputs.measured[a.variant]) for a in APPROXIMATE if a.variant in inputs.measured]
    if approx:
        out += ["", "Approximate figures from the papers' prose:", ""]
        for a, m in approx:
            ok, rel = approx_match(a, m.params)
            out.append(
                f"- `{a.variant}`: {a.source}: computed {m.params:,} ({rel * 100:+.1f} %): "
                f"{'~yes' if ok else '**NO**'} (within {a.rel_tol * 100:g} %)"
            )
    return out + [""]

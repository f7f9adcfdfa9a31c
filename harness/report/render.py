"""`render(inputs) -> markdown`: a pure function of the report's inputs. No clock, no files, no MLflow; everything
is sorted, so the same inputs give the same bytes."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from harness import plan, schema
from harness.report import fmt, gap, qual
from harness.report import parallel as parallel_section
from harness.report.claims import ClaimResult, check_claims, families
from harness.report.fidelity import APPROXIMATE, MACS_TOL_G, SIZE_TOL_MB, approx_match, fidelity
from harness.report.proxy import ProxyRow, proxy_table
from harness.report.reported import STATUSES, Comparison, compare_all
from harness.report.runs import data_label, groups, order, plain_runs, proxy_groups
from harness.report.stats import ALPHA
from harness.report.sweeps import sweep_note
from harness.report.types import ReportInputs, RunRow, SweepRow
from harness.report.verdicts import VERDICTS, Families

if TYPE_CHECKING:
    from variants import Claim, Variant

MARK = {True: "yes", False: "**NO**", None: "-"}
HOW_TO_READ = (
    "Every number below is computed from tracked runs; none is typed by hand. Reproduced versus reported has one "
    "row per number the papers report. Its status is `reproduced` when the mean over seeds is within the "
    "variant's tolerance of the reported top-1 (top-5 where only that is reported), `not reproduced` when it is not, "
    "`not comparable` when the runs used another data set, split or protocol (then no difference is "
    "computed), `modified recipe` when the only matching runs changed the paper's recipe, `not run` with "
    "what the number needs, and `reference only` when another network or recipe produced the number (shown, never "
    "a target). Accuracies are percentages, shown as mean ± sample standard deviation over seeds "
    "with n; differences are reproduced minus reported."
)
CLAIM_RULE = (
    "Paper claims are differences variant minus baseline with a 95 % confidence interval: a paired t on the "
    "per-seed differences where both sides have the same seeds (seed s of both sides shares its init and data "
    "order), Welch's t otherwise; judged only with at least 3 seeds a side. Each family of claims, the papers' data "
    "and proxy data, is fixed before any run (Paper claims gives its size) and corrected with Holm's step-down at "
    "family-wise alpha 0.05: sorted by p-value, the k-th of m claims is decided at level 0.05 / (m - k + 1) while "
    "every claim before it was, and read on the interval of that level (95 % in a family of one). On the papers' "
    "data a decided claim `holds` when that interval excludes 0 on the claimed side and overlaps half to twice the "
    'claimed change (reaches the bound of an "over" claim; lies within the bound of a "changes little" claim), and '
    "`does not hold` when it excludes 0 on the other side or lies within half the claim; a claim with a direction "
    "and no size holds when the interval excludes 0 on the claimed side. On proxy data the papers' sizes mean "
    "nothing, so only the direction is tested: a decided claim is `supported` or `contradicted` by the sign of the "
    "difference. `not testable here` marks a claim the data cannot test, with the reason (a top-5 claim on data with "
    "at most 10 classes: top-5 of so few classes carries no information); it stays out of the families. Anything "
    "else is `inconclusive`, with the smallest difference its seeds detect and how many seeds a side would decide it "
    "at the measured spread (power 0.8 at two-sided alpha 0.05 / m). The rule is `verdicts` in "
    "`harness/report/compute.py`, its statistics in `harness/report/stats.py`. "
    "A speedup claim (KSH12 Fig. 1) compares the training images each run saw until its running training error "
    "first fell to the threshold, as a ratio baseline / variant (a t on the logs): on the papers' data it holds "
    "when the interval excludes 1 on the claimed side and overlaps half to twice the claimed factor."
)
ENSEMBLES = (
    "KSH12 averages the softmax outputs of several networks. An ensemble here averages the saved validation "
    "softmax (`predictions/val_predictions.npz`) of that many finished runs of the variant with the paper's "
    "recipe on one data set, lowest seeds first."
)
PROXY = (
    "Accuracy on data sets no paper reports on. Ranked by top-1 under each variant's own test protocol; "
    "`center top-1` puts every variant on one protocol. An ablation's change is its mean top-1 minus its "
    "base variant's, both under the base's protocol. These numbers check that the harness trains each "
    "variant; they are not reproductions."
)
KERNELS = (
    "conv1 filters of one trained run per variant (lowest seed), each filter scaled to its own range; "
    "two-tower nets show one grid per tower."
)
SWEEPS = (
    "Optuna studies (`harness sweep`) around a variant's recipe. `best val top-1` is the best complete trial's "
    "final top-1 under the recipe's own test protocol; `paper recipe` is the mean over seeds of finished runs with "
    "the paper's recipe of the same variant on the same data set and profile; the difference is best minus paper "
    "recipe. **Tuned values are not reproductions of the paper's recipe**: the best trial was chosen on the same "
    "validation images it is scored on, so its number is optimistic. Re-running the best in full gives a run "
    "tagged as tuned (Deviations, Tuned runs)."
)
NO_SWEEPS = (
    "No sweep was run. To run one: `python -m harness sweep VARIANT --profile PROFILE` (options `--trials`, "
    "`--space`, `--epochs`); its best is shown here beside the paper recipe."
)
TUNED = (
    "Runs whose recipe was changed (`--set`, flags, `--from-sweep`) and sweep trials. Shown as tuned, never "
    "as reproductions."
)


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt.cell(c) for c in row) + " |" for row in rows]
    return lines


def render(inputs: ReportInputs) -> str:
    rows = order(inputs.rows)
    comparisons = compare_all(inputs.variants, rows, inputs.ensembles)
    proxies = proxy_groups(rows, inputs.variants)
    out = [f"# Reproduction report: {inputs.title}", "", generated_from(inputs), ""]
    out += how_to_read(comparisons, proxies, rows)
    for number, lines in enumerate((s for s in sections(inputs, rows, comparisons, proxies) if s), start=1):
        out += [lines[0].replace("## ", f"## {number}. ", 1), *lines[1:]]
    out += section_runs(rows, inputs.ui_url)
    return "\n".join(out).rstrip() + "\n"


def sections(
    inputs: ReportInputs, rows: Sequence[RunRow], comparisons: Sequence[Comparison], proxies: list[tuple[str, str]]
) -> list[list[str]]:
    """The numbered sections in order, each its lines from its `## Title` heading (numbered by position; an empty
    one is left out). A report of proxy runs only leads with what its data can test (the claims and the proxy's
    own results) and folds the papers' numbers, which no proxy run is comparable with, into one line per variant."""
    all_proxy = bool(proxies) and {d for d, _ in groups(rows)} <= {d for d, _ in proxies}
    reported = section_reported_folded(comparisons) if all_proxy else section_reported(comparisons)
    lead = [section_claims(inputs, rows), section_proxy(inputs, rows, proxies)]
    papers = [reported, section_ensembles(inputs, comparisons), section_fidelity(inputs)]
    return [
        *(lead + papers if all_proxy else papers + lead),
        section_sweeps(inputs.sweeps),
        section_figures(inputs),
        section_qualitative(inputs, rows),
        section_deviations(inputs, rows),
        parallel_section.section(rows, inputs.variants),  # only when a run used more than one rank
    ]


def generated_from(inputs: ReportInputs) -> str:
    exps = ", ".join(f"`{e}`" for e in inputs.experiments) or "all experiments"
    return (
        f"Generated from the MLflow store `{inputs.store}`, {exps}: {len(inputs.rows)} runs (ids under [Runs](#runs))."
    )


def how_to_read(comparisons: Sequence[Comparison], proxies: list[tuple[str, str]], rows: Sequence[RunRow]) -> list[str]:
    counts = ", ".join(f"{sum(c.status == s for c in comparisons)} {s}" for s in STATUSES)
    out = [
        "## How to read this report",
        "",
        HOW_TO_READ,
        "",
        CLAIM_RULE,
        "",
        f"Reported numbers: {len(comparisons)} ({counts}).",
        "",
    ]
    if proxies:
        names = ", ".join(sorted({d for d, _ in proxies}))
        all_proxy = {d for d, _ in groups(rows)} <= {d for d, _ in proxies}
        out += [
            f"> **Proxy data.** This report compares runs on a proxy data set ({names}); no number in it says "
            "whether the paper reproduces on ImageNet."
            if all_proxy
            else f"> **Proxy data.** Some runs used a proxy data set ({names}); their numbers say nothing about "
            "whether the paper reproduces on ImageNet.",
            "",
        ]
    return out


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
    return ["## Reproduced versus reported", "", *table(header, body), ""]


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
    out += table(
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
        out += table(
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
    out += table(
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


def _claimed(c: Claim) -> str:
    if c.kind == "speedup":
        return f"{c.delta:g}x faster to {c.threshold:g} % train error (proxy: {c.proxy_threshold:g} %)"
    if c.kind == "equivalence":
        return f"within ±{c.delta:g}"
    if c.kind == "at_least":
        return f"{'≥' if c.delta > 0 else '≤'} {c.delta:+g}"
    if c.kind == "direction":  # no size: the variant's accuracy is lower (or higher) than the baseline's
        return "higher" if c.delta > 0 else "lower"
    return f"{c.delta:+g}"


def _compared(c: Claim) -> str:
    if c.protocol and c.variant == c.baseline:
        other = "center" if c.protocol == "ten_crop" else "ten_crop"
        return f"{fmt.protocol(c.protocol)} vs {fmt.protocol(other)} of `{c.variant}`"
    if c.ensemble > 1:
        return f"ensembles of {c.ensemble} `{c.variant}` - single `{c.baseline}`"
    return f"`{c.variant}` - `{c.baseline}`"


def _claim_row(r: ClaimResult, experiment_of: Mapping[str, str] | None = None, ui_url: str | None = None) -> list[str]:
    """One row of section 4; with `ui_url`, the verdict links MLflow's compare view of the runs behind it (both
    sides: `ClaimResult.run_ids`)."""
    c = r.claim
    data = fmt.DASH
    if r.data is not None:
        data = data_label(r.data, r.split or "", r.proxy) + (f" (`{r.profile}`)" if r.profile else "")
        data += f", pretrained on {r.pretrained}" if r.pretrained else ""
    measured, n, sides = fmt.DASH, fmt.DASH, fmt.DASH
    if r.diff is not None:
        d = r.diff
        if d.variant_side is not None and d.baseline_side is not None:
            sides = f"{fmt.stat(d.variant_side)} / {fmt.stat(d.baseline_side)}"
        measured = f"{d.measured:+.2f}"
        if r.interval is not None:
            measured += f" [{r.interval[0]:+.2f}, {r.interval[1]:+.2f}]"
        if c.kind == "speedup":  # a log ratio of images: shown as the speed-up baseline / variant
            measured = f"{math.exp(-d.measured):.2f}x"
            if r.interval is not None:
                measured += f" [{math.exp(-r.interval[1]):.2f}x, {math.exp(-r.interval[0]):.2f}x]"
        n = f"{d.n_variant} / {d.n_baseline}"
        if c.ensemble > 1:
            n = f"{d.n_variant} ensembles" + (" (paired)" if d.paired else f" / {d.n_baseline}")
        elif d.paired and c.protocol and c.variant == c.baseline:
            n = f"{d.n_variant} runs (paired)"
        elif d.paired:  # seed s of both sides (claims.by_seed)
            n = f"{d.n_variant} / {d.n_baseline} (paired)"
    return [
        c.name,
        c.text,
        c.source,
        data,
        _compared(c),
        c.metric,
        c.kind,
        _claimed(c),
        sides,
        measured,
        n,
        f"**{r.verdict}**" + fmt.compare_link(r.run_ids, experiment_of or {}, ui_url),
        r.reason,
    ]


def proxy_plan_claims() -> set[str]:
    """The proxy's claim family, fixed in advance: the claims its seed plan (`harness.plan.PROXY_SEEDS`) names."""
    return {e.claim for e in plan.PROXY_SEEDS}


def proxy_untestable(claims: Sequence[Claim]) -> dict[str, str]:
    """The registered claims the proxy cannot test, with why (`harness.plan.PROXY_UNTESTABLE`)."""
    names = {c.name for c in claims}
    return {name: why for name, why in plan.PROXY_UNTESTABLE.items() if name in names}


def family_text(f: Families) -> str:
    return (
        f"Multiple testing: Holm's step-down at family-wise alpha {ALPHA:g} over the {f.paper} registered "
        f"claims on the papers' data and, separately, over the {f.proxy} claims of the proxy's seed plan on proxy "
        "data; a family member not measured (or with too few seeds) counts as p = 1."
    )


def section_claims(inputs: ReportInputs, rows: Sequence[RunRow]) -> list[str]:
    named, untestable = proxy_plan_claims(), proxy_untestable(inputs.claims)
    results = check_claims(inputs.claims, rows, inputs.variants, inputs.ensembles, named, untestable)
    fam = families(inputs.claims, named, untestable)
    counts = ", ".join(f"{sum(r.verdict == v for r in results)} {v}" for v in VERDICTS)
    intro = (
        "Each claim as an accuracy difference in percentage points: variant minus baseline on the same data set, "
        "split and profile, runs with the paper's recipe. `measured` is the mean difference with its 95 % confidence "
        "interval: a paired t on the per-seed differences where both sides have the same seeds (`n` then reads "
        "`(paired)` and `why` names the common seeds), Welch's t otherwise, a paired t for two protocols of the same "
        "runs and for ensembles against their own members; `variant / baseline` is each side's mean ± standard "
        "deviation (n) over the seeds compared (ensembles: the ensembles' and their members' means); `n` counts seeds "
        "(or disjoint ensembles) per side. The verdict rule is in How to read. "
        f"{family_text(fam)} "
        f"Verdicts: {counts}."
    )
    experiment_of = {r.run_id: r.experiment_id for r in rows}
    if any(fmt.compare_link(r.run_ids, experiment_of, inputs.ui_url) for r in results):
        intro += " Each verdict links MLflow's compare view of the runs behind it, both sides."
    out = ["## Paper claims", "", intro, ""]
    out += table(
        [
            "claim",
            "text",
            "source",
            "data set",
            "compared",
            "metric",
            "kind",
            "claimed",
            "variant / baseline",
            "measured [95 % CI]",
            "n",
            "verdict",
            "why",
        ],
        (_claim_row(r, experiment_of, inputs.ui_url) for r in results),
    )
    out.append("")
    if proxy_groups(rows, inputs.variants):
        out += section_plan(inputs, rows)
    return out


def section_plan(inputs: ReportInputs, rows: Sequence[RunRow]) -> list[str]:
    """Proxy reports: the claims `harness run --all` trains several seeds for (`harness.plan.PROXY_SEEDS`), and why."""
    by_name = {c.name: c for c in inputs.claims}
    entries = [e for e in plan.PROXY_SEEDS if e.claim in by_name]
    out = ["### Seed plan (proxy)", ""]
    if not entries:
        return out + ["No claim has a seed plan.", ""]
    proxies = {d for d, _ in proxy_groups(rows, inputs.variants)}
    plain = [x for x in plain_runs(rows) if x.data in proxies]

    def seeds(variant: str) -> str:
        return str(len({x.seed for x in plain if x.variant == variant}))

    out += [
        "The proxy's claim family, fixed before any run: `python -m harness run --all` on the proxy trains these "
        "claims' seeds, seed-major, so that seed s of a variant and of its baseline share their init and data order "
        "(`python -m harness run --plan` lists every run; `--seed-offset K` draws the same plan on seeds K, K + 1, "
        "...). `finished` counts the distinct seeds of finished paper-recipe runs on proxy data.",
        "",
    ]
    out += table(
        ["claim", "compared", "seeds planned (variant / baseline)", "finished", "why"],
        (
            [
                f"`{e.claim}`",
                _compared(by_name[e.claim]),
                f"{e.variant} / {e.baseline}",
                f"{seeds(by_name[e.claim].variant)} / {seeds(by_name[e.claim].baseline)}",
                e.why,
            ]
            for e in entries
        ),
    )
    return out + [""]


def _not_learned(runs: Sequence[RunRow]) -> str:
    """Why a run counts as not learned, from its own numbers: loss at ln(C) (chance) or loss elsewhere."""
    classes = sorted({r.num_classes for r in runs if r.num_classes})
    if len(classes) != 1:
        return "val top-1 near chance"
    c = classes[0]
    chance = f"ln({c}) = {math.log(c):.2f}"
    losses = [r.train_loss[-1][1] for r in runs if r.train_loss]
    if losses and all(abs(x - math.log(c)) <= 0.1 * math.log(c) for x in losses):
        return f"loss stayed at {chance}"
    last = ", ".join(f"{x:.2f}" for x in losses)
    return f"val top-1 near chance ({100 / c:g} %)" + (
        f"; final training loss {last} (chance: {chance})" if last else ""
    )


def _learned(p: ProxyRow, rows: Sequence[RunRow], inputs: ReportInputs, data: str, split: str) -> str:
    mine = [r for r in rows if r.run_id in p.run_ids]
    if not p.not_learned:
        return "yes" if any(r.learned is not None for r in mine) else fmt.DASH
    curve = inputs.figures.curves.get((data, split, p.variant))
    link = f" ([curve]({curve}))" if curve else ""
    share = "" if p.not_learned == len(p.run_ids) else f"{p.not_learned} of {len(p.run_ids)} runs "
    return f"**{share}did not learn**: {_not_learned([r for r in mine if r.learned == 0.0])}{link}"


def section_proxy(inputs: ReportInputs, rows: Sequence[RunRow], proxies: list[tuple[str, str]]) -> list[str]:
    out = ["## Proxy results", ""]
    if not proxies:
        return out + ["No run used a proxy data set.", ""]
    out += [PROXY, ""]
    for data, split in proxies:
        ranked = proxy_table(rows, inputs.variants, data, split)
        body = []
        for i, p in enumerate(ranked, start=1):
            runs = f" ({p.unfinished} of {p.runs} runs unfinished)" if p.unfinished else ""
            change = fmt.DASH if p.base is None else f"{fmt.signed(p.change)} vs `{p.base}`"
            body.append(
                [
                    str(i) if p.top1 else fmt.DASH,
                    f"`{p.variant}`",
                    fmt.protocol(p.protocol),
                    fmt.stat(p.top1) + runs,
                    fmt.stat(p.top5),
                    fmt.stat(p.center_top1),
                    change,
                    _learned(p, rows, inputs, data, split),
                ]
            )
        out += [f"### {data_label(data, split, True)}", ""]
        out += table(
            ["rank", "variant", "protocol", "top-1", "top-5", "center top-1", "change vs base", "learned"], body
        )
        out += ["", *section_gap(rows, data, split)]
    return out


def section_gap(rows: Sequence[RunRow], data: str, split: str) -> list[str]:
    """The train-validation gap and the validation curve at fixed epochs of the runs ranked above."""
    here = [x for x in plain_runs(rows) if (x.data, x.split) == (data, split) and x.train_top1]
    found = gap.gap_rows(here)
    if not found:
        return []
    marks = sorted({e for g in found for e in g.epochs})
    out = [
        "Overfitting: the last epoch's training top-1 (in training mode: dropout on, augmented views) against its "
        "validation top-1 (centre crop), and the validation top-1 at a quarter, half, three quarters and all of the "
        "epochs, means over the finished runs. A regulariser shows as a smaller gap; the claims read the last epoch.",
        "",
    ]
    out += table(
        ["variant", "runs", "train top-1", "val top-1", "gap", *(f"val @ epoch {e}" for e in marks)],
        (
            [
                f"`{g.variant}`",
                str(g.runs),
                fmt.num(g.train_top1),
                fmt.num(g.val_top1),
                fmt.num(g.gap),
                *(fmt.num(g.curve[g.epochs.index(e)]) if e in g.epochs else fmt.DASH for e in marks),
            ]
            for g in found
        ),
    )
    return [*out, ""]


def _param(value: str) -> str:
    """A logged param as `k=v` shows it: floats to 4 significant digits, anything else as logged."""
    try:
        int(value)
        return value
    except ValueError:
        pass
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return value


def _rerun(s: SweepRow) -> str:
    profile = f" --profile {s.profile}" if s.profile else ""
    return f"`python -m harness run {s.variant} --from-sweep {s.study}{profile}`"


def _sweep_note(s: SweepRow) -> str:
    notes = []
    if s.best_value is None:
        notes.append("no complete trial")
    if s.paper is None:
        profile = f" --profile {s.profile}" if s.profile else ""
        notes.append(f"no finished paper-recipe run on this data: `python -m harness run {s.variant}{profile}`")
    else:
        notes.append(sweep_note(s.epochs, s.paper_epochs))
        notes.append(f"runs {fmt.run_ids(s.paper_run_ids)}")
    return "; ".join(n for n in notes if n)


def section_sweeps(sweeps: Sequence[SweepRow]) -> list[str]:
    out = ["## Sweeps", ""]
    if not sweeps:
        return out + [NO_SWEEPS, ""]
    out += [SWEEPS, ""]
    ordered = sorted(sweeps, key=lambda s: (s.variant, s.data, s.profile, s.study))
    out += table(
        [
            "study",
            "variant",
            "data set (profile)",
            "space",
            "trials (complete / pruned / failed)",
            "epochs",
            "best val top-1",
            "best params",
            "paper recipe top-1",
            "difference",
            "note",
            "re-run the best",
        ],
        (
            [
                f"`{s.study}`",
                f"`{s.variant}`",
                f"{s.data} (`{s.profile}`)" if s.profile else s.data,
                s.space or fmt.DASH,
                f"{s.n_complete} / {s.n_pruned} / {s.n_failed}",
                fmt.DASH if s.epochs is None else str(s.epochs),
                fmt.num(s.best_value),
                " ".join(f"{k}={_param(v)}" for k, v in s.best_params) or fmt.DASH,
                fmt.stat(s.paper),
                fmt.signed(s.diff),
                _sweep_note(s) or fmt.DASH,
                _rerun(s),
            ]
            for s in ordered
        ),
    )
    return out + [""]


def section_figures(inputs: ReportInputs) -> list[str]:
    f = inputs.figures
    out = ["## Figures", ""]
    if f.reproduced_vs_reported:
        out += [
            "### Reproduced versus reported",
            "",
            f"![reproduced versus reported top-1]({f.reproduced_vs_reported})",
            "",
        ]
    proxies = {d for d, _ in proxy_groups(inputs.rows, inputs.variants)}
    for data, split in sorted(f.val_top1):
        label = data_label(data, split, data in proxies)
        out += [
            f"### Validation top-1 per epoch, {label}",
            "",
            f"![validation top-1, {label}]({f.val_top1[data, split]})",
            "",
        ]
        curves = sorted((v, p) for (d, s, v), p in f.curves.items() if (d, s) == (data, split))
        if curves:
            out += [
                "Per variant (validation top-1 and training loss): " + ", ".join(f"[{v}]({p})" for v, p in curves),
                "",
            ]
    if f.kernels:
        out += ["### First-layer kernels", "", KERNELS, ""]
        for (data, split, variant), paths in sorted(f.kernels.items()):
            label = data_label(data, split, data in proxies)
            images = " ".join(
                f"![{variant} conv1{f' tower {i}' if len(paths) > 1 else ''}]({p})" for i, p in enumerate(paths, 1)
            )
            out += [f"`{variant}`, {label}:", "", images, ""]
    if len(out) == 2:
        out += ["No figures: no run has a training history or checkpoint.", ""]
    return out


QUALITATIVE = (
    "KSH12 s6.1's observations of a trained net, measured by `harness analyze` (or at the end of `harness run` where "
    "the profile says so) on the run's final weights: conv1's colour index per tower (the share of a kernel's energy "
    "off the grey axis after removing its mean: 0 grey, 1 colour only, 2/3 for random weights); nearest training "
    "images by Euclidean distance of the last hidden layer's activations (fc7) against raw pixels (area-averaged to "
    "at most 32 px a side), precision@k = share of the k nearest of the query's class; the same retrieval with "
    "binary codes from small auto-encoders on fc7 and on pixels (Hamming distance; query time = search only, on "
    "the machine that ran the analysis); validation top-1 with the centre view moved sideways (the uncovered border "
    "is the training mean)."
)
QUAL_FIGURE_LABELS = {
    "colour.png": "conv1 by colour index",
    "top5.png": "top-5 examples",
    "retrieval_fc7.png": "nearest by fc7",
    "retrieval_pixels.png": "nearest by pixels",
    "codes.png": "codes",
    "translation.png": "top-1 against shift",
}


def section_qualitative(inputs: ReportInputs, rows: Sequence[RunRow]) -> list[str]:
    out = ["## Qualitative evaluation", "", QUALITATIVE, ""]
    runs = qual.analysed(rows)
    if not runs:
        return out + ["No analysed runs: `python -m harness analyze RUN_ID` adds a finished run's.", ""]
    out += ["### Tower colour specialisation (KSH12 s6.1, Fig. 3)", "", qual.TOWER_RULE, ""]
    verdicts = qual.tower_verdicts(runs)
    for v in verdicts:
        out += [
            f"`{v.variant}`, {v.data} {v.split}: **{v.verdict}** ({v.n_specialised} of {len(v.seeds)} seeds "
            "specialised)."
            + (
                " Every tower's mean is within 0.05 of a random kernel's 2/3: conv1 has barely moved from its "
                "initialisation, so these runs say little about the claim either way."
                if v.near_random
                else ""
            ),
            "",
        ]
        out += table(
            ["seed", "run", "tower means", "spread", "greyer tower", "specialised"],
            (
                [
                    fmt.DASH if s.seed is None else str(s.seed),
                    f"`{fmt.short_id(s.run_id)}`",
                    " / ".join(f"{m:.3f}" for m in s.means),
                    f"{s.spread:.3f}",
                    str(s.greyer),
                    "yes" if s.specialised else "no",
                ]
                for s in v.seeds
            ),
        )
        out.append("")
    if not verdicts:
        out += ["No analysed two-tower run: no verdict.", ""]
    out += ["Mean colour index of all conv1 kernels (one-tower nets: their only distribution):", ""]
    out += table(
        ["variant", "data", "seed", "towers", "mean colour index"],
        (
            [f"`{r.variant}`", f"{r.data} {r.split}", fmt.DASH if r.seed is None else str(r.seed),
             fmt.DASH if q.towers is None else str(q.towers), fmt.num(q.colour_mean, 3)]
            for r in runs if (q := r.qualitative) is not None
        ),
    )  # fmt: skip
    wins, n = qual.fc7_wins(runs)
    out += ["", "### Retrieval and compressed codes (KSH12 s6.1, Fig. 4 right)", ""]
    out += [f"fc7 retrieves more same-class neighbours than raw pixels (precision@10) in {wins} of {n} runs.", ""]
    header = ["variant", "data", "seed"] + [f"{rep} p@{k}" for rep in ("fc7", "pixels") for k in schema.QUAL_KS]
    out += table(
        header,
        (
            [f"`{r.variant}`", f"{r.data} {r.split}", fmt.DASH if r.seed is None else str(r.seed)]
            + [fmt.num(getattr(q.stat(rep), f"p{k}", None), 3) for rep in ("fc7", "pixels") for k in schema.QUAL_KS]
            for r in runs if (q := r.qualitative) is not None
        ),
    )  # fmt: skip
    out += [
        "",
        "Binary codes (auto-encoders, Hamming distance) against raw vectors: precision@10 and ms per query.",
        "",
    ]
    out += table(
        ["variant", "seed", "bits"] + [f"{rep} p@10 / ms" for rep in schema.QUAL_REPS],
        (
            [f"`{r.variant}`", fmt.DASH if r.seed is None else str(r.seed), fmt.DASH if q.code_bits is None else
             str(q.code_bits)] + [_p10_ms(q.stat(rep)) for rep in schema.QUAL_REPS]
            for r in runs if (q := r.qualitative) is not None
        ),
    )  # fmt: skip
    out += ["", "### Translation invariance (KSH12 s6.1)", ""]
    out += ["Validation top-1 (%) with the centre view moved by k/16 of its side (negative: left).", ""]
    out += table(
        ["variant", "data", "seed"] + [f"{s:+d}/16" for s in schema.QUAL_SHIFT_STEPS],
        (
            [f"`{r.variant}`", f"{r.data} {r.split}", fmt.DASH if r.seed is None else str(r.seed)]
            + [fmt.num(dict(q.shift_top1).get(s), 1) for s in schema.QUAL_SHIFT_STEPS]
            for r in runs if (q := r.qualitative) is not None
        ),
    )  # fmt: skip
    out.append("")
    figs = inputs.figures.qualitative
    if figs:
        out += ["### Figures (one analysed run per variant, lowest seed)", ""]
        for (data, split, variant), paths in sorted(figs.items()):
            out += [f"`{variant}`, {data} {split}: " + ", ".join(f"[{QUAL_FIGURE_LABELS.get(n, n)}]({p})"
                                                                   for n, p in paths), ""]  # fmt: skip
            out += [" ".join(f"![{variant} {QUAL_FIGURE_LABELS.get(n, n)}]({p})" for n, p in paths), ""]
    seconds = [q.seconds for r in runs if (q := r.qualitative) is not None and q.seconds is not None]
    if seconds:
        out += [f"The analyses took {min(seconds):.0f}-{max(seconds):.0f} s per run ({len(seconds)} runs).", ""]
    return out


def _p10_ms(s) -> str:
    if s is None:
        return fmt.DASH
    return f"{fmt.num(s.p10, 3)} / {fmt.num(s.query_ms, 3)}"


def section_deviations(inputs: ReportInputs, rows: Sequence[RunRow]) -> list[str]:
    out = [
        "## Deviations",
        "",
        "### Variants",
        "",
        "Every recorded difference from the papers, with the variants it applies to.",
        "",
    ]
    applies: dict[str, list[str]] = {}
    for v in inputs.variants:
        for d in v.deviations:
            applies.setdefault(d, []).append(v.name)
    papers: dict[str, list[str]] = {}
    for v in inputs.variants:
        papers.setdefault(v.paper, []).append(v.name)
    for d, names in applies.items():
        out.append(f"- {d} ({_who(names, papers, len(inputs.variants))})")
    out += ["", "### Profiles", ""]
    if not inputs.profile_deviations:
        out.append("No run names a profile.")
    for profile, devs in sorted(inputs.profile_deviations.items()):
        if devs is None:
            out.append(f"- `{profile}`: its runs logged no `config.json` with `profile_deviations`.")
        elif not devs:
            out.append(f"- `{profile}`: none (the papers' recipes as recorded).")
        else:
            out.append(f"- `{profile}`:")
            out += [f"  - {d}" for d in devs]
    out += ["", "### Tuned runs", "", TUNED, ""]
    tuned = [r for r in rows if r.recipe_modified or r.kind == "trial"]
    if not tuned:
        return out + ["None.", ""]
    out += table(
        ["run", "kind", "variant", "data set, split", "modified", "sweep", "status", "top-1"],
        (
            [
                f"`{fmt.short_id(r.run_id)}`",
                r.kind,
                f"`{r.variant}`",
                f"{r.data} {r.split}",
                r.modified_keys or fmt.DASH,
                r.tuned_from or r.sweep or fmt.DASH,
                r.status,
                fmt.num(r.final_top1),
            ]
            for r in tuned
        ),
    )
    return out + [""]


def _who(names: list[str], papers: dict[str, list[str]], total: int) -> str:
    if len(names) == total:
        return "all variants"
    for paper, members in sorted(papers.items()):
        if names == members and len(names) > 1:
            return f"all {len(names)} {paper} variants"
    return ", ".join(f"`{n}`" for n in names)


def section_runs(rows: Sequence[RunRow], ui_url: str | None = None) -> list[str]:
    out = ["## Runs", ""]
    if ui_url:
        out += [f"Each run id opens the run in the MLflow UI at {ui_url} (start it with `python -m harness ui`).", ""]
    out += table(
        [
            "run id",
            "experiment",
            "kind",
            "variant",
            "data set, split",
            "protocol",
            "seed",
            "status",
            "top-1",
            "top-5",
            "recipe",
        ],
        (
            [
                fmt.run_link(r.run_id, r.experiment_id, ui_url),
                r.experiment,
                r.kind,
                f"`{r.variant}`",
                f"{r.data} {r.split}",
                fmt.protocol(r.protocol),
                fmt.DASH if r.seed is None else str(r.seed),
                r.status,
                fmt.num(r.final_top1),
                fmt.num(r.final_top5),
                "modified" if r.recipe_modified else "paper",
            ]
            for r in rows
        ),
    )
    return out

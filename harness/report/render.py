"""`render(inputs) -> markdown`: a pure function of the report's inputs. No clock, no files, no MLflow; everything
is sorted, so the same inputs give the same bytes. The sections are in `render_papers.py`, `render_claims.py`,
`render_proxy.py`, `render_qual.py`, `render_records.py` and `parallel.py`; this module orders and numbers them."""

from __future__ import annotations

from collections.abc import Sequence

from harness.report import parallel as parallel_section
from harness.report.render_claims import section_claims
from harness.report.render_papers import section_ensembles, section_fidelity, section_reported, section_reported_folded
from harness.report.render_proxy import section_proxy, section_sweeps
from harness.report.render_qual import section_qualitative
from harness.report.render_records import section_deviations, section_figures, section_runs
from harness.report.reported import STATUSES, Comparison, compare_all
from harness.report.runs import groups, order, proxy_groups
from harness.report.types import ReportInputs, RunRow

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
    "`harness/report/verdicts.py`, its statistics in `harness/report/stats.py`. "
    "A speedup claim (KSH12 Fig. 1) compares the training images each run saw until its running training error "
    "first fell to the threshold, as a ratio baseline / variant (a t on the logs): on the papers' data it holds "
    "when the interval excludes 1 on the claimed side and overlaps half to twice the claimed factor."
)


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

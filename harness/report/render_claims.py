"""The report's "Paper claims" section: one row per claim and data set with its verdict, and on proxy data the seed
plan that fixed the proxy's claim family. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from harness import plan
from harness.report import fmt
from harness.report.claims import ClaimResult, check_claims, families
from harness.report.runs import data_label, plain_runs, proxy_groups
from harness.report.stats import ALPHA
from harness.report.types import ReportInputs, RunRow
from harness.report.verdicts import VERDICTS, Families

if TYPE_CHECKING:
    from variants import Claim


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
    out += fmt.table(
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
    out += fmt.table(
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

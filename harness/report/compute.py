"""Pure computations behind the report: statistics over seeds, each reported number's status, claim verdicts,
ensembles. No MLflow, no files: tested on fixed rows.

Status of a reported number (section 1), first rule that applies:
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

A claim (section 4) is measured on each data set, split, profile and pretraining that holds finished runs with the
paper's recipe of both sides (never pooling profiles); `not run` when none does. Two variants: paired by seed
(`by_seed`: seed s of both sides shares init and data order) where the sides share their seeds, else Welch.
A protocol claim on one variant (10-crop vs centre): paired, one difference per run. An ensemble claim
(Claim.ensemble = k): the variant side is disjoint ensembles of k runs (lowest seeds first), each the averaged
softmax of its saved predictions; against the same variant each ensemble is paired with the mean of its own
members, against another variant Welch. On proxy data (direction only) the ensembles have k' = max(2, n // 3) of
the n finished runs instead (at most k; 6 runs: 3 disjoint pairs), and the reason says so. A speedup claim (KSH12
Fig. 1): per run the training images seen until the running training error first falls to the claim's threshold
(`images_to_threshold`), paired by seed or Welch over the logs of those counts (variant - baseline), so the
difference is a log ratio. Its verdict is `verdicts`' rule: Holm over the claim families fixed in advance
(`families`), the statistics in `harness.report.stats`.

A sweep (section 6) is compared with the mean final top-1 of finished, unmodified runs of its variant on the same
data set (tag `dataset_name` or loader) and profile; difference = best trial minus that mean, never a status.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from harness import schema
from harness.report import fmt
from harness.report import stats as st
from harness.report.stats import ALPHA, Difference, holm, paired, paired_sides, summarize, welch
from harness.report.stats import LEVEL as LEVEL  # re-exported: the claims' printed interval (ClaimResult.interval)
from harness.report.stats import t_quantile as t_quantile  # re-exported for callers of the old home
from harness.report.types import EnsembleResult, RunRow, Stat
from variants import Claim, Reported, Variant
from variants.types import ClaimKind, Metric

Status = Literal["reproduced", "not reproduced", "not comparable", "modified recipe", "not run", "reference only"]
Verdict = Literal["holds", "does not hold", "supported", "contradicted", "inconclusive", "not testable here", "not run"]
STATUSES: tuple[Status, ...] = (
    "reproduced",
    "not reproduced",
    "not comparable",
    "modified recipe",
    "not run",
    "reference only",
)
VERDICTS: tuple[Verdict, ...] = (
    "holds",
    "does not hold",
    "supported",
    "contradicted",
    "inconclusive",
    "not testable here",
    "not run",
)


# --- statistics -------------------------------------------------------------------------------------------------


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


# --- section 1: reproduced versus reported ----------------------------------------------------------------------


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


# --- section 2: ensembles ---------------------------------------------------------------------------------------


def ensemble_accuracy(probs: Sequence[np.ndarray], labels: np.ndarray) -> tuple[float, float]:
    """Top-1 and top-5 accuracy (percent) of the mean of several networks' softmax outputs (KSH12 s6)."""
    if not probs:
        raise ValueError("an ensemble needs at least one network")
    mean = np.mean([np.asarray(p, dtype=np.float64) for p in probs], axis=0)
    labels = np.asarray(labels)
    ranked = np.argsort(-mean, axis=1, kind="stable")
    top1 = float(np.mean(ranked[:, 0] == labels)) * 100
    top5 = float(np.mean((ranked[:, : min(5, mean.shape[1])] == labels[:, None]).any(axis=1))) * 100
    return top1, top5


@dataclass(frozen=True)
class EnsembleCandidate:
    variant: str
    data: str
    split: str
    protocol: str
    pretrained: str | None
    run_ids: tuple[str, ...]
    profile: str = ""  # the members' profile; "" when they mix profiles


def ensemble_sizes(variant: Variant) -> list[int]:
    return sorted({r.ensemble for r in variant.reported if r.ensemble > 1})


def _profile(runs: Iterable[RunRow]) -> str:
    profiles = {x.profile for x in runs}
    return profiles.pop() if len(profiles) == 1 else ""


def ensemble_candidates(variants: Sequence[Variant], rows: Sequence[RunRow]) -> list[EnsembleCandidate]:
    """For every ensemble size a variant reports: the first k plain runs (by seed) of each data set holding k."""
    out = []
    plain = order(plain_runs(rows))
    for v in variants:
        mine = [x for x in plain if x.variant == v.name]
        keys = sorted({(x.data, x.split, x.protocol, x.pretrained or "") for x in mine})
        for k in ensemble_sizes(v):
            for data, split, protocol, pretrained in keys:
                members = [
                    x
                    for x in mine
                    if (x.data, x.split, x.protocol, x.pretrained or "") == (data, split, protocol, pretrained)
                ]
                if len(members) >= k:
                    out.append(
                        EnsembleCandidate(
                            v.name,
                            data,
                            split,
                            protocol,
                            pretrained or None,
                            tuple(x.run_id for x in members[:k]),
                            _profile(members[:k]),
                        )
                    )
    return out


def claim_ensemble_size(k: int, n: int, proxy: bool) -> int:
    """The ensemble size a claim of ensembles of `k` is measured with, from `n` finished runs: `k` on paper data;
    on proxy data (direction only) k' = max(2, n // 3), at most k, so that 6 runs give 3 disjoint pairs (3 disjoint
    ensembles of 5 would need 15 runs)."""
    return min(k, max(2, n // MIN_SEEDS)) if proxy else k


def claim_ensemble_candidates(
    claims: Sequence[Claim], rows: Sequence[RunRow], proxies: Collection[str] = ()
) -> list[EnsembleCandidate]:
    """For every claim whose variant side is an ensemble of k runs: disjoint ensembles of k plain runs of each data
    set, split, protocol, pretraining and profile (never pooling profiles): lowest seeds first, then the next k...
    On a data set in `proxies` the size is `claim_ensemble_size`'s k' instead of k."""
    out = []
    plain = order(plain_runs(rows))
    for variant, claim_k in sorted({(c.variant, c.ensemble) for c in claims if c.ensemble > 1}):
        mine = [x for x in plain if x.variant == variant]
        for key in sorted({(x.data, x.split, x.protocol, x.pretrained or "", x.profile) for x in mine}):
            data, split, protocol, pretrained, profile = key
            members = [x.run_id for x in mine if (x.data, x.split, x.protocol, x.pretrained or "", x.profile) == key]
            k = claim_ensemble_size(claim_k, len(members), data in proxies)
            out += [
                EnsembleCandidate(
                    variant, data, split, protocol, pretrained or None, tuple(members[i * k : (i + 1) * k]), profile
                )
                for i in range(len(members) // k)
            ]
    return out


# --- section 4: claims ------------------------------------------------------------------------------------------

MIN_SEEDS = 3  # values per side before any verdict
# With 10 classes (the proxy's digits) a top-5 guess covers half of them; top-5 tells nothing there.
FEW_CLASSES = 10  # a top-5 claim on data with at most this many classes is never judged


@dataclass(frozen=True)
class ClaimTest:
    """One claim measured on one data set, split and profile: what the verdict rule reads."""

    kind: ClaimKind
    claimed: float  # Claim.delta: the claimed change variant - baseline, or (equivalence) the bound on |change|
    proxy: bool
    diff: Difference
    metric: Metric = "top1"
    classes: int | None = None  # classes of the data the runs used (param num_classes); None: unknown
    untestable: str = ""  # why this data cannot test the claim (e.g. its effect needs 1000 classes): `not testable`
    in_family: bool = True  # a member of its data's claim family fixed in advance (`Families`); else never decided

    @property
    def uninformative(self) -> bool:
        """A top-5 claim on data with so few classes that top-5 carries no information."""
        return self.metric == "top5" and self.classes is not None and self.classes <= FEW_CLASSES


@dataclass(frozen=True)
class Families:
    """The sizes of a report's two claim families, fixed before any run: Holm's m on the papers' data (the
    registry's claims) and on proxy data (the claims the proxy's seed plan names). A member that was not measured,
    or has too few seeds, counts as p = 1; a family smaller than the tests it holds (a claim measured on two data
    sets) grows to that count."""

    paper: int
    proxy: int


def claim_p(t: ClaimTest) -> float:
    """The claim's two-sided p-value: twice the smallest one-sided p of the statements its rule can make (at most
    1), i.e. the smallest alpha at which the rule read on the (1 - alpha) interval decides something.

    With d' = sign(claim) d and c = |claim|. Proxy data: d' > 0 or d' < 0. Paper data: difference and at_least:
    d' > 0, d' < 0, or |d'| < c/2 (both one-sided tests, the larger p); direction: d' > 0 or d' < 0; equivalence:
    |d| < c (both tests) or |d| > c (either side); speedup (on the log ratio): its direction, or a ratio within
    (2/c, c/2) when that band is not empty (c > 2)."""
    d, c = t.diff, abs(t.claimed)
    up, down = d.p_above(0.0), d.p_below(0.0)
    assert up is not None and down is not None  # only tests with a standard error are judged
    ps = [up, down]
    if not t.proxy and t.kind in ("difference", "at_least"):
        ps.append(max(d.p_above(-c / 2), d.p_below(c / 2)))  # type: ignore[type-var]
    elif not t.proxy and t.kind == "equivalence":
        ps = [max(d.p_above(-c), d.p_below(c)), min(d.p_above(c), d.p_below(-c))]  # type: ignore[type-var]
    elif not t.proxy and t.kind == "speedup":
        factor = c if c > 1 else 1 / c
        if factor > 2:
            band = math.log(factor / 2)
            ps.append(max(d.p_above(-band), d.p_below(band)))  # type: ignore[type-var]
    return min(1.0, 2 * min(ps))


def verdicts(
    tests: Sequence[ClaimTest], alpha: float = ALPHA, families: Families | None = None
) -> list[tuple[Verdict, str]]:
    """The claim rule: a verdict and its reason for every claim measured in one report, in the order given.

    d = variant - baseline in percentage points and c = the claim (Claim.delta). d's interval [lo, hi] is a paired
    t interval of per-pair differences (seed s of both sides; two protocols of the same runs; ensembles against
    their own members) or Welch's (unequal variances, Welch-Satterthwaite df).

    Before any test: a claim the data cannot test (ClaimTest.untestable; a top-5 claim on data with at most 10
    classes, "top-5 of N classes carries no information") -> `not testable here`; fewer than 3 values (seeds;
    ensembles) on a side -> inconclusive, saying how many there are; an equivalence claim on proxy data, or a claim
    outside its data's family -> inconclusive. None of these is decided, and none is a Holm p-value.

    Multiplicity: Holm's step-down over each family (paper data; proxy data), of the size fixed in advance
    (`families`; default: the tests given): the claims sorted by `claim_p`, the i-th (i = 1..m) is decided at level
    alpha / (m - i + 1) while every one before it was; from the first that is not, none is. A decided claim is read on
    its (1 - level) interval (95 % when m = 1); an undecided one is inconclusive.

    Paper data (a data set the papers report on): sizes count.
      difference   holds          the interval excludes 0 on the claimed side and overlaps [c/2, 2c];
                   does not hold  it excludes 0 on the other side, or lies strictly within (-|c|/2, |c|/2);
      at_least     c is a bound ("by over 1 %"): the same with "reaches c" (overlaps [c, beyond)) in place of
                   "overlaps [c/2, 2c]"; an interval between |c|/2 and |c| on the claimed side is inconclusive;
      equivalence  c > 0 bounds |d| ("changes little"): holds when the interval lies within [-c, c]; does not hold
                   when it lies entirely outside it (every plausible |d| exceeds the bound);
      direction    the paper gives no size ("without it, substantial overfitting"), only the sign of c counts (c is
                   -1 or +1 by convention): holds when the interval excludes 0 on the claimed side, does not hold
                   when it excludes 0 on the other side;
      anything else is inconclusive: (difference) an interval that lies entirely beyond 2c, where the direction
      holds but the effect is more than twice the claim; (at_least) one that stops short of the bound.
    ("Excludes 0" is strict: an interval ending at 0 does not exclude it; interval ends are included in [c/2, 2c].)

    Proxy data: the papers' sizes mean nothing there; only the direction is tested: `supported` when the claim is
    decided and d has the claimed sign, `contradicted` when decided with the other sign.

    Speedup claims (KSH12 Fig. 1): d = mean log(images to the threshold) of the variant minus the baseline's, c the
    claimed factor (> 1: the variant needs 1/c of the images); on proxy data d < 0 is the claimed direction. On paper
    data the interval is read as a ratio r = baseline / variant = exp(-d), [exp(-hi), exp(-lo)], with the difference
    rule's half-to-twice logic made multiplicative (`speedup_verdict`).

    Every inconclusive claim with a spread says the smallest difference its seeds detect and how many seeds a side
    would decide it (`design_note`), at two-sided alpha / m (the level the first-ranked claim of its family meets).
    """
    for t in tests:
        if (t.claimed <= 0) if t.kind in ("equivalence", "speedup") else (t.claimed == 0):
            raise ValueError(f"a {t.kind} claim of {t.claimed:+g}: no direction or bound to test")
        if t.kind == "speedup" and t.claimed == 1:
            raise ValueError("a speedup claim of 1x: no direction to test")
    skip = [_undecidable(t) for t in tests]
    out: list[tuple[Verdict, str] | None] = list(skip)
    for proxy in (False, True):
        members = [i for i, t in enumerate(tests) if t.proxy == proxy and skip[i] is None]
        fixed = 0 if families is None else (families.proxy if proxy else families.paper)
        size = max(fixed, len(members))
        design = alpha / max(size, 1)
        for i, t in enumerate(tests):  # the undecided ones: how far the design is from deciding them
            v = out[i]
            testable = t.in_family and not (t.proxy and t.kind == "equivalence")  # else no seeds would decide it
            if v is not None and t.proxy == proxy and v[0] == "inconclusive" and testable:
                out[i] = (v[0], _join(v[1], design_note(t, design)))
        ps = [claim_p(tests[i]) for i in members]
        adjusted, levels = holm(ps, size), st.holm_levels(ps, size, alpha)
        for j, i in enumerate(members):
            judge = _proxy_verdict if proxy else _paper_verdict
            out[i] = judge(tests[i], ps[j], adjusted[j], levels[j], size, alpha)
    return [x for x in out if x is not None]


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _undecidable(t: ClaimTest) -> tuple[Verdict, str] | None:
    """The verdict of a claim that never enters a Holm family, or None for one that does."""
    d = t.diff
    if t.untestable:
        return "not testable here", t.untestable
    if t.uninformative:
        return "not testable here", f"top-5 of {t.classes} classes carries no information"
    if d.se is None or min(d.n_variant, d.n_baseline) < MIN_SEEDS:
        return "inconclusive", f"needs at least {MIN_SEEDS} seeds a side, has {d.n_variant} / {d.n_baseline}"
    if t.proxy and t.kind == "equivalence":
        return "inconclusive", f"|difference| <= {abs(t.claimed):g} is a size; proxy data tests the direction only"
    if not t.in_family:
        return "inconclusive", "not in its data's claim family fixed in advance: never decided here"
    return None


def _holm_text(p: float, adjusted: float, size: int) -> str:
    return f"p {p:.2g}, Holm-adjusted {adjusted:.2g} over {size} claim{'' if size == 1 else 's'}"


def _proxy_verdict(
    t: ClaimTest, p: float, adjusted: float, level: float | None, size: int, alpha: float
) -> tuple[Verdict, str]:
    holm_text = _holm_text(p, adjusted, size)
    if level is None:
        return "inconclusive", _join(f"neither direction: {holm_text} > {alpha:g}", design_note(t, alpha / size))
    if claimed_sign(t) * t.diff.measured > 0:
        return "supported", f"claimed direction: {holm_text}"
    return "contradicted", f"opposite direction: {holm_text}"


def _paper_verdict(
    t: ClaimTest, p: float, adjusted: float, level: float | None, size: int, alpha: float
) -> tuple[Verdict, str]:
    """Decided (`level`): the paper rule on the (1 - level) interval; undecided: inconclusive, the rule's reason
    read on the (1 - alpha / size) interval (which cannot decide it)."""
    at = alpha / size if level is None else level
    interval = t.diff.interval(1 - at)
    assert interval is not None  # only tests with a standard error are judged
    v, why = paper_rule(t, interval)
    read = ""  # the interval read, where it is not the row's own 95 % interval
    if not math.isclose(1 - at, LEVEL):
        read = f"the {100 * (1 - at):.4g} % interval"
        read += "" if t.kind == "speedup" else f" [{interval[0]:+.2f}, {interval[1]:+.2f}]"
    holm_text = _holm_text(p, adjusted, size)
    why = f"{read}: {why}" if read else why
    if level is None:
        return "inconclusive", _join(f"{why}; {holm_text} > {alpha:g}", design_note(t, alpha / size))
    why = f"{why} ({holm_text})"
    return v, (why if v != "inconclusive" else _join(why, design_note(t, alpha / size)))


def paper_rule(t: ClaimTest, interval: tuple[float, float]) -> tuple[Verdict, str]:
    """The paper-data verdict of one claim read on one interval [lo, hi] of d (see `verdicts`)."""
    c = abs(t.claimed)
    lo, hi = interval
    if t.kind == "speedup":
        return speedup_verdict(interval, t.claimed)
    if t.kind == "equivalence":
        if -c <= lo and hi <= c:
            return "holds", f"the interval lies within ±{c:g}"
        if lo > c or hi < -c:
            return "does not hold", f"the interval lies entirely outside ±{c:g}"
        return "inconclusive", f"the interval reaches past ±{c:g}"
    low, high = (lo, hi) if t.claimed > 0 else (-hi, -lo)  # positive: the way the paper says
    if t.kind == "direction":
        if low > 0:
            return "holds", "the interval excludes 0 on the claimed side"
        if high < 0:
            return "does not hold", "the interval excludes 0 on the other side of the claim"
        return "inconclusive", "the interval includes 0"
    reach = c if t.kind == "at_least" else c / 2
    half = f"±{c / 2:g} (half the claim)"
    if high < 0:
        return "does not hold", "the interval excludes 0 on the other side of the claim"
    if low > 0 and high >= reach and (t.kind == "at_least" or low <= 2 * c):
        ends = sorted((t.claimed / 2, 2 * t.claimed))
        target = (
            f"reaches the claimed bound {t.claimed:+g}"
            if t.kind == "at_least"
            else f"overlaps [{ends[0]:+g}, {ends[1]:+g}]"
        )
        return "holds", f"the interval excludes 0 on the claimed side and {target}"
    if -c / 2 < low and high < c / 2:
        return "does not hold", f"the interval lies within {half}"
    if low > 2 * c:
        return (
            "inconclusive",
            f"the claimed direction, but the whole interval is beyond twice the claim ({2 * t.claimed:+g})",
        )
    if low > 0:
        return (
            "inconclusive",
            f"the claimed direction, but the interval stops short of the claimed bound {t.claimed:+g}",
        )
    return "inconclusive", f"the interval includes 0 and reaches past {half}"


def _seeds(n: int | None) -> str:
    return f"more than {st.MAX_SEEDS}" if n is None else str(n)


@dataclass(frozen=True)
class SeedsToDecide:
    """Seeds a side (pairs when paired) that would decide a paper-data claim at power 0.8, from the seed spread
    alone (Stein's two-stage design: the count depends on the spread and the claim, not on the measured mean;
    a direction claim has no size, so its count reads the measured difference). None: more than `st.MAX_SEEDS`,
    or nothing to scale by."""

    hold: int | None  # the interval holds the claim if the true change is the claim (direction: the measured one)
    fail: int | None  # the interval inside the "does not hold" band if the true change is 0 (None: no such band)
    fail_applies: bool  # the claim kind has a "does not hold by size" band (difference, at_least, speedup > 2x)


def seeds_to_decide(t: ClaimTest, alpha: float) -> SeedsToDecide | None:
    """How many seeds a side would decide paper-data claim `t` at its measured seed spread and two-sided `alpha`
    (after correction), power 0.8: to hold if the true change is the claim (a speedup: log c; a direction claim:
    the measured d), to fail by size if it is 0 (the interval inside ±c/2; equivalence: to hold, inside ±c).
    None without a spread."""
    d, sd = t.diff, t.diff.spread()
    if sd is None or sd == 0:
        return None
    c = abs(t.claimed)
    if t.kind == "equivalence":
        return SeedsToDecide(st.seeds_needed(c, sd, alpha, is_paired=d.paired, within=True), None, False)
    factor = (c if c > 1 else 1 / c) if t.kind == "speedup" else 0.0
    effect = {"speedup": math.log(factor) if factor else 0.0, "direction": d.measured}.get(t.kind, c)
    hold = st.seeds_needed(effect, sd, alpha, is_paired=d.paired)
    margin = {"speedup": math.log(factor / 2) if factor > 2 else 0.0, "direction": 0.0}.get(t.kind, c / 2)
    fail = st.seeds_needed(margin, sd, alpha, is_paired=d.paired, within=True) if margin else None
    return SeedsToDecide(hold, fail, bool(margin))


def design_note(t: ClaimTest, alpha: float) -> str:
    """What an inconclusive claim's design could see, at two-sided `alpha` (after correction) and power 0.8: the
    smallest difference its seeds detect, and how many seeds a side (pairs when paired) at the measured spread would
    decide it. Paper data: `seeds_to_decide`. Proxy data: to decide the direction if the true change is the
    measured d. "" without a spread."""
    d, sd = t.diff, t.diff.spread()
    level = f"power {st.POWER:g}, two-sided alpha {alpha:.2g}"
    parts = []
    if d.se is not None and d.df is not None:
        mde = st.detectable(d.se, d.df, alpha)
        if mde is not None:
            shown = f"{math.exp(mde):.3g}x" if t.kind == "speedup" else f"{mde:.3g} points"
            parts.append(f"smallest difference these seeds detect: {shown}")
    if sd is None or sd == 0:
        return f"{parts[0]} ({level})" if parts else ""
    unit = "pairs" if d.paired else "seeds a side"
    if t.proxy:
        parts.append(f"{_seeds(st.seeds_needed(d.measured, sd, alpha, is_paired=d.paired))} {unit} would decide the "
                     f"measured {d.measured:+.2g}")  # fmt: skip
    else:
        n = seeds_to_decide(t, alpha)
        assert n is not None  # a spread above 0
        if t.kind == "equivalence":
            parts.append(f"{_seeds(n.hold)} {unit} would hold it if the true change is 0")
        else:
            hold = f"{_seeds(n.hold)} {unit} would hold it if the true "
            hold += "change is the measured one" if t.kind == "direction" else "change is the claim"
            parts.append(hold)
            if n.fail_applies:
                parts.append(f"{_seeds(n.fail)} would fail it by size if it is 0")
    return f"{', '.join(parts)} (seed sd {sd:.2g}; {level})"


def claimed_sign(t: ClaimTest) -> int:
    """The sign of the difference the claim predicts: +1 or -1 (speedup: fewer images, a negative log ratio)."""
    if t.kind == "speedup":
        return -1 if t.claimed > 1 else 1
    return 1 if t.claimed > 0 else -1


def speedup_verdict(interval: tuple[float, float], claimed: float) -> tuple[Verdict, str]:
    """Paper-data verdict of a speedup claim from the interval [lo, hi] of d = log(variant / baseline images)."""
    lo, hi = interval
    low, high, c = (math.exp(-hi), math.exp(-lo), claimed) if claimed > 1 else (math.exp(lo), math.exp(hi), 1 / claimed)
    span = f"speed-up interval [{low:.3g}x, {high:.3g}x]"
    if high < 1:
        return "does not hold", f"{span} excludes 1 on the other side of the claim"
    if low > 1 and high >= c / 2 and low <= 2 * c:
        return "holds", f"{span} excludes 1 on the claimed side and overlaps [{c / 2:g}x, {2 * c:g}x]"
    if 2 / c < low and high < c / 2:
        return "does not hold", f"{span} lies within ({2 / c:.3g}x, {c / 2:g}x): under half the claimed {c:g}x"
    if low > 2 * c:
        return "inconclusive", f"{span}: the claimed direction, but beyond twice the claim ({2 * c:g}x)"
    return "inconclusive", f"{span} includes 1 and reaches past ({2 / c:.3g}x, {c / 2:g}x)"


SPEEDUP_WINDOW = 5  # curve points in the running mean (engine.curve_every = 10 steps each: 50 batches)


def images_to_threshold(
    curve: Sequence[tuple[int, float]], threshold: float, window: int = SPEEDUP_WINDOW
) -> tuple[int, bool] | None:
    """Training images seen when the running training error first falls to `threshold` (%), and whether it did.

    `curve` is a run's schema.TRAIN_ERR series: (images seen, error % over the last few batches), images ascending.
    The running error is the mean of the last `window` points (a full window; one point of 10 batches is too
    noisy to cross a threshold on); the images are those of the window's last point. A run that never reaches it is
    censored: (images of its last point, False), a lower bound. None: no curve (or shorter than one window)."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    points = sorted(curve)
    if len(points) < window:
        return None
    for i in range(window - 1, len(points)):
        if statistics.fmean(v for _, v in points[i - window + 1 : i + 1]) <= threshold:
            return points[i][0], True
    return points[-1][0], False


def speedup_variants(all_claims: Sequence[Claim]) -> set[str]:
    """The variants whose train_err curves the report reads: both sides of each speedup claim (KSH12 Fig. 1)."""
    return {name for c in all_claims if c.kind == "speedup" for name in (c.variant, c.baseline)}


def speedup_threshold(claim: Claim, proxy: bool) -> float | None:
    """The training error (%) a speedup claim is measured at: `proxy_threshold` on proxy data, else `threshold`."""
    return claim.proxy_threshold if proxy else claim.threshold


def by_seed(
    xs: Sequence[tuple[RunRow, float]], ys: Sequence[tuple[RunRow, float]]
) -> tuple[Difference, str, tuple[str, ...]]:
    """Variant values `xs` against baseline values `ys`, one per run. Seed s of both sides shares its data order and,
    where shapes allow, its init (harness/engine.py: `prepare_model` and the epoch seeds derive from the run's seed),
    so the sides are compared as pairs (paired t on the per-seed differences) when they have at least 2 seeds in
    common, no seed twice on a side, and pairing keeps as many values a side as the verdict needs (min(3, n_a, n_b));
    Welch over all values otherwise. Returns the difference, a note saying which, and the run ids it used."""
    seeds_a, seeds_b = [x.seed for x, _ in xs], [x.seed for x, _ in ys]
    common = sorted({s for s in seeds_a if s is not None} & {s for s in seeds_b if s is not None})
    repeats = len(set(seeds_a)) < len(seeds_a) or len(set(seeds_b)) < len(seeds_b)
    if not repeats and len(common) >= max(2, min(MIN_SEEDS, len(xs), len(ys))):
        va, vb = {x.seed: (x, v) for x, v in xs}, {x.seed: (x, v) for x, v in ys}
        diff = paired_sides([(va[s][1], vb[s][1]) for s in common])
        left = len(xs) + len(ys) - 2 * len(common)
        note = f"paired by seed ({len(common)} common seeds" + (f"; {left} unpaired run(s) left out)" if left else ")")
        ids = tuple(dict.fromkeys([*(va[s][0].run_id for s in common), *(vb[s][0].run_id for s in common)]))
        return diff, note, ids
    why = "a seed repeats on a side" if repeats else f"the sides share {len(common)} seed(s)"
    diff = welch([v for _, v in xs], [v for _, v in ys])
    return diff, f"Welch: {why}", tuple(dict.fromkeys(x.run_id for x, _ in (*xs, *ys)))


def _measure_speedup(
    claim: Claim, a: Sequence[RunRow], b: Sequence[RunRow], proxy: bool
) -> tuple[Difference | None, str, tuple[str, ...]]:
    """log(images to the threshold) of variant runs `a` against baseline runs `b`: paired by seed or Welch
    (`by_seed`); every run that has a curve is counted in the medians."""
    threshold = speedup_threshold(claim, proxy)
    if threshold is None:
        return None, f"the claim gives no {'proxy ' if proxy else ''}threshold", ()
    sides = []
    for runs in (a, b):
        found = [(x.run_id, images_to_threshold(x.train_err, threshold)) for x in runs]
        sides.append([(i, r) for i, r in found if r is not None])
    (xs, ys) = sides
    if not xs or not ys:
        return None, "", ()
    by_id = {x.run_id: x for x in (*a, *b)}
    diff, pairing, _ = by_seed([(by_id[i], math.log(r[0])) for i, r in xs], [(by_id[i], math.log(r[0])) for i, r in ys])
    median = [statistics.median(r[0] for _, r in side) for side in (xs, ys)]
    note = (
        f"threshold {threshold:g} % training error ({'proxy: the harness' if proxy else 'the paper'}'s), running mean "
        f"of {SPEEDUP_WINDOW} logged error points; median training images to it {median[0]:,.0f} (variant) / "
        f"{median[1]:,.0f} (baseline); measured: mean log(images) variant - baseline; {pairing}"
    )
    censored = [sum(not r[1] for _, r in side) for side in (xs, ys)]
    if any(censored):
        note += (
            f"; {censored[0]} / {censored[1]} runs never reached it (counted as all the images they saw, a lower "
            "bound: this shrinks the difference)"
        )
    return diff, note, tuple(dict.fromkeys(i for i, _ in xs + ys))


@dataclass(frozen=True)
class ClaimResult:
    """One claim on one data set, split, profile and pretraining (data None: `not run` anywhere)."""

    claim: Claim
    data: str | None
    split: str | None
    proxy: bool
    diff: Difference | None
    interval: tuple[float, float] | None  # 95 % interval of the difference
    verdict: Verdict
    reason: str
    run_ids: tuple[str, ...]
    profile: str | None = None
    pretrained: str | None = None

    @property
    def measured(self) -> float | None:
        return None if self.diff is None else self.diff.measured

    @property
    def se(self) -> float | None:
        return None if self.diff is None else self.diff.se

    @property
    def n_variant(self) -> int:
        return 0 if self.diff is None else self.diff.n_variant

    @property
    def n_baseline(self) -> int:
        return 0 if self.diff is None else self.diff.n_baseline


@dataclass(frozen=True)
class Measurement:
    """One claim's difference on one data set, split, profile and pretraining (`check_claims` judges it)."""

    data: str
    split: str
    profile: str
    pretrained: str | None
    proxy: bool
    diff: Difference | None  # None: nothing measured here (`not run`, with `note` saying why)
    note: str
    run_ids: tuple[str, ...]
    classes: int | None = None  # the runs' num_classes (the most any of them logged); None: none logged


def _other(protocol: str) -> str:
    return "center" if protocol in ("ten_crop", "five_crop") else "ten_crop"


def proxy_protocol(protocol: str, runs: Sequence[RunRow]) -> str:
    """On proxy data a 10-crop claim is tested with 5 crops without mirrors where the runs have no 10-crop (the
    proxy profile evaluates `five_crop`: a mirrored digit is another symbol)."""
    if protocol == "ten_crop" and all(x.ten_crop_top1 is None for x in runs):
        return "five_crop"
    return protocol


def shared_protocol(runs: Sequence[RunRow], preferred: str, metric: str) -> str:
    """`preferred` when every run has it, else the first protocol that every run has (else `preferred`)."""
    for protocol in (preferred, "center", "ten_crop"):
        if all(run_metric(x, protocol, metric) is not None for x in runs):
            return protocol
    return preferred


def _group(x: RunRow) -> tuple[str, str, str, str]:
    """Runs a claim may compare: one data set, split, profile and pretraining."""
    return x.data, x.split, x.profile, x.pretrained or ""


def _measure_ensemble(
    claim: Claim,
    a: Sequence[RunRow],
    b: Sequence[RunRow],
    preferred: str,
    ensembles: Sequence[EnsembleResult],
    proxy: bool = False,
) -> tuple[Difference | None, str, tuple[str, ...]]:
    """Variant side: disjoint ensembles of `claim.ensemble` runs of `a` (proxy data: `claim_ensemble_size`'s k');
    against `b`'s single runs (Welch), or, when both sides are the same variant, each ensemble minus the mean of its
    own members (paired)."""
    k, ids = claim_ensemble_size(claim.ensemble, len(a), proxy), {x.run_id: x for x in a}
    mine = [e for e in ensembles if e.variant == claim.variant and e.k == k and set(e.run_ids) <= set(ids)]
    protocols = sorted({e.protocol for e in mine}, key=lambda p: (p != preferred, p))
    needed = (
        f"{MIN_SEEDS} disjoint ensembles of {k} need {MIN_SEEDS * k} finished runs of `{claim.variant}` with "
        f"saved predictions here; {len(a)} found"
    )
    chosen: list[EnsembleResult] = []
    for e in sorted(
        (e for e in mine if protocols and e.protocol == protocols[0]),
        key=lambda e: [list(ids).index(i) for i in e.run_ids],
    ):
        if not any(set(e.run_ids) & set(f.run_ids) for f in chosen):
            chosen.append(e)
    if not chosen:
        return None, f"no ensemble of {k} runs: {needed}", ()
    protocol = protocols[0]
    note = f"variant side: {len(chosen)} disjoint ensemble(s) of {k} runs (softmax averaged)"
    if k != claim.ensemble:
        note = (
            f"proxy: {len(chosen)} disjoint ensemble(s) of {k} instead of {claim.ensemble} (of {len(a)} runs; the "
            f"direction only), softmax averaged"
        )
    if protocol != preferred:
        note += f", compared on the {fmt.protocol(protocol)} (the ensembles have no {fmt.protocol(preferred)})"
    values = [getattr(e, claim.metric) for e in chosen]
    if claim.variant == claim.baseline:
        kept, member_means = [], []
        for e, v in zip(chosen, values):
            members = [run_metric(ids[i], protocol, claim.metric) for i in e.run_ids]
            if all(m is not None for m in members):
                kept.append(v)
                member_means.append(statistics.fmean(m for m in members if m is not None))
        if not kept:
            return None, f"the members lack {fmt.protocol(protocol)} {claim.metric} metrics", ()
        diff = replace(
            paired(v - m for v, m in zip(kept, member_means)),
            variant_side=summarize(kept),
            baseline_side=summarize(member_means),
        )
        note += ", each minus the mean of its own members"
        used = tuple(i for e in chosen for i in e.run_ids)
    else:
        base = [(x.run_id, run_metric(x, protocol, claim.metric)) for x in b]
        base = [(i, v) for i, v in base if v is not None]
        if not base:
            return None, f"the baseline runs lack {fmt.protocol(protocol)} {claim.metric} metrics", ()
        diff = welch(values, [v for _, v in base])
        used = tuple(dict.fromkeys([*(i for e in chosen for i in e.run_ids), *(i for i, _ in base)]))
    if len(chosen) < MIN_SEEDS:
        note += f"; {needed}"
    return diff, note, used


def measure(
    claim: Claim, rows: Sequence[RunRow], variants: Sequence[Variant], ensembles: Sequence[EnsembleResult]
) -> list[Measurement]:
    """`claim` measured wherever runs of both sides share a data set, split, profile and pretraining; where none
    do, one Measurement without a difference whose note says what is missing."""
    by_name = {v.name: v for v in variants}
    proxies = {g[0] for g in proxy_groups(rows, variants)}
    plain = order(plain_runs(rows))
    a_runs = [x for x in plain if x.variant == claim.variant]
    b_runs = [x for x in plain if x.variant == claim.baseline]
    if claim.protocol:
        pa, pb = claim.protocol, _other(claim.protocol)
    else:
        base = by_name.get(claim.baseline)
        pa = pb = base.recipe.test_protocol if base else "center"
    out = []
    for g in sorted({_group(x) for x in a_runs} & {_group(x) for x in b_runs}):
        a = [x for x in a_runs if _group(x) == g]
        b = [x for x in b_runs if _group(x) == g]
        note = ""
        if claim.kind == "speedup":
            diff, note, ids = _measure_speedup(claim, a, b, g[0] in proxies)
            if diff is None:
                continue
        elif claim.ensemble > 1:
            diff, note, ids = _measure_ensemble(claim, a, b, pa, ensembles, g[0] in proxies)
        elif claim.protocol and claim.variant == claim.baseline:  # paired: both protocols of the same runs
            proto = proxy_protocol(pa, a) if g[0] in proxies else pa
            pairs = [(x.run_id, run_metric(x, proto, claim.metric), run_metric(x, pb, claim.metric)) for x in a]
            pairs = [(i, u, v) for i, u, v in pairs if u is not None and v is not None]
            if not pairs:
                continue
            diff, ids = paired(u - v for _, u, v in pairs), tuple(i for i, _, _ in pairs)
            note = "paired: both protocols of each run"
            if proto != pa:
                note += (
                    f"; proxy: the {fmt.protocol(proto)} stands for the {fmt.protocol(pa)} (a mirrored digit is "
                    "another symbol)"
                )
        else:
            if claim.protocol:
                proto_a, proto_b = pa, pb
            else:
                proto_a = proto_b = shared_protocol(a + b, pa, claim.metric)
                if proto_a != pa:  # e.g. the proxy evaluates the centre crop only: compare on what both sides have
                    note = f"compared on the {fmt.protocol(proto_a)} (the runs have no {fmt.protocol(pa)})"
            xs = [(x, run_metric(x, proto_a, claim.metric)) for x in a]
            ys = [(x, run_metric(x, proto_b, claim.metric)) for x in b]
            xs, ys = [(x, v) for x, v in xs if v is not None], [(x, v) for x, v in ys if v is not None]
            if not xs or not ys:
                continue
            diff, pairing, ids = by_seed(xs, ys)  # type: ignore[arg-type]  # None values were dropped above
            note = _join(pairing, note)
        data, split, profile, pretrained = g
        classes = max((x.num_classes for x in a + b if x.num_classes), default=None)
        out.append(Measurement(data, split, profile, pretrained or None, data in proxies, diff, note, ids, classes))
    if out:
        return out
    missing = [n for n, runs in ((claim.variant, a_runs), (claim.baseline, b_runs)) if not runs]
    shared = {_group(x) for x in a_runs} & {_group(x) for x in b_runs}
    if missing:
        reason = f"needs finished runs of {' and '.join(dict.fromkeys(missing))} with the paper's recipe"
    elif shared and claim.kind == "speedup":
        reason = f"the runs lack a {schema.TRAIN_ERR} curve (or the claim a threshold for their data)"
    elif shared:
        reason = f"the runs lack {' / '.join(dict.fromkeys(fmt.protocol(p) for p in (pa, pb)))} {claim.metric} metrics"
    else:
        reason = "the runs of the two sides share no data set, split and profile"
    return [Measurement("", "", "", None, False, None, reason, ())]


def proxy_family(
    claims: Sequence[Claim], named: Collection[str] | None = None, untestable: Collection[str] = ()
) -> set[str]:
    """The claims proxy data tests, fixed in advance: those in `named` (the proxy's seed plan), else every claim of
    `claims` but the equivalence ones (a size) and those in `untestable`."""
    names = {c.name for c in claims if c.kind != "equivalence" and c.name not in untestable}
    return names if named is None else names & set(named)


def families(
    claims: Sequence[Claim], named: Collection[str] | None = None, untestable: Collection[str] = ()
) -> Families:
    """Holm's family sizes of a report: every claim of `claims` (the registry's) on the papers' data, the
    `proxy_family` on proxy data."""
    return Families(len({c.name for c in claims}), len(proxy_family(claims, named, untestable)))


def check_claims(
    claims: Sequence[Claim],
    rows: Sequence[RunRow],
    variants: Sequence[Variant],
    ensembles: Sequence[EnsembleResult] = (),
    proxy_claims: Collection[str] | None = None,
    untestable: Mapping[str, str] | None = None,
) -> list[ClaimResult]:
    """Every claim on every data set, split, profile and pretraining holding runs of both sides (one `not run`
    result for a claim measured nowhere), judged together by `verdicts` in two families fixed by the claims, not by
    the runs (`families`): on the papers' data all of `claims`, on proxy data the `proxy_family` of `proxy_claims`.
    `untestable` maps a claim's name to why proxy data cannot test it (`not testable here` there)."""
    untestable = dict(untestable or {})
    family = proxy_family(claims, proxy_claims, untestable)
    measured = [(c, m) for c in claims for m in measure(c, rows, variants, ensembles)]
    tested = [i for i, (_, m) in enumerate(measured) if m.diff is not None]
    tests = [
        ClaimTest(
            c.kind,
            c.delta,
            m.proxy,
            m.diff,  # type: ignore[arg-type]  # tested: measured
            c.metric,
            m.classes,
            untestable.get(c.name, "") if m.proxy else "",
            c.name in family or not m.proxy,
        )
        for c, m in (measured[i] for i in tested)
    ]
    decided = dict(zip(tested, verdicts(tests, families=families(claims, proxy_claims, untestable))))
    out = []
    on_proxy = bool(proxy_groups(rows, variants))
    for i, (c, m) in enumerate(measured):
        if m.diff is None and on_proxy and c.name in untestable:  # not trained on the proxy: why, not "not run"
            v: Verdict = "not testable here"
            reason = untestable[c.name]
        elif m.diff is None:
            v = "not run"
            reason = m.note
        else:
            v, reason = decided[i]
            reason = "; ".join(x for x in (reason, m.note) if x)
        where = (None, None, None) if not m.data else (m.data, m.split, m.profile)
        out.append(
            ClaimResult(
                c,
                where[0],
                where[1],
                m.proxy,
                m.diff,
                None if m.diff is None else m.diff.interval(),
                v,
                reason,
                m.run_ids,
                where[2],
                m.pretrained,
            )
        )
    return out


def check_claim(
    claim: Claim, rows: Sequence[RunRow], variants: Sequence[Variant], ensembles: Sequence[EnsembleResult] = ()
) -> list[ClaimResult]:
    """One claim alone (a family of one): one result per data set, split and profile holding both sides."""
    return check_claims([claim], rows, variants, ensembles)


# --- section 5: proxy results -----------------------------------------------------------------------------------


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
        for protocol in (first, _other(first)):
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


# --- section 6: sweeps -----------------------------------------------------------------------------------------


def sweep_baseline(variant: str, data: Iterable[str], profile: str, rows: Iterable[RunRow]) -> list[RunRow]:
    """Finished paper-recipe runs of `variant` whose data set is one of `data` (a sweep's dataset_name and loader)
    and, when the sweep names one, whose profile is the sweep's: what the sweep's best is compared against."""
    names = {d for d in data if d}
    return order(
        r
        for r in plain_runs(rows)
        if r.variant == variant and r.data in names and (not profile or r.profile == profile)
    )


def sweep_note(epochs: int | None, paper_epochs: Iterable[int]) -> str:
    """Why the sweep's best and the paper recipe's runs may not compare: they trained for different epochs."""
    others = sorted(set(paper_epochs) - {epochs}) if epochs is not None else []
    if not others:
        return ""
    return (
        f"trials trained {epochs} epoch(s), the paper-recipe runs {', '.join(map(str, others))}: "
        "the difference mixes tuning with training length"
    )


# --- section 3: architecture fidelity ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Approximate:
    """A rounded figure a paper gives in prose, e.g. KSH12's "60 million parameters"."""

    variant: str
    params: float
    rel_tol: float
    source: str


APPROXIMATE = (Approximate("alexnet2012", 60e6, 0.05, 'KSH12 s1/abstract: "60 million parameters"'),)
MACS_TOL_G = 0.0005  # reported GMACs are given to 3 decimals
SIZE_TOL_MB = 0.05  # torchvision's file size includes serialisation overhead beyond the float32 weights


@dataclass(frozen=True)
class Fidelity:
    variant: str
    params: int
    gmacs: float
    size_mb: float
    reported_params: int | None
    reported_gmacs: float | None
    reported_size_mb: float | None

    @property
    def params_match(self) -> bool | None:
        return None if self.reported_params is None else self.params == self.reported_params

    @property
    def gmacs_match(self) -> bool | None:
        return None if self.reported_gmacs is None else abs(self.gmacs - self.reported_gmacs) <= MACS_TOL_G

    @property
    def size_match(self) -> bool | None:
        return None if self.reported_size_mb is None else abs(self.size_mb - self.reported_size_mb) <= SIZE_TOL_MB


def fidelity(variant: Variant, params: int, macs: int, size_mb: float) -> Fidelity:
    return Fidelity(
        variant.name,
        params,
        macs / 1e9,
        size_mb,
        variant.reported_params,
        variant.reported_macs,
        variant.reported_size_mb,
    )


def approx_match(a: Approximate, params: int) -> tuple[bool, float]:
    rel = (params - a.params) / a.params
    return abs(rel) <= a.rel_tol, rel

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
paper's recipe of both sides (never pooling profiles); `not run` when none does. Two variants: Welch over seeds.
A protocol claim on one variant (10-crop vs centre): paired, one difference per run. An ensemble claim
(Claim.ensemble = k): the variant side is disjoint ensembles of k runs (lowest seeds first), each the averaged
softmax of its saved predictions; against the same variant each ensemble is paired with the mean of its own
members, against another variant Welch. On proxy data (direction only) the ensembles have k' = max(2, n // 3) of
the n finished runs instead (at most k; 6 runs: 3 disjoint pairs), and the reason says so. A speedup claim (KSH12
Fig. 1): per run the training images seen until the running training error first falls to the claim's threshold
(`images_to_threshold`), Welch over the logs of those counts (variant - baseline), so the difference is a log ratio.
Its verdict is `verdicts`' rule.

A sweep (section 6) is compared with the mean final top-1 of finished, unmodified runs of its variant on the same
data set (tag `dataset_name` or loader) and profile; difference = best trial minus that mean, never a status.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from scipy import stats

from harness import schema
from harness.report import fmt
from harness.report.types import EnsembleResult, RunRow, Stat
from variants import Claim, Reported, Variant
from variants.types import ClaimKind, Metric

Status = Literal["reproduced", "not reproduced", "not comparable", "modified recipe", "not run", "reference only"]
Verdict = Literal["holds", "does not hold", "supported", "contradicted", "inconclusive", "not run"]
STATUSES: tuple[Status, ...] = (
    "reproduced",
    "not reproduced",
    "not comparable",
    "modified recipe",
    "not run",
    "reference only",
)
VERDICTS: tuple[Verdict, ...] = ("holds", "does not hold", "supported", "contradicted", "inconclusive", "not run")


# --- statistics -------------------------------------------------------------------------------------------------


def summarize(values: Iterable[float | None]) -> Stat | None:
    """Mean and sample std (ddof=1) of the values that are not None; sorted first so row order never matters."""
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return None
    return Stat(statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else None, len(xs))


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

ALPHA = 0.05  # proxy verdicts: family-wise error rate of the Holm-corrected one-sided tests
LEVEL = 0.95  # paper verdicts: two-sided confidence level of the interval of the difference
MIN_SEEDS = 3  # values per side before any verdict
# Issue 11: with 10 classes (the proxy's digits) a top-5 guess covers half of them; top-5 tells nothing there.
FEW_CLASSES = 10  # a top-5 claim on data with at most this many classes is never judged


def t_quantile(q: float, df: float) -> float:
    """The q-quantile of Student's t with `df` degrees of freedom."""
    return float(stats.t.ppf(q, df))


@dataclass(frozen=True)
class Difference:
    """A measured difference variant - baseline (percentage points) and the spread it rests on.

    Welch (two independent samples): se = sqrt(s_a^2/n_a + s_b^2/n_b) with Welch-Satterthwaite degrees of freedom.
    Paired (one difference per run or per ensemble): se = s_d / sqrt(n), df = n - 1, n_variant = n_baseline = n.
    `se` is None when a side has fewer than 2 values; se = 0 (no spread at all) makes the interval a point and df None.
    """

    measured: float
    se: float | None
    df: float | None
    n_variant: int
    n_baseline: int
    paired: bool = False
    variant_side: Stat | None = None  # mean ± std (n) of the values each side rests on (None: not kept, e.g. paired
    baseline_side: Stat | None = None  # protocols of one run, where the interval already shows the spread)

    def interval(self, level: float = LEVEL) -> tuple[float, float] | None:
        """Two-sided `level` confidence interval of the difference; None without a standard error."""
        if self.se is None:
            return None
        if self.df is None:
            return self.measured, self.measured
        half = t_quantile(0.5 + level / 2, self.df) * self.se
        return self.measured - half, self.measured + half

    def p_one_sided(self, direction: int) -> float | None:
        """p-value of the one-sided t-test against `direction * difference <= 0` (direction +1 or -1)."""
        if self.se is None:
            return None
        t = direction * self.measured
        if self.df is None:  # no spread: the sign alone decides
            return 0.0 if t > 0 else 1.0
        return float(stats.t.sf(t / self.se, self.df))


def welch(a: Iterable[float], b: Iterable[float]) -> Difference:
    """mean(a) - mean(b) with Welch's standard error and degrees of freedom (unequal variances)."""
    xs, ys = sorted(a), sorted(b)  # sorted: the same values give the same bits whatever the row order
    if not xs or not ys:
        raise ValueError("welch needs at least one value on each side")
    measured = statistics.fmean(xs) - statistics.fmean(ys)
    sides = {"variant_side": summarize(xs), "baseline_side": summarize(ys)}
    if len(xs) < 2 or len(ys) < 2:
        return Difference(measured, None, None, len(xs), len(ys), **sides)
    va, vb = statistics.variance(xs) / len(xs), statistics.variance(ys) / len(ys)
    se = math.sqrt(va + vb)
    df = None if se == 0 else (va + vb) ** 2 / (va**2 / (len(xs) - 1) + vb**2 / (len(ys) - 1))
    return Difference(measured, se, df, len(xs), len(ys), **sides)


def paired(diffs: Iterable[float]) -> Difference:
    """The mean of per-run (or per-ensemble) differences with the one-sample standard error, df = n - 1."""
    ds = sorted(diffs)
    if not ds:
        raise ValueError("paired needs at least one difference")
    n, measured = len(ds), statistics.fmean(ds)
    if n < 2:
        return Difference(measured, None, None, n, n, paired=True)
    se = statistics.stdev(ds) / math.sqrt(n)
    return Difference(measured, se, None if se == 0 else n - 1.0, n, n, paired=True)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order: the i-th smallest (i = 1..m) times m - i + 1, never
    below the one before it, at most 1. A hypothesis is rejected at family-wise level alpha iff its value <= alpha."""
    m = len(pvalues)
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: (pvalues[j], j))):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class ClaimTest:
    """One claim measured on one data set, split and profile: what the verdict rule reads."""

    kind: ClaimKind
    claimed: float  # Claim.delta: the claimed change variant - baseline, or (equivalence) the bound on |change|
    proxy: bool
    diff: Difference
    metric: Metric = "top1"
    classes: int | None = None  # classes of the data the runs used (param num_classes); None: unknown

    @property
    def uninformative(self) -> bool:
        """A top-5 claim on data with so few classes that top-5 carries no information."""
        return self.metric == "top5" and self.classes is not None and self.classes <= FEW_CLASSES


def verdicts(tests: Sequence[ClaimTest], alpha: float = ALPHA, level: float = LEVEL) -> list[tuple[Verdict, str]]:
    """The claim rule: a verdict and its reason for every claim measured in one report, in the order given.

    d = variant - baseline in percentage points and c = the claim (Claim.delta). The 95 % interval [lo, hi] of d is
    Welch's (unequal variances, Welch-Satterthwaite df) or, for paired measurements (two protocols of the same runs;
    ensembles against their own members), the one-sample t interval of the per-pair differences (df = n - 1).

    Any data: a top-5 claim measured on data with at most 10 classes (ClaimTest.classes, from the runs' param
    num_classes; unknown counts as many) -> inconclusive, "top-5 of N classes carries no information", and outside
    the proxy family. Fewer than 3 values (seeds; ensembles) on a side -> inconclusive, saying how many there are.

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
      anything else is inconclusive: an interval that contains 0 and reaches past +-|c|/2, or (difference) one that
      lies entirely beyond 2c, where the direction holds but the effect is more than twice the claim.
    ("Excludes 0" is strict: an interval ending at 0 does not exclude it; interval ends are included in [c/2, 2c].)

    Proxy data: the papers' sizes mean nothing there; only the direction is tested. A difference, at_least or
    direction claim gives two one-sided t-tests (Welch's, or one-sample when paired): for the claimed direction
    (H0: sign(c) d <= 0) and against it (H0: sign(c) d >= 0). Holm's step-down correction runs over both tests of
    every such claim on proxy data in `tests` but top-5 on few classes (family-wise alpha 0.05; counting both
    directions makes each pair a two-sided test with a directional decision, so a null effect is called either way
    with probability at most alpha):
      supported     the test for the claimed direction rejects after correction;
      contradicted  the test against it rejects after correction;
      inconclusive  neither does.
    Equivalence claims on proxy data are inconclusive and outside the family: "changes little" is a statement about
    size, which a proxy cannot test.

    Speedup claims (KSH12 Fig. 1): d = mean log(images to the threshold) of the variant minus the baseline's, c the
    claimed factor (> 1: the variant needs 1/c of the images). On proxy data d < 0 is the claimed direction, tested
    in the same Holm family. On paper data the interval is read as a ratio r = baseline / variant = exp(-d), [exp(-hi),
    exp(-lo)], with the difference rule's half-to-twice logic made multiplicative (`speedup_verdict`): holds when
    it excludes 1 on the claimed side and overlaps [c/2, 2c] ([3, 12] for "six times"); does not hold when it excludes
    1 on the other side, or lies within (2/c, c/2) (less than half the claimed factor either way); inconclusive
    otherwise (an interval that contains 1 and reaches past that band, or lies entirely beyond 2c). A claimed c < 1
    is judged as 1/c with the ratio inverted.
    """
    for t in tests:
        if (t.claimed <= 0) if t.kind in ("equivalence", "speedup") else (t.claimed == 0):
            raise ValueError(f"a {t.kind} claim of {t.claimed:+g}: no direction or bound to test")
        if t.kind == "speedup" and t.claimed == 1:
            raise ValueError("a speedup claim of 1x: no direction to test")
    enough = [t.diff.se is not None and min(t.diff.n_variant, t.diff.n_baseline) >= MIN_SEEDS for t in tests]
    family = [
        i for i, t in enumerate(tests) if enough[i] and t.proxy and t.kind != "equivalence" and not t.uninformative
    ]
    pvalues = []
    for i in family:
        sign = claimed_sign(tests[i])
        pvalues += [tests[i].diff.p_one_sided(sign), tests[i].diff.p_one_sided(-sign)]
    adjusted = holm(pvalues)  # type: ignore[arg-type]  # family members have a standard error
    by_test = {
        i: (pvalues[2 * j], adjusted[2 * j], pvalues[2 * j + 1], adjusted[2 * j + 1]) for j, i in enumerate(family)
    }
    out: list[tuple[Verdict, str]] = []
    for i, t in enumerate(tests):
        d, c = t.diff, abs(t.claimed)
        v: Verdict = "inconclusive"
        if t.uninformative:
            why = f"top-5 of {t.classes} classes carries no information"
        elif not enough[i]:
            why = f"needs at least {MIN_SEEDS} seeds a side, has {d.n_variant} / {d.n_baseline}"
        elif t.proxy and t.kind == "equivalence":
            why = f"|difference| <= {c:g} is a size; proxy data tests the direction only"
        elif t.proxy:
            p_for, adj_for, p_against, adj_against = by_test[i]
            if adj_for <= alpha:
                v, why = "supported", f"claimed direction: p {p_for:.2g}, Holm-adjusted {adj_for:.2g}"
            elif adj_against <= alpha:
                v, why = "contradicted", f"opposite direction: p {p_against:.2g}, Holm-adjusted {adj_against:.2g}"
            else:
                p, adj = min((p_for, adj_for), (p_against, adj_against))
                why = f"neither direction: p {p:.2g}, Holm-adjusted {adj:.2g} > {alpha:g}"
            why += f" ({len(pvalues)} one-sided tests in the family)"
        elif t.kind == "speedup":
            v, why = speedup_verdict(d.interval(level), t.claimed)  # type: ignore[arg-type]
        elif t.kind == "equivalence":
            lo, hi = d.interval(level)  # type: ignore[misc]  # enough[i]: a standard error exists
            if -c <= lo and hi <= c:
                v, why = "holds", f"the interval lies within ±{c:g}"
            elif lo > c or hi < -c:
                v, why = "does not hold", f"the interval lies entirely outside ±{c:g}"
            else:
                why = f"the interval reaches past ±{c:g}"
        elif t.kind == "direction":
            lo, hi = d.interval(level)  # type: ignore[misc]
            low, high = (lo, hi) if t.claimed > 0 else (-hi, -lo)  # positive: the way the paper says
            if low > 0:
                v, why = "holds", "the interval excludes 0 on the claimed side"
            elif high < 0:
                v, why = "does not hold", "the interval excludes 0 on the other side of the claim"
            else:
                why = "the interval includes 0"
        else:
            lo, hi = d.interval(level)  # type: ignore[misc]
            low, high = (lo, hi) if t.claimed > 0 else (-hi, -lo)  # positive: the way the paper says
            reach = c if t.kind == "at_least" else c / 2
            half = f"±{c / 2:g} (half the claim)"
            if high < 0:
                v, why = "does not hold", "the interval excludes 0 on the other side of the claim"
            elif low > 0 and high >= reach and (t.kind == "at_least" or low <= 2 * c):
                ends = sorted((t.claimed / 2, 2 * t.claimed))
                target = (
                    f"reaches the claimed bound {t.claimed:+g}"
                    if t.kind == "at_least"
                    else f"overlaps [{ends[0]:+g}, {ends[1]:+g}]"
                )
                v, why = "holds", f"the interval excludes 0 on the claimed side and {target}"
            elif -c / 2 < low and high < c / 2:
                v, why = "does not hold", f"the interval lies within {half}"
            elif low > 2 * c:
                why = f"the claimed direction, but the whole interval is beyond twice the claim ({2 * t.claimed:+g})"
            elif low > 0:
                why = f"the claimed direction, but the interval stops short of the claimed bound {t.claimed:+g}"
            else:
                why = f"the interval includes 0 and reaches past {half}"
        out.append((v, why))
    return out


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


def speedup_threshold(claim: Claim, proxy: bool) -> float | None:
    """The training error (%) a speedup claim is measured at: `proxy_threshold` on proxy data, else `threshold`."""
    return claim.proxy_threshold if proxy else claim.threshold


def _measure_speedup(
    claim: Claim, a: Sequence[RunRow], b: Sequence[RunRow], proxy: bool
) -> tuple[Difference | None, str, tuple[str, ...]]:
    """Welch over log(images to the threshold): variant runs `a` against baseline runs `b`."""
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
    diff = welch([math.log(r[0]) for _, r in xs], [math.log(r[0]) for _, r in ys])
    median = [statistics.median(r[0] for _, r in side) for side in (xs, ys)]
    note = (
        f"threshold {threshold:g} % training error ({'proxy: the harness' if proxy else 'the paper'}'s), running mean "
        f"of {SPEEDUP_WINDOW} logged error points; median training images to it {median[0]:,.0f} (variant) / "
        f"{median[1]:,.0f} (baseline); measured: mean log(images) variant - baseline"
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
class _Measure:
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
    return "center" if protocol == "ten_crop" else "ten_crop"


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


def _measure(
    claim: Claim, rows: Sequence[RunRow], variants: Sequence[Variant], ensembles: Sequence[EnsembleResult]
) -> list[_Measure]:
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
            pairs = [(x.run_id, run_metric(x, pa, claim.metric), run_metric(x, pb, claim.metric)) for x in a]
            pairs = [(i, u, v) for i, u, v in pairs if u is not None and v is not None]
            if not pairs:
                continue
            diff, ids = paired(u - v for _, u, v in pairs), tuple(i for i, _, _ in pairs)
            note = "paired: both protocols of each run"
        else:
            if claim.protocol:
                proto_a, proto_b = pa, pb
            else:
                proto_a = proto_b = shared_protocol(a + b, pa, claim.metric)
                if proto_a != pa:  # e.g. the proxy evaluates the centre crop only: compare on what both sides have
                    note = f"compared on the {fmt.protocol(proto_a)} (the runs have no {fmt.protocol(pa)})"
            xs = [(x.run_id, run_metric(x, proto_a, claim.metric)) for x in a]
            ys = [(x.run_id, run_metric(x, proto_b, claim.metric)) for x in b]
            xs, ys = [(i, v) for i, v in xs if v is not None], [(i, v) for i, v in ys if v is not None]
            if not xs or not ys:
                continue
            diff = welch([v for _, v in xs], [v for _, v in ys])
            ids = tuple(dict.fromkeys(i for i, _ in xs + ys))
        data, split, profile, pretrained = g
        classes = max((x.num_classes for x in a + b if x.num_classes), default=None)
        out.append(_Measure(data, split, profile, pretrained or None, data in proxies, diff, note, ids, classes))
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
    return [_Measure("", "", "", None, False, None, reason, ())]


def check_claims(
    claims: Sequence[Claim],
    rows: Sequence[RunRow],
    variants: Sequence[Variant],
    ensembles: Sequence[EnsembleResult] = (),
) -> list[ClaimResult]:
    """Every claim on every data set, split, profile and pretraining holding runs of both sides (one `not run`
    result for a claim measured nowhere), judged together by `verdicts`: the proxy family is the whole list."""
    measured = [(c, m) for c in claims for m in _measure(c, rows, variants, ensembles)]
    tested = [i for i, (_, m) in enumerate(measured) if m.diff is not None]
    decided = dict(
        zip(
            tested,
            verdicts(
                [
                    ClaimTest(c.kind, c.delta, m.proxy, m.diff, c.metric, m.classes)  # type: ignore[arg-type]
                    for c, m in (measured[i] for i in tested)
                ]
            ),
        )
    )  # type: ignore[arg-type]
    out = []
    for i, (c, m) in enumerate(measured):
        if m.diff is None:
            v: Verdict = "not run"
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
    """One claim alone (its own proxy family): one result per data set, split and profile holding both sides."""
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

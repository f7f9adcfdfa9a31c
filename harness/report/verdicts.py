"""The claim rule: a verdict for every claim measured in one report, from its difference and the claim alone. Pure.

`verdicts` is the rule (its docstring and docs/verdicts.md give it whole); each claim kind's reading of an interval
on the papers' data is one small function (`RULES`). `seeds_to_decide` and `design_note` say how far an undecided
claim's seeds are from deciding it. The statistics are in `harness.report.stats`; how claims are measured from runs
is `harness.report.claims`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from harness.report import fmt
from harness.report import stats as st
from harness.report.stats import ALPHA, LEVEL, Difference, holm
from variants.types import ClaimKind, Metric

Verdict = Literal["holds", "does not hold", "supported", "contradicted", "inconclusive", "not testable here", "not run"]
VERDICTS: tuple[Verdict, ...] = (
    "holds",
    "does not hold",
    "supported",
    "contradicted",
    "inconclusive",
    "not testable here",
    "not run",
)
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
    d = t.diff
    up, down = d.p_above(0.0), d.p_below(0.0)
    assert up is not None and down is not None  # only tests with a standard error are judged
    ps = [up, down] if t.proxy else _paper_ps(t.kind, d, abs(t.claimed), up, down)
    return min(1.0, 2 * min(ps))


def _paper_ps(kind: ClaimKind, d: Difference, c: float, up: float, down: float) -> list[float]:
    """The one-sided p-values of the statements a paper-data claim of `kind` can make (see `claim_p`)."""
    if kind in ("difference", "at_least"):
        return [up, down, max(d.p_above(-c / 2), d.p_below(c / 2))]  # type: ignore[type-var]
    if kind == "equivalence":
        return [max(d.p_above(-c), d.p_below(c)), min(d.p_above(c), d.p_below(-c))]  # type: ignore[type-var]
    factor = (c if c > 1 else 1 / c) if kind == "speedup" else 0.0
    if factor > 2:
        band = math.log(factor / 2)
        return [up, down, max(d.p_above(-band), d.p_below(band))]  # type: ignore[type-var]
    return [up, down]  # direction; a speedup claim of at most 2x has no band


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
    rule's half-to-twice logic made multiplicative (`speedup_rule`).

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
                out[i] = (v[0], fmt.join(v[1], design_note(t, design)))
        ps = [claim_p(tests[i]) for i in members]
        adjusted, levels = holm(ps, size), st.holm_levels(ps, size, alpha)
        for j, i in enumerate(members):
            judge = _proxy_verdict if proxy else _paper_verdict
            out[i] = judge(tests[i], ps[j], adjusted[j], levels[j], size, alpha)
    return [x for x in out if x is not None]


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
        return "inconclusive", fmt.join(f"neither direction: {holm_text} > {alpha:g}", design_note(t, alpha / size))
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
        return "inconclusive", fmt.join(f"{why}; {holm_text} > {alpha:g}", design_note(t, alpha / size))
    why = f"{why} ({holm_text})"
    return v, (why if v != "inconclusive" else fmt.join(why, design_note(t, alpha / size)))


def paper_rule(t: ClaimTest, interval: tuple[float, float]) -> tuple[Verdict, str]:
    """The paper-data verdict of one claim read on one interval [lo, hi] of d (see `verdicts`): its kind's rule."""
    return RULES[t.kind](interval, t.claimed)


def equivalence_rule(interval: tuple[float, float], claimed: float) -> tuple[Verdict, str]:
    """claimed > 0 bounds |d| ("changes little"): holds within [-c, c], does not hold entirely outside it."""
    c = abs(claimed)
    lo, hi = interval
    if -c <= lo and hi <= c:
        return "holds", f"the interval lies within ±{c:g}"
    if lo > c or hi < -c:
        return "does not hold", f"the interval lies entirely outside ±{c:g}"
    return "inconclusive", f"the interval reaches past ±{c:g}"


def direction_rule(interval: tuple[float, float], claimed: float) -> tuple[Verdict, str]:
    """A sign without a size (claimed is -1 or +1): holds when the interval excludes 0 on the claimed side."""
    lo, hi = interval
    low, high = (lo, hi) if claimed > 0 else (-hi, -lo)  # positive: the way the paper says
    if low > 0:
        return "holds", "the interval excludes 0 on the claimed side"
    if high < 0:
        return "does not hold", "the interval excludes 0 on the other side of the claim"
    return "inconclusive", "the interval includes 0"


def difference_rule(interval: tuple[float, float], claimed: float) -> tuple[Verdict, str]:
    """A signed size: holds when the interval excludes 0 on the claimed side and overlaps [c/2, 2c]."""
    return _size_rule(interval, claimed, at_least=False)


def at_least_rule(interval: tuple[float, float], claimed: float) -> tuple[Verdict, str]:
    """A bound ("by over 1 %"): holds when the interval excludes 0 on the claimed side and reaches the bound."""
    return _size_rule(interval, claimed, at_least=True)


def _size_rule(interval: tuple[float, float], claimed: float, at_least: bool) -> tuple[Verdict, str]:
    c = abs(claimed)
    lo, hi = interval
    low, high = (lo, hi) if claimed > 0 else (-hi, -lo)  # positive: the way the paper says
    reach = c if at_least else c / 2
    half = f"±{c / 2:g} (half the claim)"
    if high < 0:
        return "does not hold", "the interval excludes 0 on the other side of the claim"
    if low > 0 and high >= reach and (at_least or low <= 2 * c):
        ends = sorted((claimed / 2, 2 * claimed))
        target = f"reaches the claimed bound {claimed:+g}" if at_least else f"overlaps [{ends[0]:+g}, {ends[1]:+g}]"
        return "holds", f"the interval excludes 0 on the claimed side and {target}"
    if -c / 2 < low and high < c / 2:
        return "does not hold", f"the interval lies within {half}"
    if low > 2 * c:
        return (
            "inconclusive",
            f"the claimed direction, but the whole interval is beyond twice the claim ({2 * claimed:+g})",
        )
    if low > 0:
        return (
            "inconclusive",
            f"the claimed direction, but the interval stops short of the claimed bound {claimed:+g}",
        )
    return "inconclusive", f"the interval includes 0 and reaches past {half}"


def speedup_rule(interval: tuple[float, float], claimed: float) -> tuple[Verdict, str]:
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


Rule = Callable[[tuple[float, float], float], tuple[Verdict, str]]
RULES: dict[ClaimKind, Rule] = {
    "difference": difference_rule,
    "at_least": at_least_rule,
    "equivalence": equivalence_rule,
    "direction": direction_rule,
    "speedup": speedup_rule,
}


def claimed_sign(t: ClaimTest) -> int:
    """The sign of the difference the claim predicts: +1 or -1 (speedup: fewer images, a negative log ratio)."""
    if t.kind == "speedup":
        return -1 if t.claimed > 1 else 1
    return 1 if t.claimed > 0 else -1


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
        # a speedup's d is log(variant / baseline images): shown as the ratio baseline / variant, as its interval
        measured = f"{math.exp(-d.measured):.3g}x" if t.kind == "speedup" else f"{d.measured:+.2g}"
        n = st.seeds_needed(d.measured, sd, alpha, is_paired=d.paired)
        parts.append(f"{_seeds(n)} {unit} would decide the measured {measured}")
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

"""The statistics behind the claim verdicts: differences over seeds (Welch, paired), Holm's step-down, and how many
seeds a design needs. Pure: numbers in, numbers out; no runs, claims or text.

Conventions: differences are variant - baseline in percentage points; `alpha` is a two-sided level (0.05: a 95 %
interval), so each one-sided test of a direction runs at alpha / 2; power is the chance to decide when the true
difference is the one asked about.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scipy import stats

from harness.report.types import Stat

ALPHA = 0.05  # family-wise error rate of every family of claims (Holm)
LEVEL = 0.95  # two-sided confidence level of the interval a single claim is read from (1 - ALPHA)
POWER = 0.8  # seeds needed / smallest detectable effect: the chance to decide at the true difference asked about
MAX_SEEDS = 1000  # seeds_needed gives up beyond this (None: "more than 1000")


def summarize(values: Iterable[float | None]) -> Stat | None:
    """Mean and sample std (ddof=1) of the values that are not None; sorted first so row order never matters."""
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return None
    return Stat(statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else None, len(xs))


def t_quantile(q: float, df: float) -> float:
    """The q-quantile of Student's t with `df` degrees of freedom."""
    return float(stats.t.ppf(q, df))


@dataclass(frozen=True)
class Difference:
    """A measured difference variant - baseline (percentage points) and the spread it rests on.

    Welch (two independent samples): se = sqrt(s_a^2/n_a + s_b^2/n_b) with Welch-Satterthwaite degrees of freedom.
    Paired (one difference per seed, per run or per ensemble): se = s_d / sqrt(n), df = n - 1, n_variant = n_baseline
    = n. `se` is None when a side has fewer than 2 values; se = 0 (no spread at all) makes the interval a point and
    df None.
    """

    measured: float
    se: float | None
    df: float | None
    n_variant: int
    n_baseline: int
    paired: bool = False
    variant_side: Stat | None = None  # mean ± std (n) of the values each side rests on (None: not kept, e.g. paired
    baseline_side: Stat | None = None  # protocols of one run, where the interval already shows the spread)
    sd_diff: float | None = None  # paired: the sample std of the per-pair differences (None: Welch, or one pair)

    def interval(self, level: float = LEVEL) -> tuple[float, float] | None:
        """Two-sided `level` confidence interval of the difference; None without a standard error."""
        if self.se is None:
            return None
        if self.df is None:
            return self.measured, self.measured
        half = t_quantile(0.5 + level / 2, self.df) * self.se
        return self.measured - half, self.measured + half

    def p_above(self, x: float = 0.0) -> float | None:
        """p-value of the one-sided t-test of H0: difference <= x (small when the difference is clearly above x)."""
        if self.se is None:
            return None
        if self.df is None:  # no spread: the point alone decides
            return 0.0 if self.measured > x else 1.0
        return float(stats.t.sf((self.measured - x) / self.se, self.df))

    def p_below(self, x: float = 0.0) -> float | None:
        """p-value of the one-sided t-test of H0: difference >= x."""
        if self.se is None:
            return None
        if self.df is None:
            return 0.0 if self.measured < x else 1.0
        return float(stats.t.sf((x - self.measured) / self.se, self.df))

    def p_one_sided(self, direction: int) -> float | None:
        """p-value of the one-sided t-test against `direction * difference <= 0` (direction +1 or -1)."""
        return self.p_above(0.0) if direction > 0 else self.p_below(0.0)

    def spread(self) -> float | None:
        """The seed standard deviation the design rests on: paired, that of the per-pair differences; Welch, the
        root mean square of the sides' stds that are known (one side of a single seed borrows the other's). Without
        them, from the standard error: se sqrt(n) paired, se / sqrt(1/n_a + 1/n_b) for two sides."""
        if self.paired and self.sd_diff is not None:
            return self.sd_diff
        sds = [s.std for s in (self.variant_side, self.baseline_side) if s is not None and s.std is not None]
        if sds and not self.paired:
            return math.sqrt(statistics.fmean(x * x for x in sds))
        if self.se is None:
            return None
        if self.paired:
            return self.se * math.sqrt(self.n_variant)
        return self.se / math.sqrt(1 / self.n_variant + 1 / self.n_baseline)


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
    """The mean of per-pair differences with the one-sample standard error, df = n - 1."""
    ds = sorted(diffs)
    if not ds:
        raise ValueError("paired needs at least one difference")
    n, measured = len(ds), statistics.fmean(ds)
    if n < 2:
        return Difference(measured, None, None, n, n, paired=True)
    sd = statistics.stdev(ds)
    se = sd / math.sqrt(n)
    return Difference(measured, se, None if se == 0 else n - 1.0, n, n, paired=True, sd_diff=sd)


def paired_sides(pairs: Sequence[tuple[float, float]]) -> Difference:
    """Paired t on (variant, baseline) values of the same seed: `paired` of their differences, each side's summary
    kept for the report."""
    d = paired(a - b for a, b in pairs)
    return Difference(
        d.measured,
        d.se,
        d.df,
        d.n_variant,
        d.n_baseline,
        True,
        summarize(a for a, _ in pairs),
        summarize(b for _, b in pairs),
        d.sd_diff,
    )


# --- multiplicity ----------------------------------------------------------------------------------------------


def holm(pvalues: Sequence[float], m: int | None = None) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order: the i-th smallest (i = 1..m) times m - i + 1, never
    below the one before it, at most 1. A hypothesis is rejected at family-wise level alpha iff its value <= alpha.
    `m` is the family's size fixed in advance (default: the p-values given); members without a p-value (not measured)
    count as p = 1, so they only enlarge the multipliers."""
    m = len(pvalues) if m is None else m
    if m < len(pvalues):
        raise ValueError(f"a family of {m} cannot hold {len(pvalues)} p-values")
    adjusted = [1.0] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(range(len(pvalues)), key=lambda j: (pvalues[j], j))):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def holm_levels(pvalues: Sequence[float], m: int | None = None, alpha: float = ALPHA) -> list[float | None]:
    """The level each hypothesis is rejected at by Holm's step-down over a family of `m`: alpha / (m - i + 1) for
    the i-th smallest p-value while every smaller one was rejected; None from the first that is not."""
    adjusted = holm(pvalues, m)
    m = len(pvalues) if m is None else m
    out: list[float | None] = [None] * len(pvalues)
    for rank, i in enumerate(sorted(range(len(pvalues)), key=lambda j: (pvalues[j], j))):
        if adjusted[i] > alpha:
            break
        out[i] = alpha / (m - rank)
    return out


# --- design: seeds needed, smallest detectable effect ----------------------------------------------------------


def _se_df(sd: float, n: int, is_paired: bool) -> tuple[float, float]:
    """Standard error and df of a difference with n seeds a side (paired: n pairs, `sd` of the differences;
    otherwise two independent sides of the same `sd`: se = sd sqrt(2/n), df = 2n - 2)."""
    return (sd / math.sqrt(n), n - 1.0) if is_paired else (sd * math.sqrt(2.0 / n), 2.0 * n - 2.0)


def power_direction(effect: float, sd: float, n: int, alpha: float = ALPHA, is_paired: bool = False) -> float:
    """Power of the one-sided t-test at alpha / 2 (the interval at 1 - alpha excluding 0) when the true difference
    is `effect` (> 0): the noncentral t's tail beyond the critical value."""
    se, df = _se_df(sd, n, is_paired)
    return float(stats.nct.sf(t_quantile(1 - alpha / 2, df), df, abs(effect) / se))


def power_within(margin: float, sd: float, n: int, alpha: float = ALPHA, is_paired: bool = False) -> float:
    """Power of the two one-sided tests (the interval at 1 - alpha inside ±margin) when the true difference is 0:
    2 F_t(margin / se - t_crit) - 1, the usual approximation that treats the sample std as known (Julious 2004)."""
    se, df = _se_df(sd, n, is_paired)
    return max(0.0, 2.0 * float(stats.t.cdf(margin / se - t_quantile(1 - alpha / 2, df), df)) - 1.0)


def seeds_needed(
    effect: float,
    sd: float,
    alpha: float = ALPHA,
    power: float = POWER,
    is_paired: bool = False,
    within: bool = False,
) -> int | None:
    """The fewest seeds a side (pairs, when paired) that decide a claim with probability `power` at the seed spread
    `sd`: `within` False, the interval at 1 - alpha excludes 0 when the true difference is `effect`; True, it lies
    inside ±effect when the true difference is 0. At least 2; None beyond MAX_SEEDS (or no spread to scale by)."""
    if effect == 0 or not math.isfinite(effect):
        return None
    if sd == 0:
        return 2
    if not (sd > 0 and math.isfinite(sd)):
        return None
    test = power_within if within else power_direction

    def ok(n: int) -> bool:
        return test(abs(effect), sd, n, alpha, is_paired) >= power

    if not ok(MAX_SEEDS):
        return None
    lo, hi = 1, MAX_SEEDS  # ok(hi), not ok(lo) (n = 1 has no spread): power grows with n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def detectable(se: float, df: float | None, alpha: float = ALPHA, power: float = POWER) -> float | None:
    """The smallest true difference the design detects with probability `power` (the interval at 1 - alpha excluding
    0): (t_{1 - alpha/2} + t_{power}) se at the design's df (normal quantiles when df is None, i.e. no spread)."""
    if df is None:
        return 0.0 if se == 0 else None
    return (t_quantile(1 - alpha / 2, df) + t_quantile(power, df)) * se

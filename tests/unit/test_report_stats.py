"""The verdicts' statistics (`harness.report.stats`) against textbook numbers: paired against Welch on the same
values, Holm over a family fixed in advance, seeds needed and the smallest detectable effect."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sp

from harness.report import stats

# seed s of both sides: a large seed-to-seed spread that both sides share, a steady gap of about -1.25
VARIANT = (57.8, 58.9, 57.2, 58.4)
BASELINE = (59.0, 60.2, 58.5, 59.6)


def test_paired_and_welch_on_the_same_numbers_give_the_textbook_p_values() -> None:
    w = stats.welch(VARIANT, BASELINE)
    p = stats.paired_sides(list(zip(VARIANT, BASELINE)))
    assert w.measured == pytest.approx(p.measured) == pytest.approx(-1.25)
    ind, rel = sp.ttest_ind(VARIANT, BASELINE, equal_var=False), sp.ttest_rel(VARIANT, BASELINE)
    assert 2 * w.p_below() == pytest.approx(ind.pvalue) and 2 * p.p_below() == pytest.approx(rel.pvalue)
    assert ind.pvalue > 0.05 > 0.001 > rel.pvalue  # the seeds' shared spread hides the gap from Welch
    assert p.interval() == pytest.approx(tuple(rel.confidence_interval(0.95)))
    assert p.paired and p.df == 3.0 and p.sd_diff == pytest.approx(0.0577, abs=1e-4)  # differences -1.2,-1.3,-1.3,-1.2
    assert p.variant_side == stats.summarize(VARIANT) and p.baseline_side == stats.summarize(BASELINE)


def test_one_sided_p_values_against_any_point() -> None:
    d = stats.Difference(-1.0, 0.5, 4.0, 3, 3)
    assert d.p_above(-2.0) == pytest.approx(sp.t.sf(2.0, 4))  # H0: d <= -2, t = (-1 + 2) / 0.5
    assert d.p_below(0.0) == pytest.approx(sp.t.sf(2.0, 4))  # H0: d >= 0
    assert d.p_above(0.0) + d.p_below(0.0) == pytest.approx(1.0)
    point = stats.Difference(-1.0, 0.0, None, 3, 3)  # no spread: the point decides
    assert (point.p_below(0.0), point.p_above(0.0)) == (0.0, 1.0)
    assert stats.Difference(-1.0, None, None, 1, 3).p_above() is None


def test_holm_on_a_known_family() -> None:
    # Holm (1979): sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm_levels([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.05 / 3, None, None, 0.05 / 4])
    assert stats.holm([]) == [] and stats.holm_levels([]) == []


def test_holm_with_a_family_fixed_in_advance() -> None:
    """Two of four registered claims measured: the two missing ones count as p = 1, so the multipliers are 4 and 3."""
    assert stats.holm([0.01, 0.02], m=4) == pytest.approx([0.04, 0.06])
    assert stats.holm_levels([0.01, 0.02], m=4) == [0.0125, None]
    assert stats.holm_levels([0.001, 0.01, 0.04], m=3) == pytest.approx([0.05 / 3, 0.025, 0.05])
    assert stats.holm([0.01, 0.02]) == pytest.approx([0.02, 0.02])  # the family of what was measured: x2, x1
    with pytest.raises(ValueError):
        stats.holm([0.01, 0.02, 0.03], m=2)


@pytest.mark.parametrize(("effect", "n"), [(1.0, 17), (0.8, 26), (0.5, 64)])
def test_seeds_needed_match_cohens_table(effect: float, n: int) -> None:
    """Cohen (1988) Table 2.4.1: two-sample t, two-sided alpha 0.05, power 0.8: d = 1.0 -> 17, 0.8 -> 26, 0.5 -> 64
    per group; the fewest that reach the power."""
    assert stats.seeds_needed(effect, 1.0) == n
    assert stats.seeds_needed(2 * effect, 2.0) == n  # only effect / sd counts
    assert stats.power_direction(effect, 1.0, n) >= 0.8 > stats.power_direction(effect, 1.0, n - 1)


def test_seeds_needed_paired_and_after_correction() -> None:
    assert stats.seeds_needed(1.0, 1.0, is_paired=True) == 10  # one-sample t, d = 1 (G*Power: n = 10)
    # a 0.4-point claim at a seed sd of 0.3 among 35 claims: two-sided alpha 0.05 / 35
    corrected = stats.seeds_needed(0.4, 0.3, alpha=0.05 / 35)
    normal = 2 * ((sp.norm.isf(0.05 / 70) + sp.norm.isf(0.2)) * 0.3 / 0.4) ** 2  # 18.3: z quantiles, sd known
    assert stats.seeds_needed(0.4, 0.3) == 10 and corrected == 21  # the t quantiles of 40 df add 3 seeds to 18.3
    assert math.ceil(normal) <= corrected <= math.ceil(normal) + 3
    assert stats.seeds_needed(0.0, 1.0) is None and stats.seeds_needed(1e-3, 1.0) is None  # beyond MAX_SEEDS
    assert stats.seeds_needed(1.0, 0.0) == 2


def test_seeds_needed_to_lie_within_a_margin_by_hand() -> None:
    """Two one-sided tests at 0.025 each, true difference 0, margin = sd: power 2 F_t(margin / se - t_crit) - 1.
    n = 22: se = sqrt(2/22) = 0.3015, t_crit(42) = 2.018: 2 F_t(1.298) - 1 = 0.799 < 0.8; n = 23: 0.824."""
    assert stats.power_within(1.0, 1.0, 22) == pytest.approx(0.799, abs=0.002)
    assert stats.power_within(1.0, 1.0, 23) == pytest.approx(0.824, abs=0.002)
    assert stats.seeds_needed(1.0, 1.0, within=True) == 23
    # the normal approximation 2 (z_0.975 + z_0.9)^2 = 21.0 seeds; the t quantiles add two
    assert 2 * (sp.norm.isf(0.025) + sp.norm.isf(0.1)) ** 2 == pytest.approx(21.0, abs=0.05)


def test_smallest_detectable_difference_by_hand() -> None:
    # (t_0.975(4) + t_0.8(4)) se = (2.7764 + 0.9410) x 0.2
    assert stats.detectable(0.2, 4.0) == pytest.approx((2.7764 + 0.9410) * 0.2, abs=1e-3)
    assert stats.detectable(0.2, 4.0, alpha=0.01) > stats.detectable(0.2, 4.0)
    assert stats.detectable(0.0, None) == 0.0 and stats.detectable(0.3, None) is None


def test_spread_of_a_difference() -> None:
    w = stats.welch((1.0, 2.0, 3.0), (2.0, 4.0, 6.0))  # stds 1 and 2
    assert w.spread() == pytest.approx(math.sqrt((1 + 4) / 2))
    one = stats.welch((1.0,), (2.0, 4.0, 6.0))  # a single seed borrows the other side's std
    assert one.spread() == pytest.approx(2.0)
    assert stats.paired((1.0, 2.0, 3.0)).spread() == pytest.approx(1.0)
    assert stats.paired((1.0,)).spread() is None
    bare = stats.Difference(0.0, 0.5, 4.0, 2, 2)  # no sides kept: from the standard error
    assert bare.spread() == pytest.approx(0.5)

"""The claim rule (`verdicts`) on fixed numbers: one test per branch, then how claims are measured from runs
(profiles never pooled, paired protocols, disjoint ensembles) and reference-only reported numbers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from scipy import stats

from harness.report import stats as st
from harness.report.claims import check_claims, families
from harness.report.ensembles import claim_ensemble_candidates
from harness.report.render import render
from harness.report.reported import compare
from harness.report.stats import Difference, holm, paired, t_quantile, welch
from harness.report.types import EnsembleResult, FigurePaths, ReportInputs, RunRow
from harness.report.verdicts import ClaimTest, Families, claim_p, verdicts
from variants import Claim, get_variant, list_variants

VARIANTS = tuple(list_variants())
T975_DF4 = 2.7764451051977934  # Student t, 97.5 % quantile, 4 degrees of freedom (scipy.stats.t.ppf)


def diff(measured: float, se: float | None = 0.2, df: float | None = 4.0, n: tuple[int, int] = (3, 3)) -> Difference:
    return Difference(measured, se, df, *n)


def one(kind: str, claimed: float, d: Difference, proxy: bool = False) -> tuple[str, str]:
    [result] = verdicts([ClaimTest(kind, claimed, proxy, d)])  # type: ignore[arg-type]
    return result


# --- statistics ---------------------------------------------------------------------------------------------------


def test_t_quantile_and_welch_match_the_textbook() -> None:
    assert t_quantile(0.975, 4) == pytest.approx(2.776445, abs=1e-6)
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-4)
    a, b = (57.8, 57.9, 57.7), (59.0, 59.6, 59.3)  # no LRN vs KSH12's net: s = 0.1 and 0.3
    d = welch(a, b)
    assert d.measured == pytest.approx(-1.5)
    assert d.se == pytest.approx((0.01 / 3 + 0.09 / 3) ** 0.5)
    assert d.df == pytest.approx((0.1 / 3) ** 2 / ((0.01 / 3) ** 2 / 2 + (0.09 / 3) ** 2 / 2))  # 2.439
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert d.interval() == pytest.approx(tuple(ref.confidence_interval(0.95)))
    assert d.p_one_sided(-1) == pytest.approx(ref.pvalue / 2)  # one-sided towards the observed sign
    assert welch(b[::-1], a[::-1]).measured == pytest.approx(1.5)
    assert welch((1.0,), b).se is None  # one seed: no spread, no interval
    assert welch((1.0, 1.0, 1.0), (2.0, 2.0, 2.0)).interval() == (-1.0, -1.0)  # no spread: a point


def test_paired_differences_use_the_one_sample_t() -> None:
    d = paired((1.5, 1.7, 1.6))
    assert d.paired and (d.n_variant, d.n_baseline, d.df) == (3, 3, 2.0)
    assert d.measured == pytest.approx(1.6) and d.se == pytest.approx(0.1 / 3**0.5)
    lo, hi = d.interval()
    assert (1.6 - lo, hi - 1.6) == pytest.approx((stats.t.ppf(0.975, 2) * 0.1 / 3**0.5,) * 2)


def test_holm_adjusts_step_down_in_input_order() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.06 for the last
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    assert holm([]) == []


# --- paper data: sizes count ------------------------------------------------------------------------------------

LRN = -1.4  # KSH12 s3.3: LRN lowers top-1 error by 1.4 %: without it accuracy changes by -1.4 (range [-2.8, -0.7])


@pytest.mark.parametrize(
    ("d", "verdict", "why"),
    [
        (diff(-1.5), "holds", "overlaps [-2.8, -0.7]"),  # [-2.06, -0.94]
        (diff(-0.6, 0.1), "holds", "overlaps"),  # mean under half the claim, interval [-0.88, -0.32] reaches it
        (diff(+0.7, 0.1), "does not hold", "other side"),  # [+0.42, +0.98]
        (diff(-0.4, 0.05), "does not hold", "within ±0.7"),  # [-0.54, -0.26]: the claimed side, under half
        (diff(-0.2, 0.1), "does not hold", "within ±0.7"),  # [-0.48, +0.08]: contains 0 but any effect is small
        (diff(-1.5, 1.0), "inconclusive", "includes 0"),  # [-4.28, +1.28]: too wide
        (diff(-0.6, 0.4), "inconclusive", "includes 0"),  # the old rule's "does not hold" (under half the claim)
        (diff(-5.0), "inconclusive", "beyond twice the claim (-2.8)"),  # [-5.56, -4.44]
        (diff(-1.5, n=(2, 3)), "inconclusive", "needs at least 3 seeds a side, has 2 / 3"),
        (diff(-1.5, None, None, (1, 3)), "inconclusive", "has 1 / 3"),
        (diff(-1.5, 0.0, None), "holds", "overlaps"),  # no spread at all: a point interval
    ],
)
def test_paper_difference(d: Difference, verdict: str, why: str) -> None:
    v, reason = one("difference", LRN, d)
    assert v == verdict and why in reason


def test_paper_interval_is_the_95_percent_welch_interval() -> None:
    assert diff(-1.5).interval() == pytest.approx((-1.5 - 0.2 * T975_DF4, -1.5 + 0.2 * T975_DF4))


@pytest.mark.parametrize(
    ("d", "verdict", "why"),
    [
        (diff(0.2), "holds", "within ±1"),  # [-0.36, +0.76]
        (diff(-0.9, 0.03), "holds", "within ±1"),  # [-0.98, -0.82]: a clear change, but under the bound
        (diff(2.5, 0.3), "does not hold", "entirely outside ±1"),  # [+1.67, +3.33]
        (diff(-2.5, 0.3), "does not hold", "entirely outside ±1"),
        (diff(0.5, 0.3), "inconclusive", "reaches past ±1"),  # [-0.33, +1.33]
        (diff(0.2, n=(3, 2)), "inconclusive", "has 3 / 2"),
    ],
)
def test_paper_equivalence(d: Difference, verdict: str, why: str) -> None:
    v, reason = one("equivalence", 1.0, d)  # ZF13 Table 3: removing fc7 changes little (|d| <= 1)
    assert v == verdict and why in reason


@pytest.mark.parametrize(
    ("d", "verdict", "why"),
    [
        (diff(-1.5), "holds", "reaches the claimed bound -1"),  # [-2.06, -0.94]
        (diff(-3.5), "holds", "reaches"),  # a bound has no upper end: far beyond it still holds
        (diff(-0.7, 0.05), "inconclusive", "stops short of the claimed bound -1"),  # [-0.84, -0.56]
        (diff(-0.3, 0.05), "does not hold", "within ±0.5"),  # [-0.44, -0.16]
        (diff(+0.5, 0.1), "does not hold", "other side"),
        (diff(-0.5, 0.5), "inconclusive", "includes 0"),
    ],
)
def test_paper_at_least(d: Difference, verdict: str, why: str) -> None:
    v, reason = one("at_least", -1.0, d)  # KSH12 s4.1: PCA lighting lowers top-1 error by over 1 %
    assert v == verdict and why in reason


def test_a_claim_without_direction_is_an_error() -> None:
    with pytest.raises(ValueError):
        one("difference", 0.0, diff(1.0))
    with pytest.raises(ValueError):
        one("equivalence", -1.0, diff(1.0))


# --- proxy data: direction only, Holm-corrected -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "verdict"),
    [
        (diff(-1.5), "supported"),  # t = -7.5, one-sided p 0.00085, x2 tests
        (diff(-30.0, 1.0), "supported"),  # twenty times the claim: on a proxy only the direction counts
        (diff(-0.1, 0.02), "supported"),  # a tenth of the claim, clearly negative
        (diff(+1.5), "contradicted"),
        (diff(-0.3), "inconclusive"),  # t = -1.5, p 0.10
        (diff(-1.5, n=(3, 2)), "inconclusive"),
    ],
)
def test_proxy_direction_only(d: Difference, verdict: str) -> None:
    assert one("difference", LRN, d, proxy=True)[0] == verdict
    assert one("at_least", -1.0, d, proxy=True)[0] == verdict  # a bound is a direction too


def test_proxy_equivalence_is_inconclusive_and_outside_the_family() -> None:
    v, reason = one("equivalence", 1.0, diff(0.0, 0.01), proxy=True)
    assert v == "inconclusive" and "direction only" in reason
    eq, lrn = verdicts([ClaimTest("equivalence", 1.0, True, diff(0.0)), ClaimTest("difference", LRN, True, diff(-1.5))])
    assert eq[0] == "inconclusive" and lrn[0] == "supported" and "over 1 claim" in lrn[1]


def test_holm_over_the_proxy_claims_of_a_report() -> None:
    """Two-sided p = 0.04: supported alone (x1); in a family of 2 fixed in advance whose other claim was not measured,
    inconclusive (x2); beside a stronger measured claim, second rank (x1): supported."""
    weak = ClaimTest("difference", LRN, True, diff(-3.0, 1.0))  # one-sided p 0.01997, two-sided 0.0399
    strong = ClaimTest("difference", LRN, True, diff(-10.0, 1.0))  # two-sided p 0.00056
    assert verdicts([weak])[0][0] == "supported"
    two = Families(paper=1, proxy=2)
    assert verdicts([weak], families=two)[0][0] == "inconclusive"
    assert [v for v, _ in verdicts([weak, strong], families=two)] == ["supported", "supported"]
    paper = ClaimTest("difference", LRN, False, diff(-10.0, 1.0))  # paper claims are not in the proxy family
    assert verdicts([weak, paper])[0][0] == "supported"


def test_holm_step_down_stops_at_the_first_failure() -> None:
    """Three claims. Two-sided p = 0.019 passes its own rank (x2 = 0.038) only if the claim ranked before it passes:
    behind p = 0.018 (x3 = 0.054) it stops; behind p = 0.00056 it is supported."""
    second = ClaimTest("difference", LRN, True, diff(-stats.t.isf(0.0095, 4), 1.0))
    null = ClaimTest("difference", LRN, True, diff(0.0, 1.0))  # p 0.5 both ways
    close = ClaimTest("difference", LRN, True, diff(-stats.t.isf(0.009, 4), 1.0))
    strong = ClaimTest("difference", LRN, True, diff(-10.0, 1.0))
    assert [v for v, _ in verdicts([close, second, null])] == ["inconclusive"] * 3
    assert [v for v, _ in verdicts([strong, second, null])] == ["supported", "supported", "inconclusive"]
    assert "over 3 claims" in verdicts([strong, second, null])[1][1]


# --- measuring claims from runs ------------------------------------------------------------------------------------


def run(
    variant: str,
    seed: int,
    top1: float,
    profile: str = "paper",
    data: str = "ILSVRC-2012",
    center: float | None = None,
    **kw: object,
) -> RunRow:
    row = RunRow(
        run_id=f"{profile}-{variant}-{seed}",
        experiment="e",
        kind="variant",
        variant=variant,
        profile=profile,
        dataset="imagefolder",
        dataset_name=data,
        split="val",
        protocol=get_variant(variant).recipe.test_protocol,
        seed=seed,
        final_top1=top1,
        final_top5=top1 + 20,
        ten_crop_top1=top1,
        ten_crop_top5=top1 + 20,
        center_top1=center,
        center_top5=None,
    )
    return replace(row, **kw)  # type: ignore[arg-type]


LRN_CLAIM = Claim(
    "lrn", "LRN lowers top-1 error by 1.4 %", "alexnet2012_no_lrn", "alexnet2012", "top1", -1.4, "KSH12 s3.3"
)


def test_claims_never_pool_profiles() -> None:
    rows = [run("alexnet2012", s, t) for s, t in enumerate((59.0, 59.6, 59.3))]
    rows += [run("alexnet2012_no_lrn", s, t) for s, t in enumerate((57.8, 57.9, 57.7))]
    rows += [run("alexnet2012_no_lrn", s, 40.0, profile="short") for s in range(3)]  # a shorter schedule
    [result] = check_claims([LRN_CLAIM], rows, VARIANTS)  # `short` has no baseline runs: not compared
    assert result.profile == "paper" and result.verdict == "holds" and (result.n_variant, result.n_baseline) == (3, 3)
    assert result.interval == pytest.approx(  # seeds 0-2 on both sides: paired by seed
        tuple(stats.ttest_rel((57.8, 57.9, 57.7), (59.0, 59.6, 59.3)).confidence_interval(0.95))
    )
    rows += [run("alexnet2012", s, 39.0 + s / 10, profile="short") for s in range(3)]
    results = check_claims([LRN_CLAIM], rows, VARIANTS)
    assert [(r.profile, r.n_variant, r.n_baseline) for r in results] == [("paper", 3, 3), ("short", 3, 3)]
    assert results[1].measured == pytest.approx(0.9) and results[1].verdict == "does not hold"  # other side


def test_protocol_claim_is_paired_per_run() -> None:
    claim = Claim(
        "ten_crop", "10-crop gains about 1.5 top-1", "alexnet2012", "alexnet2012", "top1", 1.5, "x", protocol="ten_crop"
    )
    rows = [run("alexnet2012", s, t, center=t - g) for s, (t, g) in enumerate(((59.0, 1.5), (62.0, 1.7), (56.0, 1.6)))]
    [r] = check_claims([claim], rows, VARIANTS)
    # unpaired, seeds 56-62 would swamp the gain; per run the differences are 1.5, 1.7, 1.6
    assert r.diff.paired and r.measured == pytest.approx(1.6) and r.verdict == "holds"
    assert r.interval[1] - r.interval[0] < 1.0 and "paired" in r.reason


def test_proxy_claims_form_one_holm_family_in_the_report() -> None:
    rows = [run("alexnet2012", s, 97.0 + s / 10, profile="proxy", data="mnist5k") for s in range(3)]
    rows += [run("alexnet2012_no_lrn", s, 96.0 + s / 10, profile="proxy", data="mnist5k") for s in range(3)]
    rows += [
        run("alexnet2012_nonoverlap_pool", s, t, profile="proxy", data="mnist5k")
        for s, t in enumerate((97.2, 96.9, 97.3))
    ]
    pool = Claim(
        "overlap_pool",
        "Overlapping pooling lowers top-1 error by 0.4 %",
        "alexnet2012_nonoverlap_pool",
        "alexnet2012",
        "top1",
        -0.4,
        "KSH12 s3.4",
    )
    lrn, overlap = check_claims([LRN_CLAIM, pool], rows, VARIANTS)
    assert lrn.proxy and lrn.verdict == "supported" and "over 2 claims" in lrn.reason
    assert overlap.verdict == "inconclusive"


def _ensembles(rows: list[RunRow], k: int, gain: float) -> list[EnsembleResult]:
    cands = claim_ensemble_candidates([ENSEMBLE_CLAIM if k == 3 else replace(ENSEMBLE_CLAIM, ensemble=k)], rows)
    by_id = {r.run_id: r for r in rows}
    return [
        EnsembleResult(
            c.variant,
            c.data,
            c.split,
            c.protocol,
            c.pretrained,
            c.run_ids,
            sum(by_id[i].final_top1 for i in c.run_ids) / k + gain + j / 10,
            80.0,
            c.profile,
        )
        for j, c in enumerate(cands)
    ]


ENSEMBLE_CLAIM = Claim(
    "ensemble", "averaging 3 CNNs gains 2.6 top-1", "alexnet2012", "alexnet2012", "top1", 2.6, "test", ensemble=3
)


def test_ensemble_claim_needs_three_disjoint_ensembles() -> None:
    rows = [run("alexnet2012", s, 59.0 + (s % 4) / 10) for s in range(10)]  # 10 runs: 3 ensembles of 3, one left
    rows += [run("alexnet2012", s, 50.0, profile="short") for s in range(3)]  # another profile: its own ensemble
    cands = claim_ensemble_candidates([ENSEMBLE_CLAIM], rows)
    paper = [c.run_ids for c in cands if c.profile == "paper"]
    assert len(paper) == 3 and len({i for ids in paper for i in ids}) == 9
    assert [c.run_ids for c in cands if c.profile == "short"] == [tuple(f"short-alexnet2012-{s}" for s in range(3))]
    ens = _ensembles(rows, 3, 2.5)  # gains over the members' mean: 2.5, 2.6, 2.7
    paper_result, short_result = check_claims([ENSEMBLE_CLAIM], rows, VARIANTS, ens)
    assert paper_result.profile == "paper" and paper_result.diff.paired and paper_result.n_variant == 3
    assert paper_result.measured == pytest.approx(2.6) and paper_result.verdict == "holds"
    assert "3 disjoint ensemble(s) of 3 runs" in paper_result.reason
    assert short_result.verdict == "inconclusive" and "9 finished runs" in short_result.reason  # one ensemble
    [none] = check_claims([ENSEMBLE_CLAIM], rows[:2], VARIANTS, ())
    assert none.verdict == "not run" and "no ensemble of 3 runs" in none.reason


def test_ensemble_claim_against_another_variant_is_welch() -> None:
    claim = replace(ENSEMBLE_CLAIM, baseline="alexnet2012_no_lrn")
    rows = [run("alexnet2012", s, 59.0 + (s % 3) / 10) for s in range(9)]
    rows += [run("alexnet2012_no_lrn", s, 58.0 + s / 10) for s in range(3)]
    [r] = check_claims([claim], rows, VARIANTS, _ensembles(rows, 3, 2.0))
    assert not r.diff.paired and (r.n_variant, r.n_baseline) == (3, 3)
    assert r.measured == pytest.approx(59.1 + 2.1 - 58.1)


# --- reference-only reported numbers and the rendered claims ------------------------------------------------------


def test_reference_only_rows_are_never_compared() -> None:
    v = get_variant("alexnet2012")
    r = replace(v.reported[0], reference_only=True, note="Caffe's own recipe and 227 crops")
    rows = [run("alexnet2012", s, r.top1 or 0.0) for s in range(3)]
    c = compare(v, r, rows, ())
    assert c.status == "reference only" and c.diff is None and c.top1 is None
    assert "Caffe's own recipe" in c.note
    md = render(ReportInputs("t", "s", ("e",), tuple(rows), (replace(v, reported=(r,)),), (), {}))
    # no registered row the runs could match is on ILSVRC-2012: the report counts it as proxy data and folds it
    assert "- `alexnet2012`: 1 reported number: 1 reference only" in md and "**reproduced**" not in md


def test_render_claims_show_kind_interval_n_and_rule() -> None:
    rows = [run("alexnet2012", s, t) for s, t in enumerate((59.0, 59.6, 59.3))]
    rows += [run("alexnet2012_no_lrn", s, t) for s, t in enumerate((57.8, 57.9, 57.7))]
    eq = Claim(
        "no_fc7",
        "Removing fc7 changes little",
        "alexnet2012_no_lrn",
        "alexnet2012",
        "top1",
        1.0,
        "ZF13",
        kind="equivalence",
    )
    md = render(ReportInputs("t", "s", ("e",), tuple(rows), VARIANTS, (LRN_CLAIM, eq), {}, (), FigurePaths()))
    assert md == render(ReportInputs("t", "s", ("e",), tuple(rows[::-1]), VARIANTS, (LRN_CLAIM, eq), {}))
    [lrn] = [x for x in md.splitlines() if x.startswith("| lrn |")]
    sides = "57.80 ± 0.10 (n=3) / 59.30 ± 0.30 (n=3)"  # each side's mean ± std over seeds
    assert f"| difference | -1.4 | {sides} | -1.50 [-2.16, -0.84] | 3 / 3 (paired) | **holds** |" in lrn
    assert "paired by seed (3 common seeds)" in lrn
    assert "ILSVRC-2012 val (`paper`)" in lrn
    [fc7] = [x for x in md.splitlines() if x.startswith("| no_fc7 |")]
    assert f"| equivalence | within ±1 | {sides} | -1.50 [-2.16, -0.84] | 3 / 3 (paired) | **inconclusive** |" in fc7
    assert "Holm's step-down at family-wise alpha 0.05 over the 2 registered claims" in md
    assert "at least 3 seeds a side" in md and "paired t on the per-seed differences" in md


# --- direction claims: a sign without a size (KSH12 s4.1, s4.2) ---------------------------------------------------

LOWER = -1.0  # KSH12 s4.2: "without dropout, substantial overfitting": no number, only the sign counts


@pytest.mark.parametrize(
    ("d", "verdict", "why"),
    [
        (diff(-1.5), "holds", "excludes 0 on the claimed side"),  # [-2.06, -0.94]
        (diff(-30.0, 1.0), "holds", "claimed side"),  # any size: 30 points is still "lower"
        (diff(-0.1, 0.02), "holds", "claimed side"),  # [-0.16, -0.04]: small but clear
        (diff(+0.7, 0.1), "does not hold", "other side"),  # [+0.42, +0.98]
        (diff(-0.2, 0.1), "inconclusive", "includes 0"),  # [-0.48, +0.08]: no size to be "within half" of
        (diff(-1.5, n=(2, 3)), "inconclusive", "has 2 / 3"),
    ],
)
def test_paper_direction(d: Difference, verdict: str, why: str) -> None:
    v, reason = one("direction", LOWER, d)
    assert v == verdict and why in reason
    assert one("direction", -7.0, d) == (v, reason)  # only the sign of delta counts
    flipped = {"holds": "does not hold", "does not hold": "holds"}.get(verdict, verdict)
    assert one("direction", +1.0, replace(d, measured=-d.measured))[0] == verdict  # "higher", mirrored
    assert one("direction", +1.0, d)[0] == flipped


@pytest.mark.parametrize(
    ("d", "verdict"),
    [
        (diff(-1.5), "supported"),
        (diff(-30.0, 1.0), "supported"),
        (diff(+1.5), "contradicted"),
        (diff(-0.3), "inconclusive"),
    ],
)
def test_proxy_direction_is_judged_like_a_difference(d: Difference, verdict: str) -> None:
    """Same one-sided tests and the same Holm family as a difference claim of the same sign."""
    strong = ClaimTest("difference", LRN, True, diff(-10.0, 1.0))
    as_direction = verdicts([ClaimTest("direction", LOWER, True, d), strong])
    as_difference = verdicts([ClaimTest("difference", LRN, True, d), strong])
    assert as_direction == as_difference and as_direction[0][0] == verdict
    assert "over 2 claims" in as_direction[0][1]


def test_direction_without_a_sign_is_an_error() -> None:
    with pytest.raises(ValueError):
        one("direction", 0.0, diff(1.0))


# --- top-5 on few classes: not testable here, outside the family ------------------------------------------------


def test_top5_on_ten_classes_is_not_testable_whatever_the_numbers() -> None:
    for proxy in (True, False):
        t = ClaimTest("difference", LRN, proxy, diff(-1.5), "top5", 10)
        assert verdicts([t]) == [("not testable here", "top-5 of 10 classes carries no information")]
    # more classes, unknown classes, or top-1 on 10 classes: judged as before
    assert (
        one("difference", LRN, diff(-1.5)) == verdicts([ClaimTest("difference", LRN, False, diff(-1.5), "top5", 11)])[0]
    )
    assert verdicts([ClaimTest("difference", LRN, True, diff(-1.5), "top5", None)])[0][0] == "supported"
    assert verdicts([ClaimTest("difference", LRN, True, diff(-1.5), "top1", 10)])[0][0] == "supported"


def test_top5_on_few_classes_stays_out_of_the_holm_family() -> None:
    """The other claims' Holm-adjusted p-values are the same with and without a top-5 claim on 10 classes."""
    strong = ClaimTest("direction", LOWER, True, diff(-10.0, 1.0))  # two-sided p 0.00056: first rank
    weak = ClaimTest("difference", LRN, True, diff(-stats.t.isf(0.015, 4), 1.0))  # p 0.03: second rank, x1
    top5 = ClaimTest("difference", LRN, True, diff(-0.3, 1.0), "top5", 10)  # p 0.78: in the family, weak gets x2
    without = verdicts([weak, strong])
    with_top5 = verdicts([weak, top5, strong])
    assert with_top5[0] == without[0] and with_top5[2] == without[1]
    assert without[0][0] == "supported" and "Holm-adjusted 0.03 " in without[0][1]
    assert "over 2 claims" in with_top5[0][1]
    assert with_top5[1] == ("not testable here", "top-5 of 10 classes carries no information")
    counted = verdicts([weak, replace(top5, classes=1000), strong])  # top-5 of 1000 classes counts
    assert counted[0][0] == "inconclusive" and "over 3 claims" in counted[0][1]


def test_claim_classes_come_from_the_runs() -> None:
    top5 = replace(LRN_CLAIM, name="lrn_top5", metric="top5", delta=-1.2)
    rows = [run("alexnet2012", s, 97.0 + s / 10, profile="proxy", data="mnist5k", num_classes=10) for s in range(3)]
    rows += [
        run("alexnet2012_no_lrn", s, 90.0 + s / 10, profile="proxy", data="mnist5k", num_classes=10) for s in range(3)
    ]
    lrn, lrn5 = check_claims([LRN_CLAIM, top5], rows, VARIANTS)
    # the default proxy family is both claims (fixed before the runs said how many classes there are)
    assert lrn.verdict == "supported" and "over 2 claims" in lrn.reason
    assert lrn5.verdict == "not testable here" and lrn5.reason.startswith("top-5 of 10 classes carries no information")
    unknown = [replace(r, num_classes=None) for r in rows]  # runs that logged no class count: judged as before
    assert check_claims([top5], unknown, VARIANTS)[0].verdict == "supported"


def test_render_shows_a_direction_not_a_number() -> None:
    dropout = Claim(
        "dropout",
        "Dropout lowers top-1 error",
        "alexnet2012_no_lrn",
        "alexnet2012",
        "top1",
        -1.0,
        "KSH12 s4.2",
        kind="direction",
    )
    rows = [run("alexnet2012", s, t) for s, t in enumerate((59.0, 59.6, 59.3))]
    rows += [run("alexnet2012_no_lrn", s, t) for s, t in enumerate((57.8, 57.9, 57.7))]
    md = render(ReportInputs("t", "s", ("e",), tuple(rows), VARIANTS, (dropout,), {}, (), FigurePaths()))
    [line] = [x for x in md.splitlines() if x.startswith("| dropout |")]
    assert "| direction | lower |" in line and "| -1.50 [-2.16, -0.84] | 3 / 3 (paired) | **holds** |" in line
    assert "-1.0" not in line
    higher = replace(dropout, delta=1.0)
    md = render(ReportInputs("t", "s", ("e",), tuple(rows), VARIANTS, (higher,), {}, (), FigurePaths()))
    assert "| direction | higher |" in md and "**does not hold**" in md


# --- multiplicity on the papers' data: Holm over the registry's claims ---------------------------------------------


def test_paper_claims_are_corrected_across_a_family_fixed_in_advance() -> None:
    """Two-sided p = 0.0017 holds alone; among the registry's 35 claims, with nothing else measured, it is ranked
    first and needs p <= 0.05 / 35 = 0.0014: inconclusive, whatever runs the other claims have."""
    lrn = ClaimTest("difference", LRN, False, diff(-1.5))  # t = -7.5, df 4
    assert claim_p(lrn) == pytest.approx(2 * stats.t.sf(7.5, 4))
    assert one("difference", LRN, diff(-1.5))[0] == "holds"
    registry = Families(paper=35, proxy=6)
    [(v, why)] = verdicts([lrn], families=registry)
    assert v == "inconclusive" and "Holm-adjusted 0.059 over 35 claims > 0.05" in why
    assert "the 99.86 % interval" in why and "two-sided alpha 0.0014" in why
    weak = ClaimTest("difference", LRN, False, diff(-0.2, 1.0))  # another claim measured: p 0.85, ranked last
    assert verdicts([lrn, weak], families=registry)[0] == (v, why)  # the family did not grow with the runs


def test_a_decided_paper_claim_is_read_on_the_interval_of_its_holm_level() -> None:
    """-3.4 ± 0.15: the 95 % interval [-3.82, -2.98] lies beyond twice the claim (-2.8): inconclusive alone; in a
    family of 10 it is decided at 0.05 / 10 and its 99.5 % interval [-4.24, -2.56] overlaps [-2.8, -0.7]: holds."""
    t = ClaimTest("difference", LRN, False, diff(-3.4, 0.15))
    assert verdicts([t])[0][0] == "inconclusive"
    [(v, why)] = verdicts([t], families=Families(10, 1))
    assert v == "holds" and "the 99.5 % interval [-4.24, -2.56]" in why


def test_holm_decides_paper_and_proxy_families_apart() -> None:
    paper = ClaimTest("difference", LRN, False, diff(-1.5))
    proxy = ClaimTest("difference", LRN, True, diff(-1.5))
    out = verdicts([paper, proxy], families=Families(1, 1))
    assert out == [verdicts([paper])[0], verdicts([proxy])[0]]
    assert [v for v, _ in out] == ["holds", "supported"]


def test_paper_does_not_hold_by_size_is_a_holm_decision() -> None:
    """Within ±c/2 is decided by the larger of its two one-sided p-values (the TOST)."""
    small = ClaimTest("difference", LRN, False, diff(-0.2, 0.1))  # [-0.48, +0.08]: within ±0.7
    p_tost = max(stats.t.sf((-0.2 + 0.7) / 0.1, 4), stats.t.sf((0.7 + 0.2) / 0.1, 4))
    assert claim_p(small) == pytest.approx(2 * p_tost)
    assert verdicts([small])[0][0] == "does not hold"


# --- pairing: seed s of both sides --------------------------------------------------------------------------------

NO_LRN = (57.8, 58.9, 57.2, 58.4)  # seed s of both sides shares its spread; the gap is about -1.25
BASE = (59.0, 60.2, 58.5, 59.6)


def _rows(variant_seeds: dict[int, float], base_seeds: dict[int, float]) -> list[RunRow]:
    return [run("alexnet2012_no_lrn", s, t) for s, t in variant_seeds.items()] + [
        run("alexnet2012", s, t) for s, t in base_seeds.items()
    ]


def test_same_seeds_are_paired_and_the_verdict_follows() -> None:
    rows = _rows(dict(enumerate(NO_LRN)), dict(enumerate(BASE)))
    [r] = check_claims([LRN_CLAIM], rows, VARIANTS)
    assert r.diff.paired and (r.n_variant, r.n_baseline) == (4, 4) and "paired by seed (4 common seeds)" in r.reason
    assert r.interval == pytest.approx(tuple(stats.ttest_rel(NO_LRN, BASE).confidence_interval(0.95)))
    assert r.verdict == "holds"
    shifted = _rows(dict(enumerate(NO_LRN)), {s + 10: t for s, t in enumerate(BASE)})  # the same values, no seed shared
    [w] = check_claims([LRN_CLAIM], shifted, VARIANTS)
    assert not w.diff.paired and "Welch: the sides share 0 seed(s)" in w.reason
    assert w.interval == pytest.approx(tuple(stats.ttest_ind(NO_LRN, BASE, equal_var=False).confidence_interval(0.95)))
    assert w.verdict == "inconclusive" and w.measured == pytest.approx(r.measured)


def test_pairing_uses_the_common_seeds_only_when_enough_remain() -> None:
    base = dict(enumerate((*BASE, 59.9, 58.8)))  # 6 baseline seeds, 4 of them shared
    [r] = check_claims([LRN_CLAIM], _rows(dict(enumerate(NO_LRN)), base), VARIANTS)
    assert r.diff.paired and r.n_baseline == 4 and "2 unpaired run(s) left out" in r.reason
    assert len(r.run_ids) == 8  # the runs the verdict rests on
    # seeds {0, 1, 5} against {0, 1, 2}: pairing would leave 2 a side, fewer than the 3 a verdict needs: Welch on 3 / 3
    [w] = check_claims([LRN_CLAIM], _rows({0: 57.8, 1: 58.9, 5: 57.2}, {0: 59.0, 1: 60.2, 2: 58.5}), VARIANTS)
    assert not w.diff.paired and (w.n_variant, w.n_baseline) == (3, 3) and "share 2 seed(s)" in w.reason
    twice = _rows(dict(enumerate(NO_LRN)), dict(enumerate(BASE))) + [run("alexnet2012", 0, 59.1, run_id="again")]
    [t] = check_claims([LRN_CLAIM], twice, VARIANTS)
    assert not t.diff.paired and "a seed repeats on a side" in t.reason


# --- inconclusive claims say what the design could see -----------------------------------------------------------


def test_an_inconclusive_paper_claim_prints_the_seeds_that_would_decide_it() -> None:
    pool = Claim(
        "overlap_pool", "Overlapping pooling lowers top-1 error by 0.4 %", "alexnet2012_nonoverlap_pool",
        "alexnet2012", "top1", -0.4, "KSH12 s3.4",
    )  # fmt: skip
    rows = [run("alexnet2012_nonoverlap_pool", s, t) for s, t in enumerate((59.1, 59.5, 58.8))]
    rows += [run("alexnet2012", s, t) for s, t in enumerate((59.0, 59.6, 59.3))]
    [r] = check_claims([pool, LRN_CLAIM], rows, VARIANTS)[:1]  # a family of 2 registered claims
    assert r.verdict == "inconclusive" and r.diff.paired
    sd = r.diff.sd_diff  # per-seed differences +0.1, -0.1, -0.5
    assert sd == pytest.approx(stats.tstd((0.1, -0.1, -0.5)))
    hold = st.seeds_needed(0.4, sd, 0.05 / 2, is_paired=True)
    fail = st.seeds_needed(0.2, sd, 0.05 / 2, is_paired=True, within=True)
    assert f"{hold} pairs would hold it if the true change is the claim, {fail} would fail it by size" in r.reason
    mde = st.detectable(r.diff.se, r.diff.df, 0.05 / 2)
    assert f"smallest difference these seeds detect: {mde:.3g} points" in r.reason and "alpha 0.025" in r.reason


def test_an_inconclusive_proxy_claim_prints_its_smallest_detectable_effect() -> None:
    t = ClaimTest("difference", LRN, True, diff(-0.3, 1.0))
    [(v, why)] = verdicts([t], families=Families(35, 6))
    mde = (stats.t.ppf(1 - 0.05 / 12, 4) + stats.t.ppf(0.8, 4)) * 1.0
    assert v == "inconclusive" and f"smallest difference these seeds detect: {mde:.3g} points" in why
    assert "would decide the measured -0.3" in why and "two-sided alpha 0.0083" in why


def test_an_inconclusive_proxy_speedup_reads_its_measured_change_as_a_ratio() -> None:
    # d = log(variant / baseline images) = -0.11: the variant needed 0.896x the images, a 1.12x speedup
    d = Difference(-0.11, 0.12 / 5**0.5, 4.0, 5, 5, paired=True, sd_diff=0.12)
    [(v, why)] = verdicts([ClaimTest("speedup", 6.0, True, d)], families=Families(35, 7))
    n = st.seeds_needed(-0.11, 0.12, 0.05 / 7, is_paired=True)
    assert v == "inconclusive" and f"{n} pairs would decide the measured 1.12x (seed sd 0.12;" in why


# --- not testable here --------------------------------------------------------------------------------------------


def test_a_claim_marked_untestable_on_proxy_data_says_why_and_leaves_the_family() -> None:
    why = "LRN's 1.4 points need ImageNet-scale capacity"
    t = ClaimTest("difference", LRN, True, diff(-10.0, 1.0), untestable=why)
    assert verdicts([t]) == [("not testable here", why)]
    rows = [run("alexnet2012", s, 97.0 + s / 10, profile="proxy", data="mnist5k") for s in range(3)]
    rows += [run("alexnet2012_no_lrn", s, t, profile="proxy", data="mnist5k") for s, t in enumerate((90.0, 90.5, 89.8))]
    rows += [run("alexnet2012", s, 59.0 + s / 10) for s in range(3)]
    rows += [run("alexnet2012_no_lrn", s, 57.4 + s / 10) for s in range(3)]
    paper, proxy = sorted(check_claims([LRN_CLAIM], rows, VARIANTS, untestable={"lrn": why}), key=lambda r: r.data)
    assert (paper.data, paper.verdict) == ("ILSVRC-2012", "holds")  # the papers' data tests it
    assert (proxy.data, proxy.verdict) == ("mnist5k", "not testable here") and proxy.reason.startswith(why)
    assert families([LRN_CLAIM], None, {"lrn": why}) == Families(1, 0)
    assert families([LRN_CLAIM], {"two_towers"}) == Families(1, 0)  # the plan names the family


def test_a_proxy_claim_outside_the_plan_is_never_decided() -> None:
    rows = [run("alexnet2012", s, 97.0 + s / 10, profile="proxy", data="mnist5k") for s in range(3)]
    rows += [run("alexnet2012_no_lrn", s, t, profile="proxy", data="mnist5k") for s, t in enumerate((90.0, 90.5, 89.8))]
    [inside] = check_claims([LRN_CLAIM], rows, VARIANTS, proxy_claims={"lrn"})
    [outside] = check_claims([LRN_CLAIM], rows, VARIANTS, proxy_claims={"dropout"})
    assert inside.verdict == "supported"
    assert outside.verdict == "inconclusive" and "claim family fixed in advance" in outside.reason


def test_render_shows_not_testable_here_and_the_families() -> None:
    top5 = replace(LRN_CLAIM, name="lrn_top5", metric="top5", delta=-1.2)
    rows = [run("alexnet2012", s, 97.0 + s / 10, profile="proxy", data="mnist5k", num_classes=10) for s in range(3)]
    rows += [
        run("alexnet2012_no_lrn", s, 90.0 + s / 10, profile="proxy", data="mnist5k", num_classes=10) for s in range(3)
    ]
    md = render(ReportInputs("t", "s", ("e",), tuple(rows), VARIANTS, (LRN_CLAIM, top5), {}, (), FigurePaths()))
    [line] = [x for x in md.splitlines() if x.startswith("| lrn_top5 |")]
    assert "| **not testable here** | top-5 of 10 classes carries no information" in line
    # lrn_top5 (top-5 of 10 classes) and lrn (harness.plan.PROXY_UNTESTABLE)
    assert "2 not testable here" in md and "over the 2 registered claims on the papers' data" in md
    assert "over the 0 claims of the proxy's seed plan" in md  # neither claim is in harness.plan.PROXY_SEEDS

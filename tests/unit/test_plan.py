"""The seed plan (`harness.plan`): which (variant, seed) runs `harness run` trains, `--seeds` / `--plan` on the
command line, the proxy's ensemble size for ensemble claims, and a real multi-seed smoke run that a re-run skips."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness import plan
from harness.plan import ClaimSeeds, PlannedRun
from harness.report.claims import check_claims
from harness.report.ensembles import claim_ensemble_candidates, claim_ensemble_size
from harness.report.types import EnsembleResult
from tests.unit.test_verdicts import run
from variants import claims, list_variants

VARIANTS = tuple(list_variants())
CLAIMS = tuple(claims())


def test_seed_table_names_registered_claims_and_variants() -> None:
    plan.check_table(plan.PROXY_SEEDS, CLAIMS, VARIANTS)
    assert all(e.why.strip() for e in plan.PROXY_SEEDS)


@pytest.mark.parametrize(
    "entry, message",
    [
        (ClaimSeeds("no_such_claim", 3, 3, "x"), "unknown claim"),
        (ClaimSeeds("two_towers", 2, 3, "x"), "at least 3 seeds a side"),
        (ClaimSeeds("two_towers", 3, 3, " "), "no reason"),
    ],
)
def test_a_bad_table_entry_is_a_value_error(entry: ClaimSeeds, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan.plan(VARIANTS, CLAIMS, (entry,), "proxy")


def test_a_claim_of_an_unregistered_variant_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown variant 'alexnet2012_no_augmentation'"):
        plan.check_table(plan.PROXY_SEEDS, CLAIMS, [v for v in VARIANTS if v.name != "alexnet2012_no_augmentation"])


def test_proxy_plan_trains_the_seeded_claims_seed_major() -> None:
    runs = plan.plan(VARIANTS, CLAIMS, plan.PROXY_SEEDS, "proxy")
    names = [v.name for v in VARIANTS]
    assert len(set(runs)) == len(runs)  # each (variant, seed) once
    seeds = {n: sorted(r.seed for r in runs if r.variant == n) for n in names}
    assert all(s == list(range(len(s))) for s in seeds.values())  # seeds 0..n-1, no gaps
    by_name = {c.name: c for c in CLAIMS}
    for e in plan.PROXY_SEEDS:
        c = by_name[e.claim]
        assert len(seeds[c.variant]) >= max(3, e.variant) and len(seeds[c.baseline]) >= max(3, e.baseline)
    assert len(seeds["alexnet2012"]) == 10  # the base network: two_towers and ten_crop ask 10
    assert [r.seed for r in runs] == sorted(r.seed for r in runs)  # seed-major: every seed 1 before any seed 2


def test_other_profiles_run_one_seed_per_variant() -> None:  # the paper profile's plan: test_paper_plan.py
    for profile in ("smoke",):
        assert plan.plan(VARIANTS, CLAIMS, plan.PROXY_SEEDS, profile) == tuple(PlannedRun(v.name, 0) for v in VARIANTS)


def test_fixed_seeds_are_seed_major() -> None:
    assert plan.fixed_seeds(["a", "b"], range(2)) == (
        PlannedRun("a", 0),
        PlannedRun("b", 0),
        PlannedRun("a", 1),
        PlannedRun("b", 1),
    )


# --- the command line -----------------------------------------------------------------------------------------------


def test_run_plan_prints_seeds_and_why(harness_main) -> None:
    code, out, _ = harness_main(["run", "--plan"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Plan for `run --all` on the proxy profile")
    row = next(x for x in lines if x.startswith("alexnet2012 "))
    assert " 0-9 " in row and "augmentation" in row and "ensemble5" in row
    assert not any(x.startswith("alexnet2012_no_lrn ") for x in lines)  # not in the family: not trained
    assert any(x.strip().startswith("ensemble5: 10 / 10:") for x in lines)
    code, out, _ = harness_main(["run", "zfnet", "--seeds", "3", "--plan"])
    assert code == 0 and out.splitlines()[3].split()[:2] == ["zfnet", "0-2"] and "Seeded claims" not in out
    code, out, _ = harness_main(["run", "--all", "--plan", "--profile", "smoke"])  # one run per variant
    assert code == 0 and f"{len(VARIANTS)} runs of {len(VARIANTS)} variant(s)" in out


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "0"], "argument --seeds: must be a positive integer, got 0"),
        (["--seeds", "x"], "argument --seeds: 'x' is not an integer"),
        (["--seeds", "2", "--seed", "1"], "give either --seed S (one seed) or --seeds N (seeds 0..N-1), not both"),
    ],
)
def test_bad_seeds_are_one_line_and_fail(args: list[str], message: str, harness_main, tmp_path: Path) -> None:
    code, out, err = harness_main(
        ["run", "zfnet", *args, "--no-report", "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]
    )
    assert code != 0 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "m.db").exists()


def test_seed_alone_keeps_its_meaning(harness_main) -> None:
    code, out, _ = harness_main(["run", "--all", "--seed", "4", "--plan"])
    assert code == 0 and "--seed 4" in out.splitlines()[0]
    rows = [x.split() for x in out.splitlines()[3:] if x.strip()]
    assert len(rows) == len(VARIANTS) and all(r[1] == "4" for r in rows)


@pytest.mark.slow
def test_seeds_record_one_named_run_per_seed_under_one_parent_and_rerun_skips(
    tmp_path, uri, runs, harness_main
) -> None:
    args = ["run", "alexnet2014", "--seeds", "3", "--profile", "smoke", "--epochs", "1"]
    args += ["--limit-train", "64", "--limit-val", "32", "--no-report", "--tracking-uri", uri]
    code, out, err = harness_main(args)
    assert code == 0, err[-3000:]
    done = runs(uri)
    assert sorted(r.data.params["seed"] for r in done) == ["0", "1", "2"]
    assert all(r.info.status == "FINISHED" for r in done)
    [parent] = runs(uri, kind="batch")
    assert {r.data.tags.get("harness.batch") for r in done} == {parent.info.run_id}
    assert len({r.data.tags["config_hash"] for r in done}) == 3
    # MLflow's runs table tells the seeds apart by the run's name (harness.runs.common.run_name)
    assert sorted(r.info.run_name for r in done) == ["alexnet2014 s0", "alexnet2014 s1", "alexnet2014 s2"]
    assert all(r.info.run_name == f"alexnet2014 s{r.data.params['seed']}" for r in done)
    code, out, err = harness_main(args)  # the same command again: every seed is skipped (found by its tags)
    assert code == 0, err[-3000:]
    assert [line.split()[1:3] for line in out.splitlines() if line.startswith("alexnet2014 ")] == [
        ["0", "skipped"],
        ["1", "skipped"],
        ["2", "skipped"],
    ]
    assert len(runs(uri)) == 3


# --- ensembles on the proxy -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, proxy, k", [(6, True, 2), (5, True, 2), (9, True, 3), (15, True, 5), (30, True, 5)])
def test_proxy_ensemble_size(n: int, proxy: bool, k: int) -> None:
    assert claim_ensemble_size(5, n, proxy) == k
    assert claim_ensemble_size(5, n, False) == 5  # paper data keeps the claim's k


def test_six_proxy_seeds_give_three_disjoint_pairs_each_against_its_members() -> None:
    claim = next(c for c in CLAIMS if c.name == "ensemble5")
    top1 = (97.0, 97.4, 97.2, 97.6, 97.1, 97.3)
    rows = [run("alexnet2012", s, t, profile="proxy", data="mnist5k") for s, t in enumerate(top1)]
    cands = claim_ensemble_candidates([claim], rows, {"mnist5k"})
    assert [c.run_ids for c in cands] == [tuple(f"proxy-alexnet2012-{s}" for s in (i, i + 1)) for i in (0, 2, 4)]
    [five] = claim_ensemble_candidates([claim], rows)  # as paper data: one ensemble of 5, one run left
    assert five.run_ids == tuple(f"proxy-alexnet2012-{s}" for s in range(5))
    by_id = {r.run_id: r.final_top1 for r in rows}
    gains = (0.5, 0.6, 0.7)
    ens = [
        EnsembleResult(c.variant, c.data, c.split, c.protocol, c.pretrained, c.run_ids, mean + g, 99.0, c.profile)
        for c, g in zip(cands, gains)
        for mean in [sum(by_id[i] for i in c.run_ids) / 2]
    ]
    [r] = check_claims([claim], rows, VARIANTS, ens)
    assert r.proxy and r.diff.paired and r.n_variant == 3 and r.measured == pytest.approx(0.6)
    assert r.verdict == "supported"
    assert "proxy: 3 disjoint ensemble(s) of 2 instead of 5 (of 6 runs" in r.reason
    assert "each minus the mean of its own members" in r.reason
    paper_rows = [replace(x, dataset_name="ILSVRC-2012") for x in rows]  # the same numbers as paper data: k = 5
    [p] = check_claims([claim], paper_rows, VARIANTS, ())
    assert p.verdict == "not run" and "no ensemble of 5 runs" in p.reason


# --- the report -----------------------------------------------------------------------------------------------------


def test_proxy_report_lists_the_seed_plan_and_paper_reports_do_not() -> None:
    from harness.report.render import render
    from harness.report.types import ReportInputs

    rows = [run("alexnet2012", s, 98.0 + s / 10, profile="proxy", data="mnist5k") for s in range(3)]
    rows += [run("alexnet2012_no_augmentation", s, 97.5, profile="proxy", data="mnist5k") for s in range(2)]
    md = render(ReportInputs("t", "s", ("e",), tuple(rows), VARIANTS, CLAIMS, {}))
    assert "### Seed plan (proxy)" in md
    [line] = [x for x in md.splitlines() if x.startswith("| `augmentation` |")]
    entry = next(e for e in plan.PROXY_SEEDS if e.claim == "augmentation")
    assert f"| {entry.variant} / {entry.baseline} | 2 / 3 |" in line and entry.why in line
    paper = [replace(x, profile="paper", dataset_name="ILSVRC-2012") for x in rows]
    assert "Seed plan" not in render(ReportInputs("t", "s", ("e",), tuple(paper), VARIANTS, CLAIMS, {}))

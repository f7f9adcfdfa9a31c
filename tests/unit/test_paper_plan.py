"""The paper profile's two-stage seed plan: the first stage (3 seeds a side of every claim), the second sized by the
first stage's seed spread alone (`harness.report.design`), the cap, and `run --all --plan` reading a real store."""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import mlflow
import pytest

from harness import plan, schema
from harness.plan import ClaimSeeds
from harness.report import design, stats
from tests.unit.test_verdicts import run
from variants import claims, list_variants

VARIANTS = tuple(list_variants())
CLAIMS = tuple(claims())
BY_NAME = {c.name: c for c in CLAIMS}
M = len(CLAIMS)  # Holm's family on the papers' data: every registered claim

# seeds 0-2 of alexnet2012_no_lrn and alexnet2012: paired differences -1.0, -2.0, -1.5 (sd 0.5)
BASE = (60.0, 61.0, 59.5)
NO_LRN = (59.0, 59.0, 58.0)


def rows(shift: float = 0.0, later: bool = False) -> list:
    out = [run("alexnet2012", s, v) for s, v in enumerate(BASE)]
    out += [run("alexnet2012_no_lrn", s, v + shift) for s, v in enumerate(NO_LRN)]
    if later:  # second-stage seeds with a wild spread: the design must not read them
        out += [run("alexnet2012", s, 40.0 + 9 * (s % 2)) for s in range(3, 9)]
        out += [run("alexnet2012_no_lrn", s, 70.0 - 11 * (s % 2)) for s in range(3, 9)]
    return out


def test_first_stage_gives_three_seeds_a_side_and_ensembles_three_of_their_size() -> None:
    first = {e.claim: e for e in plan.first_stage(CLAIMS, VARIANTS)}
    assert set(first) == {c.name for c in CLAIMS}
    assert (first["lrn"].variant, first["lrn"].baseline) == (3, 3)
    assert (first["ensemble5"].variant, first["ensemble5"].baseline) == (15, 15)
    runs = plan.plan(VARIANTS, CLAIMS, plan.paper_table(tuple(first.values()), {}), "paper")
    seeds = {v.name: sorted(r.seed for r in runs if r.variant == v.name) for v in VARIANTS}
    assert seeds["alexnet2012"] == list(range(15)) and seeds["alexnet2012_no_lrn"] == [0, 1, 2]
    assert seeds["torchvision_alexnet"] == [0]  # in no claim: one run, its reported numbers compared
    assert [r.seed for r in runs] == sorted(r.seed for r in runs)  # seed-major


def test_first_stage_leaves_out_claims_of_variants_not_chosen() -> None:
    chosen = [v for v in VARIANTS if v.name != "alexnet2012_no_lrn"]
    names = {e.claim for e in plan.first_stage(CLAIMS, chosen)}
    assert "lrn" not in names and "lrn_top5" not in names and "two_towers" in names


def test_second_stage_count_is_the_first_stages_spread_at_the_family_level() -> None:
    first = plan.first_stage(CLAIMS, VARIANTS)
    out = design.second_stage(CLAIMS, rows(), VARIANTS, first, 0, "test")
    sd = statistics.stdev(a - b for a, b in zip(NO_LRN, BASE))
    alpha = stats.ALPHA / M
    hold = stats.seeds_needed(1.4, sd, alpha, is_paired=True)
    fail = stats.seeds_needed(0.7, sd, alpha, is_paired=True, within=True)
    assert hold is not None and fail is not None and fail > hold  # failing by size takes more pairs
    e = out["lrn"]
    assert (e.variant, e.baseline) == (fail, fail)
    assert f"seed sd {sd:.2g} (paired)" in e.why and f"{hold} pairs would hold it" in e.why
    assert f"{fail} would fail it by size" in e.why and f"alpha 0.05/{M}" in e.why and "seeds 0-2" in e.why
    assert "two_towers" not in out  # no runs of its variant: stays at the first stage


def test_second_stage_reads_neither_the_measured_mean_nor_later_seeds() -> None:
    first = plan.first_stage(CLAIMS, VARIANTS)
    base = design.second_stage(CLAIMS, rows(), VARIANTS, first, 0, "test")["lrn"]
    for moved in (rows(shift=5.0), rows(shift=-8.0), rows(later=True)):  # Stein: the spread alone sizes stage 2
        assert design.second_stage(CLAIMS, moved, VARIANTS, first, 0, "test")["lrn"].variant == base.variant


def test_second_stage_waits_for_three_first_stage_seeds_a_side() -> None:
    first = plan.first_stage(CLAIMS, VARIANTS)
    two = [r for r in rows() if r.seed != 2]
    assert "lrn" not in design.second_stage(CLAIMS, two, VARIANTS, first, 0, "test")
    shifted = [run(r.variant, r.seed + 100, r.final_top1) for r in rows()]  # --seed-offset 100's first stage
    assert "lrn" in design.second_stage(CLAIMS, shifted, VARIANTS, first, 100, "test")
    assert "lrn" not in design.second_stage(CLAIMS, shifted, VARIANTS, first, 0, "test")


def test_paper_table_never_goes_below_the_first_stage_and_caps_with_a_reason() -> None:
    first = plan.first_stage(CLAIMS, VARIANTS)
    second = {"lrn": ClaimSeeds("lrn", 40, 40, "second stage: x"), "dropout": ClaimSeeds("dropout", 3, 3, "y")}
    table = {e.claim: e for e in plan.paper_table(first, second, max_seeds=12)}
    assert (table["lrn"].variant, table["lrn"].baseline) == (12, 12)
    assert "capped at --max-seeds 12 of the 40 it asks for" in table["lrn"].why
    assert table["ensemble5"].variant == 12 and "of the 15" in table["ensemble5"].why
    assert table["two_towers"].variant == 3 and "first stage" in table["two_towers"].why
    with pytest.raises(ValueError, match="at least 3"):
        plan.paper_table(first, {}, max_seeds=2)


# --- the command line, on a real store -----------------------------------------------------------------------------


EXPERIMENT = schema.EXPERIMENT_NAME.format(dataset="ILSVRC-2012", profile="paper")


def _log(uri: str, experiment: str, variant: str, seed: int, top1: float) -> None:
    """A finished variant run as `harness run` tags it, without training (what `read_store` reads)."""
    mlflow.set_tracking_uri(uri)
    exp = mlflow.set_experiment(experiment)
    with mlflow.start_run(experiment_id=exp.experiment_id, run_name=f"{variant} s{seed}"):
        mlflow.set_tags(
            {
                schema.TAG_KIND: "variant",
                schema.TAG_VARIANT: variant,
                "profile": "paper",
                "dataset": "imagefolder",
                "dataset_name": "ILSVRC-2012",
                "split": "val",
                "test_protocol": "ten_crop",
            }
        )
        mlflow.log_params({"seed": seed, "num_classes": 1000})
        mlflow.log_metrics({schema.FINAL_TOP1: top1, schema.FINAL_TOP5: top1 + 20})


def test_run_all_plan_on_the_paper_profile_reads_the_first_stage_from_the_store(harness_main, tmp_path: Path) -> None:
    from tests.support import one_line_error, write_photo_tree

    data = write_photo_tree(tmp_path / "photos")
    uri = f"sqlite:///{tmp_path}/m.db"
    argv = ["run", "--plan", "--data", str(data), "--dataset-name", "ILSVRC-2012", "--tracking-uri", uri]
    code, out, err = harness_main(argv)  # no store yet: the first stage
    assert code == 0, err
    assert "paper profile" in out.splitlines()[0] and "Two stages" in out
    line = next(x for x in out.splitlines() if x.startswith("alexnet2012_no_lrn "))
    assert line.split()[1] == "0-2"
    for s, (a, b) in enumerate(zip(BASE, NO_LRN)):
        _log(uri, EXPERIMENT, "alexnet2012", s, a)
        _log(uri, EXPERIMENT, "alexnet2012_no_lrn", s, b)
    code, out, err = harness_main([*argv, "--max-seeds", "9"])
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith("alexnet2012_no_lrn "))
    assert line.split()[1] == "0-8"  # the second stage asks for more than 9 pairs: capped
    assert any("lrn: 9 / 9: second stage, sized by the first stage's seeds 0-2" in x for x in out.splitlines())
    assert "capped at --max-seeds 9" in out
    code, out, err = harness_main([*argv, "--max-seeds", "2"])
    one_line_error(code, err, "--max-seeds must be at least 3")


def test_run_all_on_the_paper_profile_trains_the_second_stage_in_the_same_command(tmp_path: Path, monkeypatch) -> None:
    """`runner.run_stages` with a `carry_out` that records what it is asked to train and, for the first stage,
    logs the LRN claim's first-stage runs to a real store as finished (training 94 runs is not a unit test): the
    second call gets exactly the runs the store's first stage adds to the plan, and the outcomes of both."""
    from harness import runner
    from harness.request import RunRequest
    from harness.runs.batch import RunResult
    from harness.runs.common import Outcome
    from tests.support import write_photo_tree

    uri = f"sqlite:///{tmp_path}/m.db"
    req = RunRequest(
        all=True, data=str(write_photo_tree(tmp_path / "photos")), dataset_name="ILSVRC-2012", tracking_uri=uri,
        max_seeds=9,
    )  # fmt: skip
    asked: list[RunRequest] = []

    def carry_out(r: RunRequest) -> RunResult:
        asked.append(r)
        runs = runner.planned(r)[2]
        if len(asked) == 1:  # the first stage "trains": the LRN claim's runs finish, with a paired sd of 0.5
            for s, (a, b) in enumerate(zip(BASE, NO_LRN)):
                _log(uri, EXPERIMENT, "alexnet2012", s, a)
                _log(uri, EXPERIMENT, "alexnet2012_no_lrn", s, b)
        outcomes = tuple(Outcome(x.variant, "finished", seed=x.seed) for x in runs)
        return RunResult(outcomes, uri, EXPERIMENT, "paper", "imagefolder", is_main=True)

    assert runner.two_stages(req) and not runner.two_stages(RunRequest(all=True, profile="proxy"))
    first_stage = len(runner.planned(req)[2])
    result = runner.run_stages(req, carry_out)
    assert len(asked) == 2 and asked[0] == req
    # alexnet2012 already has seeds 0-14 (the ensembles' first stage): the second stage adds no_lrn's seeds 3-8
    assert asked[1].only == tuple(("alexnet2012_no_lrn", s) for s in range(3, 9))
    assert [(o.variant, o.seed) for o in result.outcomes[-6:]] == list(asked[1].only)
    assert len(result.outcomes) == first_stage + 6
    # run again: the plan already holds the second stage, nothing is added, one call
    asked.clear()
    runner.run_stages(req, carry_out)
    assert len(asked) == 1 and len(runner.planned(asked[0])[2]) == first_stage + 6
    # under torchrun (several ranks) the second stage is left to the command run again
    uri = f"sqlite:///{tmp_path}/fresh.db"
    req = replace(req, tracking_uri=uri)
    monkeypatch.setenv("WORLD_SIZE", "2")
    asked.clear()
    runner.run_stages(req, carry_out)
    assert len(asked) == 1

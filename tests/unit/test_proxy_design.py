"""The proxy's design (docs/proxy.md): its geometry (no position copied before fc6), the seed plan's fixed claim
family and `--seed-offset`, the 5-crop stand-in for KSH12's 10-crop, and the train-validation gap."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from harness import plan
from harness.config import resolve
from harness.profiles import PROXY
from harness.report import gap
from harness.report.claims import check_claims, families, proxy_family
from harness.request import RunRequest
from tests.unit.test_verdicts import run
from variants import claims, get_variant, list_variants
from variants.convnet import set_pool_to

VARIANTS = tuple(list_variants())
CLAIMS = tuple(claims())


def _pool5(model: torch.nn.Module, crop: int) -> tuple[int, int]:
    with torch.no_grad():
        x = model.features(torch.zeros(1, 3, crop, crop))
    return x.shape[-2], x.shape[-1]


@pytest.mark.parametrize("name", [v.name for v in VARIANTS])
def test_no_position_is_copied_before_fc6_on_the_proxy(name: str) -> None:
    """An adaptive pool that outputs more positions than its input has copies some of them, and fc6 then trains
    copies of one weight that always get the same gradient (at 64 px the native 6 x 6 pool copied a 1 x 1 pool5
    into 36 positions)."""
    variant = get_variant(name)
    cfg = resolve(variant, RunRequest(names=(name,), profile="proxy"))
    r = cfg.recipe
    model = variant.build(10, r.width, r.dropout_scaling, r.pool_to)
    if not hasattr(model, "features"):
        pytest.skip(f"{name} has no feature stack")  # pragma: no cover - every registered net has one
    h, w = _pool5(model, r.crop)
    out = model.avgpool.output_size
    oh, ow = (out, out) if isinstance(out, int) else out
    assert oh <= h and ow <= w, f"{name}: pool5 {h}x{w} at {r.crop} px, fc6 reads {oh}x{ow}"
    assert model(torch.zeros(2, 3, r.crop, r.crop)).shape == (2, 10)


def test_the_proxy_reads_pool5_as_it_is_and_the_paper_keeps_6x6() -> None:
    v = get_variant("alexnet2012")
    assert dict((o.key, o.value) for o in PROXY.overrides)["pool_to"] == 1
    paper = resolve(v, RunRequest(names=("alexnet2012",), data="/tmp"))
    assert paper.recipe.pool_to is None and v.build(10).avgpool.output_size == (6, 6)
    proxy = resolve(v, RunRequest(names=("alexnet2012",), profile="proxy"))
    assert any(d.startswith("pool_to = 1:") for d in proxy.profile_deviations)
    native = v.build(10, 0.25)
    narrow = v.build(10, 0.25, pool_to=1)
    assert native.classifier.fc6.in_features == 36 * narrow.classifier.fc6.in_features
    # the two-tower net without tower exchange has per-tower fc layers: the grouped fc6 follows
    towers = get_variant("alexnet2012_no_tower_exchange").build(10, 0.25, pool_to=1)
    assert towers(torch.zeros(2, 3, 64, 64)).shape == (2, 10)


def test_pool_to_changes_the_config_hash_only_where_set() -> None:
    v = get_variant("alexnet2014")
    base = resolve(v, RunRequest(names=("alexnet2014",), profile="smoke"))
    assert base.recipe.pool_to is None
    assert "pool_to" not in base.to_json().split('"recipe"')[0]  # (the identity of runs recorded before the field)
    changed = resolve(v, RunRequest(names=("alexnet2014",), profile="smoke", sets={"pool_to": 2}))
    assert changed.config_hash() != base.config_hash() and changed.recipe_modified


def test_set_pool_to_refuses_a_net_without_an_adaptive_pool() -> None:
    with pytest.raises(ValueError, match="no adaptive pool"):
        set_pool_to(torch.nn.Sequential(torch.nn.Linear(2, 2)), 1)


# --- the plan ---------------------------------------------------------------------------------------------------


def test_the_family_is_fixed_by_the_plan_and_adding_runs_does_not_change_it() -> None:
    untestable = plan.PROXY_UNTESTABLE
    family = proxy_family(CLAIMS, {e.claim for e in plan.PROXY_SEEDS}, untestable)
    assert family == {e.claim for e in plan.PROXY_SEEDS}
    assert not family & set(untestable)
    by_name = {c.name: c for c in CLAIMS}
    assert all(name in by_name and by_name[name].metric == "top1" for name in untestable)
    # the family is a function of the plan, never of the runs: extra runs of an untested variant leave it alone
    rows = [run(v, s, 80.0 + s, profile="proxy", data="mnist-clutter") for v in ("alexnet2012_no_lrn", "alexnet2012")
            for s in range(5)]  # fmt: skip
    results = check_claims(CLAIMS, rows, VARIANTS, (), family, untestable)
    assert families(CLAIMS, family, untestable).proxy == len(family)
    lrn = next(r for r in results if r.claim.name == "lrn" and r.proxy)
    assert lrn.verdict == "not testable here" and lrn.reason.startswith(untestable["lrn"])


def test_the_plan_trains_the_family_first_seed_major() -> None:
    runs = plan.plan(VARIANTS, CLAIMS, plan.PROXY_SEEDS, "proxy", every_variant=False)
    wanted = plan.seeds_per_variant(plan.PROXY_SEEDS, CLAIMS)
    assert {r.variant for r in runs} == set(wanted)
    assert [r.seed for r in runs] == sorted(r.seed for r in runs)
    assert all(sorted(r.seed for r in runs if r.variant == n) == list(range(k)) for n, k in wanted.items())
    every = plan.plan(VARIANTS, CLAIMS, plan.PROXY_SEEDS, "proxy", every_variant=True)
    assert every[: len(runs)] == runs and {r.variant for r in every} == {v.name for v in VARIANTS}


def test_a_seed_offset_shifts_every_seed_and_keeps_the_pairs() -> None:
    runs = plan.plan(VARIANTS, CLAIMS, plan.PROXY_SEEDS, "proxy")
    shifted = plan.shifted(runs, 100)
    assert [(r.variant, r.seed - 100) for r in shifted] == [(r.variant, r.seed) for r in runs]
    assert plan.shifted(runs, 0) == runs
    with pytest.raises(ValueError):
        plan.shifted(runs, -1)


def test_seed_offset_on_the_command_line(harness_main) -> None:
    code, out, _ = harness_main(["run", "--plan", "--seed-offset", "100"])
    assert code == 0 and "--seed-offset 100" in out.splitlines()[0]
    row = next(x for x in out.splitlines() if x.startswith("alexnet2012 "))
    assert row.split()[1].startswith("100-")
    code, out, _ = harness_main(["run", "zfnet", "--seed", "3", "--seed-offset", "10", "--plan"])
    assert code == 0 and out.splitlines()[3].split()[:2] == ["zfnet", "13"]
    code, out, err = harness_main(["run", "--plan", "--seed-offset", "-1"])
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "--seed-offset" in err


# --- the 5-crop stand-in and the gap ----------------------------------------------------------------------------


def test_ten_crop_claims_on_proxy_data_use_five_crops_paired_per_run() -> None:
    claim = next(c for c in CLAIMS if c.name == "ten_crop")
    rows = [
        replace(
            run("alexnet2012", s, 80.0 + s, profile="proxy", data="mnist-clutter"),
            protocol="center",
            center_top1=80.0 + s,
            ten_crop_top1=None,  # the proxy evaluates no 10-crop
            five_crop_top1=81.0 + s + s / 10,
        )
        for s in range(4)
    ]
    [r] = check_claims([claim], rows, VARIANTS, (), {"ten_crop"}, {})
    assert r.proxy and r.diff.paired and r.n_variant == 4
    assert r.measured == pytest.approx(1.15)
    assert "5-crop (no mirrors) stands for the 10-crop" in r.reason
    assert r.verdict == "supported"


def test_five_crop_views_are_the_ten_crop_views_without_mirrors() -> None:
    from harness.augment import EvalView

    x = torch.randint(0, 256, (2, 3, 72, 72), dtype=torch.uint8)
    ten, five = EvalView("ten_crop", 64)(x), EvalView("five_crop", 64)(x)
    assert five.shape == (2, 5, 3, 64, 64) and torch.equal(ten[:, :5], five)


def test_gap_rows_read_the_last_epoch_and_fixed_fractions() -> None:
    rows = [
        replace(
            run("alexnet2012", s, 70.0, profile="proxy", data="mnist-clutter"),
            epochs=8,
            val_top1=tuple((e, 10.0 * e - s) for e in range(1, 9)),
            train_top1=tuple((e, 12.0 * e) for e in range(1, 9)),
        )
        for s in range(2)
    ]
    [g] = gap.gap_rows(rows)
    assert g.epochs == (2, 4, 6, 8) and g.curve == (19.5, 39.5, 59.5, 79.5)
    assert g.train_top1 == 96.0 and g.val_top1 == 79.5 and g.gap == pytest.approx(16.5)


def test_a_claim_the_proxy_cannot_test_says_why_even_without_runs() -> None:
    rows = [run("alexnet2012", s, 70.0 + s, profile="proxy", data="mnist-clutter") for s in range(3)]
    untestable = plan.PROXY_UNTESTABLE
    results = check_claims(CLAIMS, rows, VARIANTS, (), {e.claim for e in plan.PROXY_SEEDS}, untestable)
    [dropout] = [r for r in results if r.claim.name == "dropout"]
    assert dropout.verdict == "not testable here" and dropout.reason == untestable["dropout"]
    paper = [replace(x, profile="paper", dataset_name="ILSVRC-2012") for x in rows]
    [on_paper] = [r for r in check_claims(CLAIMS, paper, VARIANTS) if r.claim.name == "dropout"]
    assert on_paper.verdict == "not run"  # the papers' data can test it: it needs runs


def test_an_untrained_top5_claim_on_ten_class_proxy_data_is_not_testable_not_missing_runs() -> None:
    """Top-5 of 10 classes carries no information whether or not its variants ran: the report says so, where it
    used to say "not run" (needs runs) for the top-5 twin of every claim the proxy does not train."""
    rows = [run("alexnet2012", s, 70.0 + s, profile="proxy", data="mnist-clutter", num_classes=10) for s in range(3)]
    named, untestable = {e.claim for e in plan.PROXY_SEEDS}, plan.PROXY_UNTESTABLE
    by_name = {r.claim.name: r for r in check_claims(CLAIMS, rows, VARIANTS, (), named, untestable)}
    lrn5 = by_name["lrn_top5"]
    assert lrn5.verdict == "not testable here" and lrn5.reason == "top-5 of 10 classes carries no information"
    assert by_name["lrn"].reason == untestable["lrn"]  # the top-1 claim keeps its own reason
    # data with more classes (or a run that logged none) can test top-5: its claims need runs
    for classes in (100, None):
        more = [replace(x, num_classes=classes) for x in rows]
        [lrn5] = [r for r in check_claims(CLAIMS, more, VARIANTS, (), named, untestable) if r.claim.name == "lrn_top5"]
        assert lrn5.verdict == "not run"
    # the papers' data: unchanged; beside the proxy's runs, it could test the claim: "not run", with both reasons
    paper = [replace(x, profile="paper", dataset_name="ILSVRC-2012", num_classes=1000) for x in rows]
    [lrn5] = [r for r in check_claims(CLAIMS, paper, VARIANTS) if r.claim.name == "lrn_top5"]
    assert lrn5.verdict == "not run" and "proxy" not in lrn5.reason
    mixed = check_claims(CLAIMS, rows + paper, VARIANTS, (), named, untestable)
    by_name = {r.claim.name: r for r in mixed}
    assert by_name["lrn_top5"].verdict == "not run" and by_name["lrn_top5"].reason.endswith(
        "; not testable on the proxy data: top-5 of 10 classes carries no information"
    )
    assert by_name["zf_no_fc7"].verdict == "not run" and untestable["zf_no_fc7"] in by_name["zf_no_fc7"].reason


def test_the_proxy_evaluates_at_fixed_epochs_and_the_plateau_rule_every_epoch() -> None:
    v = get_variant("alexnet2014")
    proxy = resolve(v, RunRequest(names=("alexnet2014",), profile="proxy"))
    assert proxy.recipe.epochs == 40 and proxy.eval_epochs == (10, 20, 30, 40)
    assert proxy.limit_train == 500 and proxy.limit_val == 1000
    assert proxy.final_protocols == ("center", "five_crop")
    plateau = resolve(v, RunRequest(names=("alexnet2014",), profile="proxy", sets={"schedule": "plateau"}))
    assert plateau.eval_epochs == ()  # the plateau rule reads every epoch's val top-1
    assert resolve(v, RunRequest(names=("alexnet2014",), profile="smoke")).eval_epochs == ()
    assert proxy.config_hash() == replace(proxy, eval_epochs=()).config_hash()  # the same training


def test_the_proxy_training_slice_is_balanced() -> None:
    import numpy as np

    from harness.datasets import stratified_slice

    labels = np.repeat(np.arange(10), 800)  # mnist-clutter's 8,000 training canvases: 2 of each of 400 digits a class
    kept = stratified_slice(labels, PROXY.limit_train)
    assert len(kept) == 500 and np.bincount(labels[kept]).tolist() == [50] * 10
    assert kept == stratified_slice(labels, PROXY.limit_train)  # fixed: the same canvases in every run


def test_a_run_that_evaluates_at_fixed_epochs_logs_val_only_there(monkeypatch, harness_main, uri, runs) -> None:
    from harness import profiles

    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(profiles.SMOKE, val_every_epoch=False))
    args = ["run", "alexnet2014", "--profile", "smoke", "--epochs", "8", "--limit-train", "32", "--limit-val", "16"]
    code, _, err = harness_main([*args, "--no-report", "--tracking-uri", uri])
    assert code == 0, err[-2000:]
    [r] = runs(uri)
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    assert [m.step for m in client.get_metric_history(r.info.run_id, "val_top1")] == [2, 4, 6, 8]
    assert [m.step for m in client.get_metric_history(r.info.run_id, "train_loss")] == list(range(1, 9))
    assert "final_val_top1" in r.data.metrics

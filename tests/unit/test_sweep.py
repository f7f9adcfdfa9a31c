"""Sweeps: Optuna studies around a recipe, tracked in MLflow as a parent run with one nested run per trial.

One real sweep on `smoke` data (module fixture) is shared by the MLflow, Optuna, resume and --from-sweep tests; the
pruning plumbing there uses a deterministic test pruner (odd trials pruned at epoch 1), and the median pruner's own
decision is checked on a crafted study.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from harness import config, schema, spaces
from harness.config import resolve
from harness.errors import HarnessError
from harness.report import read
from harness.request import RunRequest
from harness.sweep import searchspace, studies
from tests.support import harness_in_process, mlflow_runs, store_uri
from variants import get_variant, list_variants

VARIANT = "torchvision_alexnet"
STUDY = "smoke-lr"


class OddTrialsPruner(optuna.pruners.BasePruner):
    """Prunes every odd-numbered trial at its first report: deterministic, unlike a median over synthetic data."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number % 2 == 1


def _cli(argv: list[str]) -> tuple[int, str]:
    """`harness ARGV` in this process: (exit code, stdout and stderr together)."""
    code, out, err = harness_in_process(argv)
    return code, out + err


def _sweep_argv(uri: str, *extra: str) -> list[str]:
    return [
        "sweep",
        VARIANT,
        "--profile",
        "smoke",
        "--epochs",
        "2",
        "--space",
        "lr",
        "--study-name",
        STUDY,
        "--tracking-uri",
        uri,
        *extra,
    ]


def _study(uri: str) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{studies.storage_path(uri)}")


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory):
    """3 trials of lr on smoke data: trial 1 pruned at epoch 1, trials 0 and 2 complete."""
    root = tmp_path_factory.mktemp("sweep")
    uri = store_uri(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setattr(studies, "build_pruner", lambda name: OddTrialsPruner())
        code, out = _cli(_sweep_argv(uri, "--trials", "3", "--report"))
    assert code == 0, out
    return root, uri, out


@pytest.mark.slow
def test_sweep_report_is_written_and_logged_to_the_sweep_run(smoke_sweep):
    root, uri, out = smoke_sweep
    (parent,) = mlflow_runs(uri, "sweep")
    report = root / "reports" / "synthetic-smoke.md"
    assert report.is_file() and f"Report: {Path('reports') / 'synthetic-smoke.md'}" in out
    logged = {a.path for a in MlflowClient(uri).list_artifacts(parent.info.run_id, schema.ART_REPORT)}
    assert "report/synthetic-smoke.md" in logged


@pytest.mark.slow
def test_sweep_records_parent_and_nested_trial_runs(smoke_sweep):
    root, uri, out = smoke_sweep
    c = MlflowClient(uri)
    parents = mlflow_runs(uri, "sweep")
    parent = parents[0]
    t = parent.data.tags
    assert (t[schema.TAG_SWEEP], t[schema.TAG_VARIANT], t[schema.TAG_PROFILE], t[schema.TAG_DATASET]) == (
        STUDY,
        VARIANT,
        "smoke",
        "synthetic",
    )
    assert parent.info.status == "FINISHED"
    children = [r for r in mlflow_runs(uri, "trial") if r.data.tags["mlflow.parentRunId"] == parent.info.run_id]
    assert sorted(r.data.tags[schema.TAG_TRIAL] for r in children) == ["0", "1", "2"]
    states = {r.data.tags[schema.TAG_TRIAL]: r.data.tags[schema.TAG_TRIAL_STATE] for r in children}
    assert states == {"0": "complete", "1": "pruned", "2": "complete"}
    for r in children:
        tags, steps = r.data.tags, {"1": [1]}.get(r.data.tags[schema.TAG_TRIAL], [1, 2])
        assert tags[schema.TAG_SWEEP] == STUDY and tags[schema.TAG_RECIPE_MODIFIED] == "true"
        assert "lr" in tags[schema.TAG_MODIFIED_KEYS].split(",")
        assert r.info.run_name == f"trial-{tags[schema.TAG_TRIAL]}"
        for key in schema.EPOCH_METRICS:  # the same per-epoch keys as `harness run`; the pruned one stops at 1
            assert [h.step for h in c.get_metric_history(r.info.run_id, key)] == steps, key
        assert {"lr", "weight_decay", "batch_size", "epochs", "seed", "dataset_fingerprint"} <= set(r.data.params)
        assert r.info.status == ("KILLED" if tags[schema.TAG_TRIAL] == "1" else "FINISHED")
    complete = [r for r in children if r.data.tags[schema.TAG_TRIAL_STATE] == "complete"]
    best = max(complete, key=lambda r: r.data.metrics[schema.FINAL_TOP1])
    m = parent.data.metrics
    assert m["best_val_top1"] == pytest.approx(best.data.metrics[schema.FINAL_TOP1])
    assert (m["n_complete"], m["n_pruned"], m["n_failed"]) == (2, 1, 0)
    assert parent.data.params["best_lr"] == best.data.params["lr"]
    arts = {a.path for a in c.list_artifacts(parent.info.run_id)}
    assert {"optimization_history.png", "param_importances.png"} <= arts, parent.data.tags.get("figures_note")
    # the summary table: every trial with its state, then the best
    assert "pruned" in out and f"best: trial {best.data.tags[schema.TAG_TRIAL]}" in out
    # trial runs do not each store ~230 MB of weights; checkpoints of finished trials are deleted
    assert not [a for a in c.list_artifacts(best.info.run_id) if a.path == "checkpoint"]
    assert not list((root / "mlruns" / "checkpoints").glob("sweep-*"))


@pytest.mark.slow
def test_pruned_trial_recorded_in_optuna(smoke_sweep):
    _, uri, _ = smoke_sweep
    trials = {t.number: t for t in _study(uri).trials}
    assert trials[1].state == optuna.trial.TrialState.PRUNED
    assert list(trials[1].intermediate_values) == [1]  # stopped after its first epoch
    assert trials[0].state == trials[2].state == optuna.trial.TrialState.COMPLETE
    assert list(trials[0].intermediate_values) == [1, 2]
    # the objective is the run's final_val_top1 (the recipe's own test protocol), as `harness run` records it
    run = MlflowClient(uri).get_run(trials[0].user_attrs["mlflow_run_id"])
    assert trials[0].value == pytest.approx(run.data.metrics[schema.FINAL_TOP1])


@pytest.mark.slow
def test_sweep_summaries_read_back_for_the_report(smoke_sweep):
    _, uri, _ = smoke_sweep
    (s,) = read.sweep_summaries(uri, ["synthetic-smoke"])
    study = _study(uri)
    assert (s.study, s.variant, s.dataset, s.profile) == (STUDY, VARIANT, "synthetic", "smoke")
    assert s.best_value == pytest.approx(study.best_value)
    assert s.n_trials == len(study.trials) and s.n_pruned >= 1
    assert float(s.best_params["lr"]) == pytest.approx(study.best_trial.params["lr"])
    assert read.sweep_summaries(uri, ["no-such-experiment"]) == []


@pytest.mark.slow
def test_same_study_name_continues_and_fails_a_stale_running_trial(smoke_sweep, monkeypatch):
    root, uri, _ = smoke_sweep
    before = _study(uri)
    n_before = len(before.trials)
    # a trial whose process was killed: RUNNING in Optuna with an old heartbeat, RUNNING in MLflow
    storage = optuna.storages.RDBStorage(f"sqlite:///{studies.storage_path(uri)}", heartbeat_interval=1)
    stale = optuna.load_study(study_name=STUDY, storage=storage).ask()
    storage.record_heartbeat(stale._trial_id)
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("synthetic-smoke").experiment_id
    dead = c.create_run(
        exp,
        run_name=f"trial-{stale.number}",
        tags={schema.TAG_KIND: "trial", schema.TAG_SWEEP: STUDY, schema.TAG_TRIAL: str(stale.number)},
    )
    monkeypatch.setattr(studies, "GRACE_S", 1)
    monkeypatch.setattr(studies, "build_pruner", lambda name: OddTrialsPruner())
    monkeypatch.chdir(root)
    time.sleep(2.5)  # SQLite's clock has whole seconds

    code, out = _cli(_sweep_argv(uri, "--trials", "1"))
    assert code == 0, out

    after = _study(uri)
    assert len(after.trials) == n_before + 2  # the stale one and one new trial: added, not started over
    assert after.trials[stale.number].state == optuna.trial.TrialState.FAIL
    dead_run = c.get_run(dead.info.run_id)
    assert dead_run.info.status == "KILLED" and dead_run.data.tags[schema.TAG_TRIAL_STATE] == "failed"
    new = after.trials[-1]
    assert new.state == optuna.trial.TrialState.COMPLETE  # trial 4: even, not pruned by the test pruner
    # the sampler was seeded seed + trials so far: the new trial is not a replay of trial 0's random draw
    assert new.params["lr"] != after.trials[0].params["lr"]
    parents = mlflow_runs(uri, "sweep")
    assert len(parents) == 2
    assert parents[-1].data.params["trials_before"] == str(n_before + 1)
    assert parents[-1].data.metrics["n_trials"] == n_before + 2 and parents[-1].data.metrics["n_failed"] == 1
    # continuing the study with another search space would mix unlike trials: refused, one line
    code, out = _cli(_sweep_argv(uri, "--trials", "1", "--space", "default"))
    assert code == 2 and "space" in out and "another --study-name" in out


@pytest.mark.slow
def test_best_params_and_run_from_sweep_are_tagged_tuned(smoke_sweep, monkeypatch):
    root, uri, _ = smoke_sweep
    best = studies.best_params(STUDY, uri)
    study = _study(uri)
    assert best == {"lr": study.best_trial.params["lr"]}
    with pytest.raises(HarnessError, match=f"unknown sweep study 'nope'.*{STUDY}"):
        studies.best_params("nope", uri)
    monkeypatch.chdir(root)
    code, out = _cli(
        [
            "run",
            VARIANT,
            "--profile",
            "smoke",
            "--epochs",
            "1",
            "--from-sweep",
            STUDY,
            "--tracking-uri",
            uri,
            "--no-report",
        ]
    )
    assert code == 0, out
    (run,) = mlflow_runs(uri, "variant")
    assert run.data.tags[schema.TAG_RECIPE_MODIFIED] == "true"
    assert run.data.tags[schema.TAG_TUNED_FROM] == STUDY
    assert float(run.data.params["lr"]) == pytest.approx(best["lr"])


def test_best_params_without_a_store_or_complete_trial(tmp_path):
    uri = store_uri(tmp_path)
    with pytest.raises(HarnessError, match="no Optuna storage"):
        studies.best_params("any", uri)
    storage = f"sqlite:///{studies.storage_path(uri)}"
    studies.storage_path(uri).parent.mkdir(parents=True)
    optuna.create_study(storage=storage, study_name="empty", direction="maximize").ask()
    with pytest.raises(HarnessError, match="no complete trial"):
        studies.best_params("empty", uri)


# --- pruner, sampler and spaces without training ----------------------------------------------------------------


def _complete(study: optuna.Study, epoch1: float) -> None:
    study.add_trial(
        optuna.trial.create_trial(
            value=epoch1 + 5, intermediate_values={1: epoch1, 2: epoch1 + 5}, params={}, distributions={}
        )
    )


def test_median_pruner_stops_a_trial_below_the_median_at_epoch_1_after_two_complete():
    study = optuna.create_study(direction="maximize", pruner=studies.build_pruner("median"))
    _complete(study, 50.0)
    low = study.ask()
    low.report(10.0, step=1)
    assert not low.should_prune()  # one complete trial: too early to judge
    _complete(study, 60.0)
    low = study.ask()
    low.report(10.0, step=1)
    assert low.should_prune()
    high = study.ask()
    high.report(70.0, step=1)
    assert not high.should_prune()
    assert not optuna.create_study(pruner=studies.build_pruner("none")).ask().should_prune()


def test_seeded_sampler_repeats_its_draws_and_another_seed_differs():
    recipe = resolve(get_variant(VARIANT), RunRequest(profile="smoke")).recipe

    def draws(seed: int) -> list[dict[str, object]]:
        study = optuna.create_study(direction="maximize", sampler=studies.build_sampler(seed))
        out = []
        for i in range(3):
            t = study.ask()
            out.append(searchspace.sample(t, spaces.SPACES["default"], recipe))
            study.tell(t, float(i))
        return out

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


@pytest.mark.parametrize("space", list(spaces.SPACES))
@pytest.mark.parametrize("variant", [v.name for v in list_variants()])
def test_every_space_has_a_non_empty_range_for_every_variant_on_proxy(space, variant):
    v = get_variant(variant)
    recipe = resolve(v, RunRequest()).recipe
    relative_wd = any(d.key == "weight_decay" and getattr(d, "relative", False) for d in spaces.SPACES[space].dims)
    if relative_wd and recipe.weight_decay == 0:  # KSH12 Fig. 1: "no regularization": nothing to scale around
        with pytest.raises(HarnessError, match=r"weight_decay range \[0, 0\] is empty"):
            searchspace.check_space(spaces.SPACES[space], recipe, min_size=v.min_input_size)
        return
    ranges = searchspace.check_space(spaces.SPACES[space], recipe, min_size=v.min_input_size)
    assert {d.key for d in spaces.SPACES[space].dims} <= set(ranges)
    assert all(d.key in config.settable_keys() for d in spaces.SPACES[space].dims)


def test_default_space_centres_on_the_recipe():
    recipe = resolve(get_variant(VARIANT), RunRequest()).recipe
    ranges = searchspace.check_space(spaces.SPACES["default"], replace(recipe, lr=0.02))
    assert ranges["lr"] == "[0.002, 0.2] log"


def test_empty_ranges_are_one_line_errors():
    recipe = resolve(get_variant(VARIANT), RunRequest(profile="smoke")).recipe
    with pytest.raises(HarnessError, match="weight_decay.*empty"):
        searchspace.check_space(spaces.SPACES["default"], replace(recipe, weight_decay=0.0))
    collapsed = spaces.Space("t", "test", (spaces.FloatRange("momentum", 0.9, 0.9),))
    with pytest.raises(HarnessError, match=r"momentum range \[0.9, 0.9\] is empty"):
        searchspace.check_space(collapsed, recipe)
    with pytest.raises(HarnessError, match="no choices"):
        searchspace.check_space(spaces.Space("t", "test", (spaces.IntChoice("batch_size", ()),)), recipe)
    with pytest.raises(HarnessError, match="invalid"):
        searchspace.check_space(spaces.Space("t", "test", (spaces.Categorical("schedule", ("cosine",)),)), recipe)


def test_batch_space_scales_lr_linearly_from_the_profile_batch():
    base = resolve(get_variant(VARIANT), RunRequest(profile="smoke"))
    changes = searchspace.sample(optuna.trial.FixedTrial({"batch_size": 64}), spaces.SPACES["batch"], base.recipe)
    assert changes == {"batch_size": 64, "lr_scale_batch": base.recipe.batch_size}
    tuned = resolve(get_variant(VARIANT), RunRequest(profile="smoke", sets=changes))
    assert tuned.effective_lr == pytest.approx(base.effective_lr * 64 / base.recipe.batch_size)


def test_schedule_space_gives_multistep_milestones_when_the_recipe_has_none():
    recipe = resolve(get_variant(VARIANT), RunRequest()).recipe
    assert recipe.milestones == ()
    changes = searchspace.sample(
        optuna.trial.FixedTrial({"schedule": "multistep", "gamma": 0.2}), spaces.SPACES["schedule"], recipe
    )
    assert changes == {"schedule": "multistep", "gamma": 0.2, "milestones": searchspace.DEFAULT_MILESTONES}


# --- the command line: bad input is one line and exit status 2 ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["torchvision_alexnet", "--space", "nope"],
            "unknown search space 'nope'; known: default, lr, schedule, batch",
        ),
        (["torchvision_alexnet", "--set", "weight_decay=0"], "weight_decay range [0, 0] is empty"),
        (["torchvision_alexnet", "--space", "default", "--set", "momentum=0.9"], "--set momentum would be overridden"),
        (["torchvision_alexne"], "did you mean torchvision_alexnet"),
    ],
)
def test_bad_sweep_input_is_one_line_exit_2(tmp_path, args, message):
    code, _, err = harness_in_process(["sweep", *args, "--profile", "smoke", "--tracking-uri", store_uri(tmp_path)])
    assert code == 2, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "mlruns" / "optuna.db").exists()  # nothing recorded for bad input

"""Two sweep worker processes on one Optuna journal study run distinct trials."""

from __future__ import annotations

import pytest

from harness import schema


@pytest.mark.slow
def test_two_sweep_workers_on_one_journal_study_run_distinct_trials(tmp_path, uri, runs, cli):
    journal = tmp_path / "shared" / "study.log"
    r = cli(
        "sweep",
        "ksh12_fig1_relu",
        "--space",
        "lr",
        "--profile",
        "smoke",
        "--epochs",
        "2",
        "--trials",
        "4",
        "--jobs",
        "2",
        "--storage",
        f"journal:{journal}",
        "--device",
        "cpu",
        "--tracking-uri",
        uri,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    import optuna

    from harness.sweep.trials import OWNER_ATTR

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    (study,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=study.study_name, storage=storage).trials
    assert len(trials) == 4
    assert all(t.state.is_finished() for t in trials)
    assert len({t.params["lr"] for t in trials}) == 4  # the workers did not draw the same trials
    pids = {t.user_attrs[OWNER_ATTR].split()[0] for t in trials}
    assert len(pids) == 2  # two processes ran trials: 2 each
    (parent,) = runs(uri, kind="sweep")
    assert parent.data.metrics[schema.N_TRIALS] == 4  # the parent records the whole study, every worker's trials
    children = runs(uri, kind="trial")
    assert len(children) == 4
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    # `run --from-sweep` reads the best trial from the same storage
    from harness.sweep.studies import best_params

    best = best_params(study.study_name, uri, "ksh12_fig1_relu", f"journal:{journal}")
    assert set(best) == {"lr"}

"""Trials whose process died, and runs a stopped sweep left open: failed in Optuna, their MLflow runs closed KILLED
with trial_state=failed, their checkpoints deleted (the package docstring says when each check runs)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from harness import locks, schema, tracking
from harness.sweep import studies
from harness.sweep.trials import OWNER_ATTR, trial_checkpoint

if TYPE_CHECKING:
    import optuna


def on_stale(uri: str, exp_id: str):
    """Optuna failed a trial whose process died: close its MLflow run (and that dead sweep's parent) too."""

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        close_dead_trial(
            uri,
            exp_id,
            study.study_name,
            trial.number,
            f"had no heartbeat for {studies.GRACE_S} s (its process stopped)",
        )

    return callback


def fail_dead_trials(study: optuna.Study, storage, uri: str, exp_id: str) -> list[int]:
    """RUNNING trials whose process is gone (their owner PID no longer runs on this host): FAIL in Optuna at once,
    not GRACE_S after their last heartbeat, then `close_dead_trial`. Trials of live processes (a second worker),
    of other hosts and without an owner are left to the heartbeat check. Returns the failed trials' numbers."""
    import optuna

    failed = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        o = locks.parse_owner(str(t.user_attrs.get(OWNER_ATTR, "")))
        if o is None or locks.alive(o) is not False:
            continue
        try:
            if not storage.set_trial_state_values(t._trial_id, state=optuna.trial.TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process closed it first
        failed.append(t.number)
        close_dead_trial(uri, exp_id, study.study_name, t.number, f"was left running by {o.describe()}, now gone")
    sweeps = tracking.client(uri).search_runs(  # a sweep killed between trials has no trial to close it by
        [exp_id],
        filter_string=f"tags.{schema.TAG_SWEEP} = '{study.study_name}' and tags.`{schema.TAG_KIND}` = 'sweep' "
        "and attributes.status = 'RUNNING'",
    )
    for r in sweeps:
        tracking.close_orphan(uri, r.info.run_id)
    return failed


def close_dead_trial(uri: str, exp_id: str, study_name: str, number: int, why: str) -> None:
    """A trial Optuna now calls FAIL: its MLflow run KILLED (if RUNNING) with trial_state failed, its sweep's parent
    run KILLED if that is RUNNING without a live owner, its checkpoint and unfinished writes deleted."""
    print(f"trial {number} of {study_name} {why}: marked failed", file=sys.stderr)
    runs = tracking.client(uri).search_runs(
        [exp_id],
        filter_string=f"tags.{schema.TAG_SWEEP} = '{study_name}' and tags.{schema.TAG_TRIAL} = '{number}'",
    )
    for r in runs:
        tracking.Tracker(uri, r.info.run_id).set_tags({schema.TAG_TRIAL_STATE: "failed"})
        tracking.close_orphan(uri, r.info.run_id)
        parent_id = r.data.tags.get(schema.TAG_PARENT_RUN)
        if parent_id:
            tracking.close_orphan(uri, parent_id)
    ckpt = trial_checkpoint(uri, study_name, number)
    locks.remove_stale_tmp(ckpt)
    for path in (ckpt, ckpt.with_name(ckpt.name + ".lock")):
        if path.is_file():
            path.unlink(missing_ok=True)


def close_children(uri: str, exp_id: str, parent_id: str) -> None:
    """Trial runs of this sweep left without a state (interrupted): failed, and KILLED if still RUNNING."""
    runs = tracking.client(uri).search_runs([exp_id], filter_string=f"tags.`{schema.TAG_PARENT_RUN}` = '{parent_id}'")
    for r in runs:
        if schema.TAG_TRIAL_STATE not in r.data.tags:
            run = tracking.Tracker(uri, r.info.run_id)
            run.set_tags({schema.TAG_TRIAL_STATE: "failed"})
            if r.info.status == "RUNNING":
                run.finish("KILLED")

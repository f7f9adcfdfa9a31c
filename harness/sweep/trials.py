"""One trial: sampled changes -> a nested MLflow run trained by `runs.train.train_variant`, val_top1 reported each
epoch for the pruner, the recipe's own test protocol returned as the objective."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from harness import engine, locks, mlruns, runner, schema, tracking
from harness.config import RunConfig
from harness.distributed import Dist
from harness.request import SweepRequest
from harness.runs.decide import Recording
from harness.runs.train import train_variant
from harness.spaces import Space
from harness.sweep.searchspace import sample
from harness.sweep.studies import jsonable

if TYPE_CHECKING:
    import optuna

OWNER_ATTR = "owner"  # trial user attribute: "PID HOST START" of the process running it (harness.locks.Owner)


class TrialFailed(Exception):
    """A trial's training failed (e.g. diverged); recorded as failed, the sweep goes on."""


def trial_checkpoint(uri: str, study_name: str, number: int) -> Path:
    """A trial's per-epoch checkpoint, deleted when the trial ends (or, if its process dies, by the next sweep)."""
    return mlruns.local_root(uri) / "checkpoints" / f"sweep-{study_name}-trial-{number}.pt"


def objective(
    space: Space, base: RunConfig, req: SweepRequest, d: Dist, exp_id: str, parent_id: str, study_name: str
) -> Callable[[optuna.Trial], float]:
    import optuna

    uri = req.uri

    def run_trial(trial: optuna.Trial) -> float:
        trial.set_user_attr(OWNER_ATTR, locks.owner().text())  # who runs it: `cleanup.fail_dead_trials` checks this
        changes = {**req.sets, **sample(trial, space, base.recipe)}
        trial.set_user_attr("changes", jsonable(changes))
        ((variant, cfg),) = runner.configs(replace(req, sets=changes), d)
        tags = {
            schema.TAG_KIND: "trial",
            schema.TAG_SWEEP: study_name,
            schema.TAG_TRIAL: str(trial.number),
            schema.TAG_RECIPE_MODIFIED: "true",  # tuned, even where a sampled value equals the recipe's
            schema.TAG_MODIFIED_KEYS: ",".join(sorted(set(cfg.modified_keys) | set(changes))),
            schema.TAG_SWEEP_SPACE: space.name,
        }

        def on_epoch(stats: engine.EpochStats) -> None:
            if stats.val_top1 is None:  # an epoch the profile does not evaluate (RunConfig.eval_epochs)
                return
            trial.report(stats.val_top1, step=stats.epoch)
            # the last epoch is paid for already: let it finish and count as a complete trial
            if stats.epoch < cfg.recipe.epochs and trial.should_prune():
                raise engine.Pruned(f"val_top1 {stats.val_top1:.2f} below the median at epoch {stats.epoch}")

        ckpt = trial_checkpoint(uri, study_name, trial.number)
        # a trial is always a new run (never skipped or resumed), tagged as a trial, without final weights
        rec = Recording(
            uri,
            exp_id,
            parent_id,
            ckpt,
            reuse=False,
            run_name=f"trial-{trial.number}",
            tags=tags,
            log_weights=False,
            on_epoch=on_epoch,
        )
        outcome = train_variant(variant, cfg, d, rec, verbose=req.verbose)
        ckpt.unlink(missing_ok=True)
        trial.set_user_attr("mlflow_run_id", outcome.run_id)
        trial.set_user_attr("seconds", round(outcome.seconds, 1))
        run = tracking.Tracker(uri, outcome.run_id) if outcome.run_id else tracking.NullTracker()
        if outcome.status == "pruned":
            raise optuna.TrialPruned()
        if outcome.status != "finished" or outcome.top1 is None:
            run.set_tags({schema.TAG_TRIAL_STATE: "failed"})
            trial.set_user_attr("error", outcome.error)
            raise TrialFailed(outcome.error or outcome.status)
        run.set_tags({schema.TAG_TRIAL_STATE: "complete"})
        # the objective is the recipe's own test protocol, the number `harness run` and the report compare
        return float(outcome.top1)

    return run_trial

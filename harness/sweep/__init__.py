"""`harness sweep`: an Optuna search around a variant's recipe, one nested MLflow run per trial.

The only package that imports optuna (lazily, so other subcommands do not pay for it). Control flow, top to bottom
(`command.sweep_command`): variant + profile + --set -> base config -> the named search space's bounds around that
recipe (empty -> error; `searchspace`) -> study in `optuna.db` beside the MLflow store (same name: continued;
`studies`) -> per trial: sampled changes -> `runs.train.train_variant` (reports val_top1 each epoch; the median pruner
stops clearly bad trials; `trials`) -> the parent run gets the best trial, counts and figures -> summary table
(`summary`). `run NAME --from-sweep S` re-runs `studies.best_params(S)` in full.

Killed trials: the study storage runs Optuna's heartbeat (a thread writes a beat every HEARTBEAT_S seconds while a
trial runs). A RUNNING trial whose beat is older than GRACE_S belongs to a process that died; Optuna marks it FAIL at
the start of every later trial (and we check once more at the start and end of each sweep), and our callback marks
its MLflow run KILLED with trial_state=failed. We chose heartbeats over "fail every RUNNING trial at start" because
the latter would also fail the live trials of a second worker sharing the study. Sooner than that, each trial records
its owner (PID, host, process start time: the `owner` user attribute): at the start of a sweep a RUNNING trial whose
owner no longer runs on this host is failed at once (`cleanup.fail_dead_trials`). Either way the dead trial's
checkpoint is deleted and the dead sweep's parent run is closed KILLED (only if RUNNING and its owner is gone).
"""

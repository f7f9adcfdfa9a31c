"""`harness sweep`: an Optuna search around a variant's recipe, one nested MLflow run per trial.

The only module that imports optuna (lazily, so other subcommands do not pay for it). Control flow, top to bottom:
variant + profile + --set -> base config -> the named search space's bounds around that recipe (empty -> error) ->
study in `optuna.db` beside the MLflow store (same name: continued) -> per trial: sampled changes ->
`runs.train.train_variant` (reports val_top1 each epoch; the median pruner stops clearly bad trials) -> the parent run
gets the best trial, counts and figures -> summary table. `run NAME --from-sweep S` re-runs `best_params(S)` in full.

Killed trials: the study storage runs Optuna's heartbeat (a thread writes a beat every HEARTBEAT_S seconds while a
trial runs). A RUNNING trial whose beat is older than GRACE_S belongs to a process that died; Optuna marks it FAIL at
the start of every later trial (and we check once more at the start and end of each sweep), and our callback marks
its MLflow run KILLED with trial_state=failed. We chose heartbeats over "fail every RUNNING trial at start" because
the latter would also fail the live trials of a second worker sharing the study. Sooner than that, each trial records
its owner (PID, host, process start time: the `owner` user attribute): at the start of a sweep a RUNNING trial whose
owner no longer runs on this host is failed at once (`fail_dead_trials`). Either way the dead trial's checkpoint is
deleted and the dead sweep's parent run is closed KILLED (only if RUNNING and its owner is gone).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from harness import distributed, engine, locks, memory, runner, schema, store, tracking, workers
from harness.config import RunConfig, parse_set, settable_keys, validate_recipe
from harness.distributed import Dist
from harness.errors import HarnessError
from harness.request import PRUNERS, SweepRequest
from harness.runs.common import data_spec, experiment_name, load
from harness.runs.decide import Recording
from harness.runs.train import train_variant
from harness.spaces import FloatRange, Space, get_space
from variants import MIN_INPUT_SIZE, Recipe

if TYPE_CHECKING:
    import optuna

# A multistep schedule picked for a recipe that has no milestones would never drop: give it these (fractions of the
# epochs), recorded in the trial's params like every other change.
DEFAULT_MILESTONES = (0.5, 0.75)

# Sampler and pruner settings (Optuna 5 changed TPE defaults: everything relied on is set here).
TPE_STARTUP_TRIALS = 4  # random trials before TPE models the results (a 6-trial sweep: 4 random, 2 guided)
PRUNE_AFTER_COMPLETE = 2  # MedianPruner n_startup_trials: complete trials before any pruning
PRUNE_WARMUP_EPOCHS = 1  # MedianPruner n_warmup_steps; steps are 1-based epochs, so the first decision is at epoch 1
HEARTBEAT_S = 20  # a running trial writes a heartbeat this often
GRACE_S = 120  # no heartbeat for this long: the trial's process is gone, the trial is failed
DEFAULT_TRIALS = 6

_STUDY_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, tuple):
        return ",".join(_fmt(x) for x in v)
    return str(v)


def check_space(
    space: Space, recipe: Recipe, sets: dict[str, object] | None = None, min_size: int = MIN_INPUT_SIZE
) -> dict[str, str]:
    """Each dimension's resolved range as text (for the parent run's params); empty or invalid -> HarnessError.
    `min_size`: the variant's smallest input (`Variant.min_input_size`)."""
    sets = sets or {}
    out: dict[str, str] = {}
    for dim in space.dims:
        where = f"search space {space.name!r}: {dim.key}"
        if dim.key in sets and not (isinstance(dim, FloatRange) and dim.relative):
            raise HarnessError(
                f"{where} is tuned by the space, so --set {dim.key} would be overridden; drop it "
                "or choose another --space"
            )
        if isinstance(dim, FloatRange):
            low, high = dim.bounds(recipe)
            base = f" (the recipe's {dim.key} is {_fmt(getattr(recipe, dim.key))})" if dim.relative else ""
            if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
                raise HarnessError(f"{where} range [{_fmt(low)}, {_fmt(high)}] is empty{base}")
            if dim.log and low <= 0:
                raise HarnessError(f"{where} log range [{_fmt(low)}, {_fmt(high)}] needs a positive low end{base}")
            for value in (low, high):
                _check_value(where, recipe, dim.key, value, min_size)
            out[dim.key] = f"[{_fmt(low)}, {_fmt(high)}]" + (" log" if dim.log else "")
        else:
            if not dim.choices:
                raise HarnessError(f"{where} has no choices")
            for value in dim.choices:
                _check_value(where, recipe, dim.key, value, min_size)
            out[dim.key] = "{" + ", ".join(map(str, dim.choices)) + "}"
    if space.scale_lr_with_batch:
        out["lr_scale_batch"] = f"lr scales linearly from batch {recipe.lr_scale_batch or recipe.batch_size}"
    return out


def _check_value(where: str, recipe: Recipe, key: str, value: object, min_size: int) -> None:
    if key not in settable_keys():
        raise HarnessError(f"{where} is not a settable recipe field")
    try:
        parse_set([f"{key}={value}"])  # the field's own type and Literal choices
        validate_recipe(replace(recipe, **{key: value}), min_size)
    except HarnessError as e:
        raise HarnessError(f"{where} = {_fmt(value)} is invalid: {e}") from None


def sample(trial: optuna.Trial, space: Space, recipe: Recipe) -> dict[str, object]:
    """The trial's recipe changes: sampled values plus what they imply (milestones, lr scaling)."""
    changes: dict[str, object] = {}
    for dim in space.dims:
        if isinstance(dim, FloatRange):
            low, high = dim.bounds(recipe)
            changes[dim.key] = trial.suggest_float(dim.key, low, high, log=dim.log)
        else:
            changes[dim.key] = trial.suggest_categorical(dim.key, list(dim.choices))
    if changes.get("schedule") == "multistep" and not recipe.milestones:
        changes["milestones"] = DEFAULT_MILESTONES
    if space.scale_lr_with_batch and recipe.lr_scale_batch is None:
        changes["lr_scale_batch"] = recipe.batch_size
    return changes


# --- storage and study --------------------------------------------------------------------------------------------


def storage_path(tracking_uri: str) -> Path:
    return store.optuna_path(tracking_uri)


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _storage(path: Path, on_stale=None):
    import optuna

    _quiet_optuna()
    path.parent.mkdir(parents=True, exist_ok=True)
    # two first sweeps beside a fresh store: one creates the tables, the other waits (optuna.db.lock)
    with locks.hold(path.with_name(path.name + ".lock"), f"the Optuna storage {path}", wait=True, on_wait=""):
        return optuna.storages.RDBStorage(
            f"sqlite:///{path}",
            engine_kwargs={"connect_args": {"timeout": 30}},
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
            heartbeat_stale_trial_callback=on_stale,
        )


def open_storage(url: str | None, uri: str, on_stale=None):
    """`--storage`: None -> `optuna.db` beside the MLflow store (`_storage`); `journal:PATH` -> a journal file
    (Optuna's JournalFileBackend: appends under a file lock, the storage Optuna advises for several processes
    without a database server; no heartbeats, so a dead worker's trial is failed by `fail_dead_trials`); anything
    else -> an RDB URL (a database server for workers on several hosts), with heartbeats."""
    import optuna

    if url is None:
        return _storage(storage_path(uri), on_stale)
    _quiet_optuna()
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:")).expanduser().resolve()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HarnessError(f"--storage {url}: cannot create {path.parent}: {e.strerror or e}") from None
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    try:
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S, heartbeat_stale_trial_callback=on_stale
        )
    except Exception as e:  # noqa: BLE001 - a bad URL, a missing driver, a database that does not answer
        raise HarnessError(f"--storage {url}: {str(e).splitlines()[0]}") from None


def storage_label(url: str | None, uri: str) -> str:
    return url or str(storage_path(uri))


def build_sampler(seed: int, parallel: bool = False):
    import optuna

    # multivariate: lr and weight decay interact. constant_liar: with several workers on one study, a trial still
    # running counts as a bad result to the others, so that they do not sample next to it (Optuna's advice for
    # distributed TPE); one process (n_jobs=1) keeps the sampler it always had
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=TPE_STARTUP_TRIALS, multivariate=True, constant_liar=parallel, group=False
    )


def build_pruner(name: str):
    import optuna

    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=PRUNE_AFTER_COMPLETE, n_warmup_steps=PRUNE_WARMUP_EPOCHS, interval_steps=1, n_min_trials=1
        )
    raise HarnessError(f"unknown pruner {name!r}; known: median, none")


def _load_existing(storage, study_name: str):
    import optuna

    if study_name not in optuna.get_all_study_names(storage):
        return None
    return optuna.load_study(study_name=study_name, storage=storage)


def best_params(
    study_name: str, tracking_uri: str | None, variant: str | None = None, storage_url: str | None = None
) -> dict[str, object]:
    """The best complete trial's recipe changes (sampled, implied and the sweep's --set), typed for `--set`.

    Not the sweep's --epochs or --limit-*: a full run keeps its profile's epochs.
    """
    uri = tracking_uri or store.default_uri()
    path = storage_path(uri)
    if storage_url is None and not path.is_file():
        raise HarnessError(f"no sweep study {study_name!r}: no Optuna storage at {path} (run `harness sweep` first)")
    import optuna

    storage = open_storage(storage_url, uri)
    names = optuna.get_all_study_names(storage)
    if study_name not in names:
        raise HarnessError(
            f"unknown sweep study {study_name!r}; {storage_label(storage_url, uri)} has: "
            f"{', '.join(sorted(names)) or 'none'}"
        )
    study = optuna.load_study(study_name=study_name, storage=storage)
    tuned = study.user_attrs.get("variant")
    if variant is not None and tuned is not None and tuned != variant:
        raise HarnessError(f"sweep study {study_name!r} tuned {tuned}, not {variant}")
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise HarnessError(f"sweep study {study_name!r} has no complete trial yet")
    return _typed(study.best_trial.user_attrs.get("changes") or study.best_trial.params)


def _typed(changes: dict[str, object]) -> dict[str, object]:
    """JSON from the study storage -> recipe types (lists back to tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}


def _jsonable(changes: dict[str, object]) -> dict[str, object]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}


# --- the command ----------------------------------------------------------------------------------------------------


class TrialFailed(Exception):
    """A trial's training failed (e.g. diverged); recorded as failed, the sweep goes on."""


def sweep_command(a: SweepRequest, worker_options: Sequence[str] = ()) -> int:
    """`harness sweep`: run `a.trials` trials into the study, record the best on the parent run, print a summary.

    `--jobs N`: this process opens the study and the parent run, starts N-1 worker processes (`worker_options`:
    the command line options they repeat) on the same study and parent, runs its own share of the trials, waits for
    them, then records and prints the whole study. Each worker seeds its own sampler; pruning compares trials of
    every worker (the median pruner reads the shared storage)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise HarnessError("sweeps run in one process: launch `harness sweep` without torchrun")
    if a.pruner not in PRUNERS:
        raise HarnessError(f"unknown pruner {a.pruner!r}; known: {', '.join(PRUNERS)}")
    space = get_space(a.space)
    sets = dict(a.sets)
    uri = a.uri
    memory.keep_freed_memory()
    d = distributed.init(a.device)
    ((variant, base),) = runner.configs(a, d)
    ranges = check_space(space, base.recipe, sets, variant.min_input_size)
    study_name = a.study_name or f"{variant.name}-{base.profile}-{space.name}"
    if not _STUDY_NAME.match(study_name):
        raise HarnessError(f"study name {study_name!r}: use letters, digits, '_', '.' and '-' only")
    pruner = build_pruner(a.pruner)
    load(data_spec(base), "center")  # a bad --data fails here, before anything is recorded
    meta = {
        "variant": variant.name,
        "profile": base.profile,
        "dataset": base.dataset,
        "dataset_name": base.dataset_name,
        "data_dir": str(base.data_dir),
        "space": space.name,
        "epochs": base.recipe.epochs,
        "limit_train": base.limit_train,
        "limit_val": base.limit_val,
        "sets": json.dumps(_jsonable(sets), sort_keys=True),
    }

    import optuna

    exp_id = tracking.experiment_id(uri, experiment_name(base))
    storage = open_storage(a.storage, uri, on_stale=_on_stale(uri, exp_id))
    existing = _load_existing(storage, study_name)
    if existing is not None:
        _check_same_study(existing, meta)
        fail_dead_trials(existing, storage, uri, exp_id)
        optuna.storages.fail_stale_trials(existing)
    n_before = len(existing.trials) if existing is not None else 0
    # a continued study draws new random trials, not the first ones again; each worker its own draws
    sampler_seed = a.seed + n_before + 7919 * a.worker_index
    parallel = a.jobs > 1 or a.storage is not None or a.parent_run_id is not None
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        sampler=build_sampler(sampler_seed, parallel),
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,
    )
    if existing is None and a.parent_run_id is None:
        for k, v in meta.items():
            study.set_user_attr(k, v)
    if a.parent_run_id is not None:  # a worker of a `--jobs` sweep: trials only, the parent records the study
        _optimize(study, _objective(space, base, a, d, exp_id, a.parent_run_id, study_name), a.trials, a.timeout)
        return 0

    parent = tracking.Tracker.create(
        uri,
        exp_id,
        f"sweep {study_name}",
        {
            schema.TAG_KIND: "sweep",
            schema.TAG_SWEEP: study_name,
            schema.TAG_VARIANT: variant.name,
            schema.TAG_PAPER: variant.paper,
            schema.TAG_PROFILE: base.profile,
            schema.TAG_DATASET: base.dataset,
            schema.TAG_DATASET_NAME: base.dataset_name,
            schema.TAG_SWEEP_SPACE: space.name,
            schema.TAG_GIT: tracking.git_commit(),
            schema.TAG_DEVICE: base.device,
        }
        | tracking.owner_tags(),
    )
    parent.log_params(
        {
            "space": space.name,
            "space_about": space.about,
            **{f"space.{k}": v for k, v in ranges.items()},
            "trials": str(a.trials),
            "timeout": str(a.timeout),
            "seed": str(a.seed),
            "sampler": "TPESampler",
            "sampler_seed": str(sampler_seed),
            "tpe_startup_trials": str(TPE_STARTUP_TRIALS),
            "tpe_multivariate": "True",
            "pruner": a.pruner,
            "prune_after_complete": str(PRUNE_AFTER_COMPLETE),
            "prune_warmup_epochs": str(PRUNE_WARMUP_EPOCHS),
            "epochs": str(base.recipe.epochs),
            "limit_train": str(base.limit_train),
            "limit_val": str(base.limit_val),
            "sets": meta["sets"],
            "trials_before": str(n_before),
            "optuna_storage": storage_label(a.storage, uri),
            "jobs": str(a.jobs),
            "tpe_constant_liar": str(parallel),
        }
    )
    print(
        f"sweep {study_name}: {a.trials} trial(s) of {variant.name} on {base.dataset} ({base.profile}), space "
        f"{space.name!r}: {', '.join(f'{k} {v}' for k, v in ranges.items())}"
        + (f"; continuing ({n_before} trials so far)" if n_before else ""),
        file=sys.stderr,
    )

    objective = _objective(space, base, a, d, exp_id, parent.run_id, study_name)
    shares = [a.trials // a.jobs + (i < a.trials % a.jobs) for i in range(a.jobs)]
    started: list[tuple[subprocess.Popen, Path]] = []
    try:
        started = _start_workers(a, shares[1:], worker_options, study_name, parent.run_id)
        _optimize(study, objective, shares[0], a.timeout)
        failed = _wait_workers(started)
        if failed:
            print(f"sweep {study_name}: {failed} worker(s) failed: see their logs", file=sys.stderr)
    except BaseException as e:
        for proc, _ in started:
            workers.stop(proc)
        _close_children(uri, exp_id, parent.run_id)
        parent.finish("KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        raise
    optuna.storages.fail_stale_trials(study)
    _close_children(uri, exp_id, parent.run_id)
    best = _record(study, parent)
    parent.finish("FINISHED")
    print()
    print(summary_table(study, first_new=n_before))
    print(
        f"\nMLflow: parent run {parent.run_id} in experiment {experiment_name(base)!r} ({uri}); "
        f"Optuna study {study_name!r} in {storage_label(a.storage, uri)}"
    )
    if best is None:
        print(f"No complete trial in study {study_name!r}: nothing to re-run.")
        return 1
    again = [
        f"--profile {a.profile}" if a.profile else "",
        f"--data {a.data}" if a.data else "",
        f"--dataset {a.dataset}" if a.dataset else "",
        f"--tracking-uri {a.tracking_uri}" if a.tracking_uri else "",
        f"--sweep-storage {a.storage}" if a.storage else "",
    ]
    print(
        f"Re-run the best configuration in full: python -m harness run {variant.name} --from-sweep {study_name} "
        + " ".join(x for x in again if x)
    )
    return 0


def _optimize(study: optuna.Study, objective, trials: int, timeout: float | None) -> None:
    if trials > 0:
        study.optimize(
            objective,
            n_trials=trials,
            timeout=timeout,
            n_jobs=1,
            catch=(TrialFailed,),
            callbacks=[_print_trial],
            gc_after_trial=True,
        )


def _start_workers(
    a: SweepRequest, shares: Sequence[int], options: Sequence[str], study_name: str, parent_id: str
) -> list[tuple[subprocess.Popen, Path]]:
    """Worker i (1..N-1): `harness sweep NAME` with the same options, its share of the trials, the study's name,
    its index (its sampler seed) and the parent run; its output in a log beside the store."""
    logs = workers.log_folder(a.uri, parent_id)
    started = []
    for i, share in enumerate(shares, start=1):
        if share == 0:
            continue
        argv = [sys.executable, "-m", "harness", "sweep", a.name, *options, "--seed", str(a.seed)]
        argv += ["--trials", str(share), "--study-name", study_name, "--worker-index", str(i)]
        argv += ["--parent-run-id", parent_id]
        log = logs / f"sweep-worker-{i}.log"
        proc = workers.spawn(argv, log)  # ends with this process
        print(f"sweep worker {i}: {share} trial(s), log {log}", file=sys.stderr, flush=True)
        started.append((proc, log))
    return started


def _wait_workers(started: Sequence[tuple[subprocess.Popen, Path]]) -> int:
    """Wait for every worker; how many exited with an error."""
    return sum(proc.wait() != 0 for proc, _ in started)


def _check_same_study(study: optuna.Study, meta: dict[str, object]) -> None:
    """A study continues only with the same variant, data, space, epochs and fixed changes: else trials compare
    unlike things."""
    old = study.user_attrs
    for key, value in meta.items():
        if key in old and old[key] != value:
            raise HarnessError(
                f"study {study.study_name!r} was made with {key} = {old[key]!r}, this command has "
                f"{value!r}: use another --study-name"
            )


def _objective(
    space: Space, base: RunConfig, req: SweepRequest, d: Dist, exp_id: str, parent_id: str, study_name: str
) -> Callable[[optuna.Trial], float]:
    import optuna

    uri = req.uri

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr(OWNER_ATTR, locks.owner().text())  # who runs it: `fail_dead_trials` checks this
        changes = {**req.sets, **sample(trial, space, base.recipe)}
        trial.set_user_attr("changes", _jsonable(changes))
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

    return objective


def _on_stale(uri: str, exp_id: str):
    """Optuna failed a trial whose process died: close its MLflow run (and that dead sweep's parent) too."""

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        _close_dead_trial(
            uri, exp_id, study.study_name, trial.number, f"had no heartbeat for {GRACE_S} s (its process stopped)"
        )

    return callback


# --- trials whose process died --------------------------------------------------------------------------------------

OWNER_ATTR = "owner"  # trial user attribute: "PID HOST START" of the process running it (harness.locks.Owner)


def trial_checkpoint(uri: str, study_name: str, number: int) -> Path:
    """A trial's per-epoch checkpoint, deleted when the trial ends (or, if its process dies, by the next sweep)."""
    return store.local_root(uri) / "checkpoints" / f"sweep-{study_name}-trial-{number}.pt"


def fail_dead_trials(study: optuna.Study, storage, uri: str, exp_id: str) -> list[int]:
    """RUNNING trials whose process is gone (their owner PID no longer runs on this host): FAIL in Optuna at once,
    not GRACE_S after their last heartbeat, then `_close_dead_trial`. Trials of live processes (a second worker),
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
        _close_dead_trial(uri, exp_id, study.study_name, t.number, f"was left running by {o.describe()}, now gone")
    sweeps = tracking.client(uri).search_runs(  # a sweep killed between trials has no trial to close it by
        [exp_id],
        filter_string=f"tags.{schema.TAG_SWEEP} = '{study.study_name}' and tags.`{schema.TAG_KIND}` = 'sweep' "
        "and attributes.status = 'RUNNING'",
    )
    for r in sweeps:
        tracking.close_orphan(uri, r.info.run_id)
    return failed


def _close_dead_trial(uri: str, exp_id: str, study_name: str, number: int, why: str) -> None:
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


def _close_children(uri: str, exp_id: str, parent_id: str) -> None:
    """Trial runs of this sweep left without a state (interrupted): failed, and KILLED if still RUNNING."""
    runs = tracking.client(uri).search_runs([exp_id], filter_string=f"tags.`{schema.TAG_PARENT_RUN}` = '{parent_id}'")
    for r in runs:
        if schema.TAG_TRIAL_STATE not in r.data.tags:
            run = tracking.Tracker(uri, r.info.run_id)
            run.set_tags({schema.TAG_TRIAL_STATE: "failed"})
            if r.info.status == "RUNNING":
                run.finish("KILLED")


def _print_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    print(f"trial {trial.number}: {_state(trial)} {_value(trial)} {_params(trial)}", file=sys.stderr)


def _state(trial: optuna.trial.FrozenTrial) -> str:
    return {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}.get(
        trial.state.name, trial.state.name.lower()
    )


def _value(trial: optuna.trial.FrozenTrial) -> str:
    """The objective of a complete trial; a pruned or failed one's last per-epoch val_top1, as VALUE@eEPOCH."""
    if trial.value is not None and _state(trial) == "complete":
        return f"{trial.value:.2f}"
    if trial.intermediate_values:
        step = max(trial.intermediate_values)
        return f"{trial.intermediate_values[step]:.2f}@e{step}"
    return "-"


def _params(trial: optuna.trial.FrozenTrial) -> str:
    changes = _typed(trial.user_attrs.get("changes") or trial.params)
    return " ".join(f"{k}={_fmt(v)}" for k, v in changes.items())


def _counts(study: optuna.Study) -> dict[str, int]:
    states = [_state(t) for t in study.get_trials(deepcopy=False)]
    return {
        schema.N_TRIALS: len(states),
        schema.N_COMPLETE: states.count("complete"),
        schema.N_PRUNED: states.count("pruned"),
        schema.N_FAILED: states.count("failed"),
    }


def _record(study: optuna.Study, parent: tracking.Tracker) -> optuna.trial.FrozenTrial | None:
    """Counts over the whole study, the best trial's params and value, and the two figures, on the parent run."""
    parent.log_metrics({k: float(v) for k, v in _counts(study).items()})
    complete = [t for t in study.get_trials(deepcopy=False) if _state(t) == "complete"]
    best = study.best_trial if complete else None
    if best is not None:
        changes = _typed(best.user_attrs.get("changes") or best.params)
        parent.log_params(
            {schema.BEST_PREFIX + k: _fmt(v) if isinstance(v, tuple) else str(v) for k, v in changes.items()}
        )
        parent.log_metrics({schema.BEST_VAL_TOP1: float(best.value), schema.BEST_TRIAL: float(best.number)})
        parent.set_tags(
            {schema.BEST_TRIAL: str(best.number), schema.TAG_BEST_RUN_ID: str(best.user_attrs.get("mlflow_run_id", ""))}
        )
    notes = []
    for artifact, draw in (("optimization_history.png", _history_figure), ("param_importances.png", _importances)):
        try:
            if len(complete) < 2:
                raise ValueError(f"needs 2 complete trials, the study has {len(complete)}")
            parent.log_figure(draw(study), artifact)
        except Exception as e:  # noqa: BLE001 - a figure must not lose the sweep's results
            notes.append(f"{artifact}: not drawn ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    if notes:
        parent.set_tags({schema.TAG_FIGURES_NOTE: "; ".join(notes)})
        for n in notes:
            print(f"note: {n}", file=sys.stderr)
    return best


def _optuna_figure(plot, study: optuna.Study):
    """Draw one of optuna's matplotlib plots off screen (Agg) and return its closed Figure, 8 x 4.5 in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():  # few trials: optuna warns that importances are (near) equal; the plot says so
        warnings.simplefilter("ignore")
        ax = plot(study, target_name="val top-1 (%)")
    fig = ax.figure
    fig.set_size_inches(8, 4.5)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _history_figure(study: optuna.Study):
    from optuna.visualization.matplotlib import plot_optimization_history

    return _optuna_figure(plot_optimization_history, study)


def _importances(study: optuna.Study):
    from optuna.visualization.matplotlib import plot_param_importances

    return _optuna_figure(plot_param_importances, study)


def summary_table(study: optuna.Study, first_new: int = 0) -> str:
    """One line per trial of the whole study (* = run by this command), then the best."""
    head = f"  {'trial':>5} {'state':9} {'val_top1':>10} {'min':>5}  params"
    lines = [f"study {study.study_name}", head, "  " + "-" * (len(head) + 30)]
    for t in study.get_trials(deepcopy=False):
        mark = "*" if t.number >= first_new else " "
        minutes = "-" if "seconds" not in t.user_attrs else f"{t.user_attrs['seconds'] / 60:.1f}"
        lines.append(f"{mark} {t.number:>5} {_state(t):9} {_value(t):>10} {minutes:>5}  {_params(t)}")
    c = _counts(study)
    running = c[schema.N_TRIALS] - c[schema.N_COMPLETE] - c[schema.N_PRUNED] - c[schema.N_FAILED]
    lines.append(
        f"\n{c[schema.N_TRIALS]} trials: {c[schema.N_COMPLETE]} complete, {c[schema.N_PRUNED]} pruned, "
        f"{c[schema.N_FAILED]} failed" + (f", {running} running (another process)" if running else "")
    )
    complete = [t for t in study.get_trials(deepcopy=False) if _state(t) == "complete"]
    if complete:
        b = study.best_trial
        lines.append(f"best: trial {b.number}, val_top1 {b.value:.2f} ({_params(b)})")
    return "\n".join(lines)

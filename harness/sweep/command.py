"""`harness sweep`, in steps: resolve and check the search (`_plan`), open or continue the study (`_open_study`),
open the parent run (`_open_parent`), run the trials here and in `--jobs` workers (`_run_trials`), record the study
on the parent run (`_record`), print the summary (`_report`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness import distributed, memory, runner, schema, tracking, workers
from harness.config import RunConfig
from harness.distributed import Dist
from harness.errors import HarnessError
from harness.request import PRUNERS, SweepRequest
from harness.runs.common import data_spec, experiment_name, load
from harness.spaces import Space, get_space
from harness.sweep import cleanup, studies, summary, trials
from harness.sweep.searchspace import check_space
from variants import Variant

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Plan:
    """What the steps of one sweep share: the request, the resolved base run and space, the study's name, pruner
    and metadata (what a continued study must match), the MLflow experiment."""

    req: SweepRequest
    d: Dist
    variant: Variant
    base: RunConfig
    space: Space
    ranges: dict[str, str]
    study_name: str
    pruner: object
    meta: dict[str, object]
    exp_id: str


def sweep_command(a: SweepRequest, worker_options: Sequence[str] = ()) -> int:
    """`harness sweep`: run `a.trials` trials into the study, record the best on the parent run, print a summary.

    `--jobs N`: this process opens the study and the parent run, starts N-1 worker processes (`worker_options`:
    the command line options they repeat) on the same study and parent, runs its own share of the trials, waits for
    them, then records and prints the whole study. Each worker seeds its own sampler; pruning compares trials of
    every worker (the median pruner reads the shared storage)."""
    p = _plan(a)
    study, n_before, sampler_seed = _open_study(p)
    if a.parent_run_id is not None:  # a worker of a `--jobs` sweep: trials only, the parent records the study
        objective = trials.objective(p.space, p.base, a, p.d, p.exp_id, a.parent_run_id, p.study_name)
        _optimize(study, objective, a.trials, a.timeout)
        return 0
    parent = _open_parent(p, n_before, sampler_seed)
    _run_trials(p, study, parent, worker_options)
    best = _record(p, study, parent)
    return _report(p, study, parent.run_id, best, n_before)


def _plan(a: SweepRequest) -> Plan:
    """Everything checked before anything is recorded: one process, the pruner, the space against the recipe, the
    study's name, the data."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise HarnessError("sweeps run in one process: launch `harness sweep` without torchrun")
    if a.pruner not in PRUNERS:
        raise HarnessError(f"unknown pruner {a.pruner!r}; known: {', '.join(PRUNERS)}")
    space = get_space(a.space)
    sets = dict(a.sets)
    memory.keep_freed_memory()
    d = distributed.init(a.device)
    ((variant, base),) = runner.configs(a, d)
    ranges = check_space(space, base.recipe, sets, variant.min_input_size)
    study_name = a.study_name or f"{variant.name}-{base.profile}-{space.name}"
    if not studies.STUDY_NAME.match(study_name):
        raise HarnessError(f"study name {study_name!r}: use letters, digits, '_', '.' and '-' only")
    pruner = studies.build_pruner(a.pruner)
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
        "sets": json.dumps(studies.jsonable(sets), sort_keys=True),
    }
    exp_id = tracking.experiment_id(a.uri, experiment_name(base))
    return Plan(a, d, variant, base, space, ranges, study_name, pruner, meta, exp_id)


def _parallel(a: SweepRequest) -> bool:
    """Several processes may share the study: TPE's constant_liar (`studies.build_sampler`)."""
    return a.jobs > 1 or a.storage is not None or a.parent_run_id is not None


def _open_study(p: Plan) -> tuple[optuna.Study, int, int]:
    """The study, new or continued (after checking it is the same search and failing its dead trials); the number
    of trials it had before and this process's sampler seed."""
    import optuna

    a, uri = p.req, p.req.uri
    storage = studies.open_storage(a.storage, uri, on_stale=cleanup.on_stale(uri, p.exp_id))
    existing = studies.load_existing(storage, p.study_name)
    if existing is not None:
        studies.check_same_study(existing, p.meta)
        cleanup.fail_dead_trials(existing, storage, uri, p.exp_id)
        optuna.storages.fail_stale_trials(existing)
    n_before = len(existing.trials) if existing is not None else 0
    # a continued study draws new random trials, not the first ones again; each worker its own draws
    sampler_seed = a.seed + n_before + 7919 * a.worker_index
    study = optuna.create_study(
        storage=storage,
        study_name=p.study_name,
        sampler=studies.build_sampler(sampler_seed, _parallel(a)),
        pruner=p.pruner,
        direction="maximize",
        load_if_exists=True,
    )
    if existing is None and a.parent_run_id is None:
        for k, v in p.meta.items():
            study.set_user_attr(k, v)
    return study, n_before, sampler_seed


def _open_parent(p: Plan, n_before: int, sampler_seed: int) -> tracking.Tracker:
    """The sweep's parent run: what was searched, how (sampler, pruner, storage) and from where (trials before)."""
    a, base, space = p.req, p.base, p.space
    tags = {
        schema.TAG_KIND: "sweep",
        schema.TAG_SWEEP: p.study_name,
        schema.TAG_VARIANT: p.variant.name,
        schema.TAG_PAPER: p.variant.paper,
        schema.TAG_PROFILE: base.profile,
        schema.TAG_DATASET: base.dataset,
        schema.TAG_DATASET_NAME: base.dataset_name,
        schema.TAG_SWEEP_SPACE: space.name,
        schema.TAG_GIT: tracking.git_commit(),
        schema.TAG_DEVICE: base.device,
    }
    parent = tracking.Tracker.create(a.uri, p.exp_id, f"sweep {p.study_name}", tags | tracking.owner_tags())
    parent.log_params(
        {
            "space": space.name,
            "space_about": space.about,
            **{f"space.{k}": v for k, v in p.ranges.items()},
            "trials": str(a.trials),
            "timeout": str(a.timeout),
            "seed": str(a.seed),
            "sampler": "TPESampler",
            "sampler_seed": str(sampler_seed),
            "tpe_startup_trials": str(studies.TPE_STARTUP_TRIALS),
            "tpe_multivariate": "True",
            "pruner": a.pruner,
            "prune_after_complete": str(studies.PRUNE_AFTER_COMPLETE),
            "prune_warmup_epochs": str(studies.PRUNE_WARMUP_EPOCHS),
            "epochs": str(base.recipe.epochs),
            "limit_train": str(base.limit_train),
            "limit_val": str(base.limit_val),
            "sets": p.meta["sets"],
            "trials_before": str(n_before),
            "optuna_storage": studies.storage_label(a.storage, a.uri),
            "jobs": str(a.jobs),
            "tpe_constant_liar": str(_parallel(a)),
        }
    )
    print(
        f"sweep {p.study_name}: {a.trials} trial(s) of {p.variant.name} on {base.dataset} ({base.profile}), space "
        f"{space.name!r}: {', '.join(f'{k} {v}' for k, v in p.ranges.items())}"
        + (f"; continuing ({n_before} trials so far)" if n_before else ""),
        file=sys.stderr,
    )
    return parent


def _run_trials(p: Plan, study: optuna.Study, parent: tracking.Tracker, worker_options: Sequence[str]) -> None:
    """This process's share of the trials and the workers' (`--jobs`); on an interrupt or error the workers are
    stopped, the trial runs closed and the parent run closed KILLED or FAILED."""
    a = p.req
    objective = trials.objective(p.space, p.base, a, p.d, p.exp_id, parent.run_id, p.study_name)
    shares = [a.trials // a.jobs + (i < a.trials % a.jobs) for i in range(a.jobs)]
    started: list[tuple[subprocess.Popen, Path]] = []
    try:
        started = _start_workers(a, shares[1:], worker_options, p.study_name, parent.run_id)
        _optimize(study, objective, shares[0], a.timeout)
        failed = _wait_workers(started)
        if failed:
            print(f"sweep {p.study_name}: {failed} worker(s) failed: see their logs", file=sys.stderr)
    except BaseException as e:
        for proc, _ in started:
            workers.stop(proc)
        cleanup.close_children(a.uri, p.exp_id, parent.run_id)
        parent.finish("KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        raise


def _optimize(study: optuna.Study, objective, n_trials: int, timeout: float | None) -> None:
    if n_trials > 0:
        study.optimize(
            objective,
            n_trials=n_trials,
            timeout=timeout,
            n_jobs=1,
            catch=(trials.TrialFailed,),
            callbacks=[summary.print_trial],
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


def _record(p: Plan, study: optuna.Study, parent: tracking.Tracker) -> optuna.trial.FrozenTrial | None:
    """Trials left by a dead process failed, runs left without a state closed, the whole study recorded on the
    parent run, which is closed FINISHED; the best trial (None if no trial completed)."""
    import optuna

    optuna.storages.fail_stale_trials(study)
    cleanup.close_children(p.req.uri, p.exp_id, parent.run_id)
    best = summary.record(study, parent)
    parent.finish("FINISHED")
    return best


def _report(p: Plan, study: optuna.Study, parent_id: str, best: optuna.trial.FrozenTrial | None, n_before: int) -> int:
    """The summary table, where the study and its runs are, and how to re-run the best configuration; 1 if no
    trial completed."""
    a, uri = p.req, p.req.uri
    print()
    print(summary.summary_table(study, first_new=n_before))
    print(
        f"\nMLflow: parent run {parent_id} in experiment {experiment_name(p.base)!r} ({uri}); "
        f"Optuna study {p.study_name!r} in {studies.storage_label(a.storage, uri)}"
    )
    if best is None:
        print(f"No complete trial in study {p.study_name!r}: nothing to re-run.")
        return 1
    again = [
        f"--profile {a.profile}" if a.profile else "",
        f"--data {a.data}" if a.data else "",
        f"--dataset {a.dataset}" if a.dataset else "",
        f"--tracking-uri {a.tracking_uri}" if a.tracking_uri else "",
        f"--sweep-storage {a.storage}" if a.storage else "",
    ]
    print(
        f"Re-run the best configuration in full: python -m harness run {p.variant.name} --from-sweep {p.study_name} "
        + " ".join(x for x in again if x)
    )
    return 0

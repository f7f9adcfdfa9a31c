"""The study and where it lives: the storage (`optuna.db` beside the MLflow store, a journal file or an RDB URL),
the seeded TPE sampler and the median pruner, an existing study loaded and checked to be the same search, and the
best trial's changes read back for `run --from-sweep` (`best_params`)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from harness import locks, mlruns
from harness.errors import HarnessError

if TYPE_CHECKING:
    import optuna

# Sampler and pruner settings (Optuna 5 changed TPE defaults: everything relied on is set here).
TPE_STARTUP_TRIALS = 4  # random trials before TPE models the results (a 6-trial sweep: 4 random, 2 guided)
PRUNE_AFTER_COMPLETE = 2  # MedianPruner n_startup_trials: complete trials before any pruning
PRUNE_WARMUP_EPOCHS = 1  # MedianPruner n_warmup_steps; steps are 1-based epochs, so the first decision is at epoch 1
HEARTBEAT_S = 20  # a running trial writes a heartbeat this often
GRACE_S = 120  # no heartbeat for this long: the trial's process is gone, the trial is failed

STUDY_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def storage_path(tracking_uri: str) -> Path:
    return mlruns.optuna_path(tracking_uri)


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
    without a database server; no heartbeats, so a dead worker's trial is failed by `cleanup.fail_dead_trials`);
    anything else -> an RDB URL (a database server for workers on several hosts), with heartbeats."""
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


def load_existing(storage, study_name: str):
    import optuna

    if study_name not in optuna.get_all_study_names(storage):
        return None
    return optuna.load_study(study_name=study_name, storage=storage)


def check_same_study(study: optuna.Study, meta: dict[str, object]) -> None:
    """A study continues only with the same variant, data, space, epochs and fixed changes: else trials compare
    unlike things."""
    old = study.user_attrs
    for key, value in meta.items():
        if key in old and old[key] != value:
            raise HarnessError(
                f"study {study.study_name!r} was made with {key} = {old[key]!r}, this command has "
                f"{value!r}: use another --study-name"
            )


def best_params(
    study_name: str, tracking_uri: str | None, variant: str | None = None, storage_url: str | None = None
) -> dict[str, object]:
    """The best complete trial's recipe changes (sampled, implied and the sweep's --set), typed for `--set`.

    Not the sweep's --epochs or --limit-*: a full run keeps its profile's epochs.
    """
    uri = tracking_uri or mlruns.default_uri()
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
    return typed(study.best_trial.user_attrs.get("changes") or study.best_trial.params)


def typed(changes: dict[str, object]) -> dict[str, object]:
    """JSON from the study storage -> recipe types (lists back to tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}


def jsonable(changes: dict[str, object]) -> dict[str, object]:
    """Recipe types -> JSON for the study storage (tuples to lists); `typed` reverses it."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}

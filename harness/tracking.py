"""MLflow: the only module that writes to it. Store set-up, runs, params, metrics, artifacts.

Where the store lives (default `./mlruns/mlflow.db`, artifacts beside it) is `harness.mlruns`'s concern.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from harness import interrupts, locks, mlruns, schema
from harness.errors import HarnessError

_INITIALISED: set[str] = set()
T = TypeVar("T")


def client(uri: str):
    """Initialise the store once per process (before any parallel writer: mlflow issue #19943) and return a client."""
    import mlflow
    from mlflow.tracking import MlflowClient

    if uri not in _INITIALISED:
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # schema set-up chatter
        logging.getLogger("alembic").setLevel(logging.WARNING)
        check_store(uri)
        mlflow.set_tracking_uri(uri)
        try:
            with _setup_lock(uri):  # two first commands in a fresh store: one creates the schema, the other waits
                MlflowClient(uri).search_experiments(max_results=1)
        except HarnessError:
            raise
        except Exception as e:  # noqa: BLE001 - any store failure is one line for the user
            raise HarnessError(f"cannot open the MLflow store {uri}: {str(e).splitlines()[0]}") from None
        _INITIALISED.add(uri)
    return _Uninterrupted(MlflowClient(uri))


class _Uninterrupted:
    """An MlflowClient whose calls a SIGTERM does not cut in half (`harness.interrupts`)."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        value = getattr(self._inner, name)
        if not callable(value):
            return value

        def call(*args: object, **kwargs: object) -> object:
            with interrupts.uninterrupted():
                return value(*args, **kwargs)

        return call


def experiment_id(uri: str, name: str) -> str:
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    root = mlruns.store_root(uri)
    location = (root / "artifacts" / name).as_uri() if root is not None else None
    try:
        return c.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS)
    except Exception:
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


# MLflow 3's UI opens an experiment without this tag on its GenAI overview (traces, tokens); with it, on the runs table
# and charts. Set when the harness creates an experiment, and on experiments created before it was (`mark_experiment`).
EXPERIMENT_TAGS = {schema.TAG_EXPERIMENT_KIND: schema.EXPERIMENT_KIND}


def mark_experiment(uri: str, exp_id: str) -> None:
    """Tag an experiment as model training (`EXPERIMENT_TAGS`) unless it already says what it is."""
    c = client(uri)
    if schema.TAG_EXPERIMENT_KIND not in c.get_experiment(exp_id).tags:
        c.set_experiment_tag(exp_id, schema.TAG_EXPERIMENT_KIND, schema.EXPERIMENT_KIND)


@dataclass(frozen=True)
class PreviousRun:
    run_id: str
    status: str  # FINISHED, RUNNING, FAILED, KILLED
    owner: str = ""  # tag schema.TAG_OWNER: the process that writes (or wrote) it


def find_previous(uri: str, exp_id: str, config_hash: str) -> PreviousRun | None:
    """The newest variant run of the same configuration, to skip (finished) or resume (anything else)."""
    runs = client(uri).search_runs(
        [exp_id],
        filter_string=f"tags.{schema.TAG_CONFIG_HASH} = '{config_hash}' and tags.`{schema.TAG_KIND}` = 'variant'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    return PreviousRun(runs[0].info.run_id, runs[0].info.status, runs[0].data.tags.get(schema.TAG_OWNER, ""))


def running_runs(uri: str, exp_id: str, kind: str) -> list[PreviousRun]:
    """The experiment's runs of `kind` (tag harness.kind) that are RUNNING, with their owners."""
    runs = client(uri).search_runs(
        [exp_id], filter_string=f"tags.`{schema.TAG_KIND}` = '{kind}' and attributes.status = 'RUNNING'"
    )
    return [PreviousRun(r.info.run_id, r.info.status, r.data.tags.get(schema.TAG_OWNER, "")) for r in runs]


def git_commit() -> str:
    return _git("rev-parse", "--short=12", "HEAD") or "unknown"


def _git(*args: str) -> str:
    """One line of git's answer about the harness's own checkout; "" outside a checkout or without git."""
    try:
        out = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def source_tags() -> dict[str, str]:
    """MLflow's standard source tags, which its UI shows as the Source column and the run page's source and commit:
    the harness command (`harness run`; the UI shows a source name's last path part, so the whole command line, paths
    and all, is the tag `harness.command`), type LOCAL, the full git commit and branch of the harness's checkout, and
    the user."""
    import getpass

    argv = sys.argv[1:] if Path(sys.argv[0]).name in ("__main__.py", "harness") else []
    command = next((a for a in argv if not a.startswith("-")), "")
    tags = {
        schema.TAG_SOURCE_NAME: f"harness {command}".strip(),
        schema.TAG_SOURCE_TYPE: "LOCAL",
        schema.TAG_COMMAND: " ".join(["python -m harness", *argv])[:5000],
    }
    commit = _git("rev-parse", "HEAD")
    if commit:
        tags[schema.TAG_SOURCE_GIT_COMMIT] = commit
        branch = _git("rev-parse", "--abbrev-ref", "HEAD")
        if branch and branch != "HEAD":
            tags[schema.TAG_SOURCE_GIT_BRANCH] = branch
    try:
        tags[schema.TAG_USER] = getpass.getuser()
    except (KeyError, OSError):
        pass
    return tags


class Tracker:
    """One MLflow run, written through the client API (no global active-run state, so sweeps and DDP stay simple)."""

    def __init__(self, uri: str, run_id: str) -> None:
        self.uri, self.run_id = uri, run_id
        self._client = client(uri)

    @classmethod
    def create(cls, uri: str, exp_id: str, name: str, tags: dict[str, str], parent: str | None = None) -> Tracker:
        tags = machine_tags() | source_tags() | dict(tags)
        if parent:
            tags[schema.TAG_PARENT_RUN] = parent
        run = client(uri).create_run(exp_id, run_name=name, tags=tags)
        return cls(uri, run.info.run_id)

    @classmethod
    def reopen(cls, uri: str, run_id: str) -> Tracker:
        c = client(uri)
        c.update_run(run_id, status="RUNNING")
        tracker = cls(uri, run_id)
        tracker.note_machine()
        return tracker

    def note_machine(self) -> None:
        """On resume: the machine tags the run lacks, and (tag env.resumed_differs) what differs from the machine
        that started it, so that a resumed run that differs from an uninterrupted one says why it may."""
        existing = self._client.get_run(self.run_id).data.tags
        now = machine_tags()
        self.set_tags({k: v for k, v in now.items() if k not in existing})
        differs = [f"{k}={v}" for k, v in now.items() if k in existing and existing[k] != v]
        if differs:
            self.set_tags({schema.TAG_ENV_RESUMED_DIFFERS: "; ".join(differs)})

    def log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        existing = self._client.get_run(self.run_id).data.params
        new = [Param(k, str(v)[:6000]) for k, v in params.items() if k not in existing]
        for i in range(0, len(new), 100):
            self._client.log_batch(self.run_id, params=new[i : i + 100])

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self._client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        import time

        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        self._client.log_batch(self.run_id, metrics=[Metric(k, float(v), ts, step) for k, v in metrics.items()])

    def log_series(self, key: str, points: Iterable[tuple[int, float]]) -> None:
        """One metric at many steps, in one batch: (step, value) pairs (e.g. schema.TRAIN_ERR by images seen)."""
        import time

        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        batch = [Metric(key, float(v), ts, int(step)) for step, v in points]
        for i in range(0, len(batch), 1000):  # MLflow's log_batch takes at most 1,000 metrics
            self._client.log_batch(self.run_id, metrics=batch[i : i + 1000])

    def log_artifact(self, local: Path, artifact_path: str | None = None) -> None:
        self._client.log_artifact(self.run_id, str(local), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self._client.log_text(self.run_id, text, artifact_file)

    def log_figure(self, figure: object, artifact_file: str) -> None:
        self._client.log_figure(self.run_id, figure, artifact_file)

    def finish(self, status: str = "FINISHED") -> None:
        self._client.set_terminated(self.run_id, status=status)

    def metric_history(self, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self._client.get_metric_history(self.run_id, key)]


class NullTracker:
    """What ranks other than 0 get: only rank 0 logs (one MLflow run per variant whatever the world size)."""

    run_id = ""

    def __getattr__(self, name: str):
        return lambda *a, **k: None


def load_artifact(uri: str, run_id: str, path: str, load: Callable[[Path], T]) -> T:
    """`load` of one artifact of a run, downloaded into a temporary folder removed as soon as `load` returns (a
    full-width checkpoint is ~230 MB: kept, every `eval --run-id` and `analyze` left one in the temporary folder).
    A memory-mapped load stays valid after the file is removed (POSIX keeps a mapped file's data until unmapped)."""
    from mlflow.artifacts import download_artifacts

    with tempfile.TemporaryDirectory(prefix="harness-artifact-") as tmp:
        try:
            local = Path(download_artifacts(run_id=run_id, artifact_path=path, dst_path=tmp, tracking_uri=uri))
        except Exception as e:  # noqa: BLE001
            hint = (
                " (the smoke profile keeps no weights: train it with --keep-weights)"
                if path == schema.ART_CHECKPOINT
                else ""
            )
            raise HarnessError(f"run {run_id} has no artifact {path}{hint}: {str(e).splitlines()[0]}") from None
        return load(local)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str
    params: dict[str, str]
    tags: dict[str, str]


def run_info(uri: str, run_id: str) -> RunInfo:
    """One run's status, params and tags; an unknown id is a HarnessError."""
    try:
        run = client(uri).get_run(run_id)
    except HarnessError:
        raise
    except Exception:  # noqa: BLE001 - MLflow's not-found error is one line for the user
        raise HarnessError(f"no run {run_id!r} in {mlruns.display(uri)}") from None
    return RunInfo(run.info.run_id, run.info.status, dict(run.data.params), dict(run.data.tags))


def latest_finished(uri: str, variant: str) -> str:
    """The newest FINISHED variant run of `variant` in any experiment of the store (`harness analyze --variant`)."""
    c = client(uri)
    exp_ids = [e.experiment_id for e in c.search_experiments()]
    runs = (
        c.search_runs(
            exp_ids,
            filter_string=f"tags.`{schema.TAG_KIND}` = 'variant' and tags.{schema.TAG_VARIANT} = '{variant}' "
            "and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if exp_ids
        else []
    )
    if not runs:
        raise HarnessError(f"no finished run of {variant!r} in {mlruns.display(uri)}: train it with `harness run`")
    return runs[0].info.run_id


# --- owners, store set-up and what a run already holds (crash consistency) --------------------------------------------


def _setup_lock(uri: str):
    """An exclusive lock beside a SQLite store (mlflow.db.lock) while the store is opened the first time in this
    process; nothing for other stores."""
    import contextlib

    db = mlruns.sqlite_path(uri)
    if db is None:
        return contextlib.nullcontext()
    db.parent.mkdir(parents=True, exist_ok=True)
    return locks.hold(db.with_name(db.name + ".lock"), f"the MLflow store {db}", wait=True, on_wait="")


def owner_tags() -> dict[str, str]:
    """The tag that names this process as the writer of a run (set when a run is created or reopened)."""
    return {schema.TAG_OWNER: locks.owner().text()}


def owner_alive(owner_tag: str) -> bool:
    """Whether the process a run's owner tag names still runs on this host. False for runs without the tag (written
    before it existed) and for another host's runs, which cannot be checked from here: the per-configuration file
    lock (`harness.runs.decide`) is what keeps two hosts sharing a checkpoint folder apart."""
    o = locks.parse_owner(owner_tag)
    return o is not None and o.pid != locks.owner().pid and locks.alive(o) is True


def close_orphan(uri: str, run_id: str, status: str = "KILLED") -> bool:
    """Close a run only if it is RUNNING and no live process owns it; FINISHED, FAILED and KILLED runs keep their
    status and end time. Returns whether it was closed."""
    run = client(uri).get_run(run_id)
    if run.info.status != "RUNNING" or owner_alive(run.data.tags.get(schema.TAG_OWNER, "")):
        return False
    client(uri).set_terminated(run_id, status=status)
    return True


def logged_steps(uri: str, run_id: str) -> set[tuple[str, int]]:
    """Every (metric, step) the run already holds: a resumed run logs only what is missing."""
    c = client(uri)
    keys = c.get_run(run_id).data.metrics
    return {(key, m.step) for key in keys for m in c.get_metric_history(run_id, key)}


def has_epochs(uri: str, run_id: str) -> bool:
    """Whether the run holds any per-epoch metric (schema.EPOCH_METRICS)."""
    return bool(set(client(uri).get_run(run_id).data.metrics) & set(schema.EPOCH_METRICS))


def fail_unresumable(uri: str, run_id: str, note: str) -> None:
    """An interrupted run (RUNNING without a live owner, or KILLED) that can never be resumed: FAILED, with `note`
    as its error.txt. A run in any other state is left as it is."""
    run = client(uri).get_run(run_id)
    if run.info.status not in ("RUNNING", "KILLED") or (
        run.info.status == "RUNNING" and owner_alive(run.data.tags.get(schema.TAG_OWNER, ""))
    ):
        return
    client(uri).log_text(run_id, note + "\n", schema.ART_ERROR)
    client(uri).set_terminated(run_id, status="FAILED")


def check_store(uri: str) -> None:
    """Say which store this process writes to when it is a server, then check it once with a short timeout
    (`mlruns.problem`): an unreachable server or a read-only folder is one line within seconds, not minutes of MLflow's
    retries."""
    if mlruns.sqlite_path(uri) is None:
        print(f"MLflow store: {uri} (checking it answers within {mlruns.CONNECT_TIMEOUT_S:g} s)", file=sys.stderr)
    problem = mlruns.problem(uri)
    if problem:
        raise HarnessError(problem)


def machine_tags() -> dict[str, str]:
    """What can make one configuration's numbers differ between machines, as `env.*` tags on every run: the CPU
    model and count, torch's intra-op thread count (float sums are split across threads), the accelerator, and the
    versions of the libraries that compute (torch, torchvision, numpy, pillow) and record (mlflow, optuna)."""
    import os
    import platform
    from importlib import metadata

    import torch

    tags = {
        schema.TAG_ENV_CPU: cpu_model(),
        schema.TAG_ENV_CPU_COUNT: str(os.cpu_count()),
        schema.TAG_ENV_THREADS: str(torch.get_num_threads()),
        schema.TAG_ENV_PYTHON: platform.python_version(),
        schema.TAG_ENV_OS: f"{platform.system()} {platform.release()} {platform.machine()}",
        schema.TAG_ENV_ACCELERATOR: torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }
    for dist in schema.ENV_LIBRARIES:
        try:
            tags[f"{schema.TAG_ENV_PREFIX}{dist}"] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            tags[f"{schema.TAG_ENV_PREFIX}{dist}"] = "not installed"
    return tags


def cpu_model() -> str:
    """/proc/cpuinfo's model name (Linux), else what `platform` knows."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.machine() or "unknown"  # platform.processor() would start `uname -p` on Linux


# --- what MLflow's UI shows first: data sets, the batch's parent, the report ----------------------------------------


@dataclass(frozen=True)
class DataInput:
    """One split a run read, as an MLflow dataset input (the UI's Dataset column and filter). `digest` is the
    harness's data fingerprint (`Datasets.fingerprint`): two runs on different data never share a (name, digest)."""

    name: str  # e.g. "mnist-clutter" or "ILSVRC-2012"
    split: str  # "train", "val" or "test"
    digest: str
    source: str  # the data folder or store, or where the embedded data set comes from
    rows: int
    classes: int


def log_inputs(uri: str, run_id: str, inputs: Iterable[DataInput]) -> None:
    """`MlflowClient.log_inputs` for each split, named "<data set>:<split>", context training / validation."""
    import json

    from mlflow.entities import Dataset, DatasetInput, InputTag

    entries = [
        DatasetInput(
            Dataset(
                name=f"{i.name}:{i.split}",
                digest=i.digest,
                source_type="local" if "://" not in i.source else i.source.split("://")[0],
                source=json.dumps({"uri": i.source}),
                profile=json.dumps({"num_rows": i.rows, "num_classes": i.classes}),
            ),
            tags=[InputTag("mlflow.data.context", schema.DATA_CONTEXT.get(i.split, i.split))],
        )
        for i in inputs
    ]
    if entries:
        client(uri).log_inputs(run_id, datasets=entries)


@dataclass(frozen=True)
class OwnRun:
    run_id: str
    exp_id: str
    experiment: str


def own_latest(uri: str, kind: str) -> OwnRun | None:
    """The newest run of `kind` (tag harness.kind) that this process wrote (its owner tag), in any experiment."""
    c = client(uri)
    exps = {e.experiment_id: e.name for e in c.search_experiments()}
    owner = owner_tags()[schema.TAG_OWNER]
    runs = c.search_runs(
        list(exps),
        filter_string=f"tags.`{schema.TAG_KIND}` = '{kind}' and tags.`{schema.TAG_OWNER}` = '{owner}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    exp_id = runs[0].info.experiment_id
    return OwnRun(runs[0].info.run_id, exp_id, exps[exp_id])


def log_counts(uri: str, parent_id: str, statuses: Iterable[str]) -> None:
    """How many children finished, were skipped, failed or were pruned (`schema.PARENT_COUNT`), on the parent."""
    from collections import Counter

    counts = Counter(statuses)
    keys = ("finished", "skipped", "failed", "pruned")
    Tracker(uri, parent_id).log_metrics({schema.PARENT_COUNT.format(status=k): counts.get(k, 0) for k in keys})


def log_report(uri: str, run_id: str, report: Path) -> None:
    """The markdown report and its figures folder (`<stem>_figures`, when it exists) under `report/` of a parent
    run, so that the report lives with the runs it was computed from."""
    c = client(uri)
    c.log_artifact(run_id, str(report), schema.ART_REPORT)
    figures = report.parent / f"{report.stem}_figures"
    if figures.is_dir():
        c.log_artifacts(run_id, str(figures), f"{schema.ART_REPORT}/{figures.name}")


def ui_link(ui_url: str, exp_id: str, run_id: str = "") -> str:
    """The MLflow UI's page of one run, or of the experiment's runs table (in its model-training view)."""
    if not run_id:
        return schema.UI_EXPERIMENT_PAGE.format(ui=ui_url.rstrip("/"), experiment_id=exp_id)
    return schema.UI_RUN_PAGE.format(ui=ui_url.rstrip("/"), experiment_id=exp_id, run_id=run_id)


# --- system metrics -------------------------------------------------------------------------------------------------


class SystemMetrics:
    """MLflow's system-metrics monitor (CPU, memory, disk, network, and GPU utilisation and memory where NVML sees a
    GPU) on one run while training: `system/*` metrics every `interval_s`. A no-op when not `enabled`."""

    def __init__(self, uri: str, run_id: str, enabled: bool, interval_s: float = 10.0, resume: bool = False) -> None:
        self._monitor = None
        if enabled and run_id:
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

            logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # start/stop chatter
            self._monitor = SystemMetricsMonitor(
                run_id, sampling_interval=interval_s, resume_logging=resume, tracking_uri=uri
            )

    def __enter__(self) -> SystemMetrics:
        if self._monitor is not None:
            self._monitor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._monitor is not None:
            self._monitor.finish()

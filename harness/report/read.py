"""Read runs and their artifacts from an MLflow store into typed rows (the only report module that imports mlflow).

What is read, by the names in harness.schema: tags harness.kind, variant, paper, profile, dataset, dataset_name,
split, test_protocol, recipe_modified, modified_keys, tuned_from_sweep, sweep, pretrained; params seed, epochs,
num_classes; metrics final_val_top1/top5, {center,ten_crop}_val_top1/top5, learned, the qual.* ones; histories
val_top1, train_loss and train_err (step: images seen); artifacts config.json (key profile_deviations),
predictions/val_predictions.npz, checkpoint/final.pt, qualitative/metrics.json (runs analysed before it have every
qual.* key as a metric); a sweep parent's param epochs, its best_* params and trial counts (`sweep_summaries`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote, urlparse

import numpy as np

from harness import mlruns, schema
from harness.errors import HarnessError
from harness.report.read_sqlite import connect, sqlite_histories, sqlite_records
from harness.report.records import Record, get, get_str, latest, qual_table, to_row
from harness.report.types import History, RunRow, SweepSummary

if TYPE_CHECKING:
    import torch
    from mlflow import MlflowClient
    from mlflow.entities import Run

# mlflow is imported where a function needs it, not here: reading a SQLite store with local artifacts needs none of
# it, and importing it costs ~2 s of CPU (benchmarks/report_scale.py, docs/scale.md)

KINDS = ("variant", "trial")  # runs the report reads; batch and sweep parents hold no results


def _client(tracking_uri: str) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri)


@contextmanager
def _quiet_downloads() -> Iterator[None]:
    """No progress bar on stderr while the block downloads artifacts."""
    old_bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        yield
    finally:
        if old_bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = old_bar


@contextmanager
def using_store(tracking_uri: str) -> Iterator[None]:
    """`mlflow.search_runs` reads the global tracking URI: set it for the block and put the old one back."""
    import mlflow

    old = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(tracking_uri)
    try:
        with _quiet_downloads():
            yield
    finally:
        mlflow.set_tracking_uri(old)


def check_store(tracking_uri: str) -> None:
    """A SQLite store that does not exist is bad input, not a new empty store to create."""
    path = mlruns.sqlite_path(tracking_uri)
    if path is not None and not path.is_file():
        raise HarnessError(f"no MLflow store at {path}: run `harness run` first or pass --tracking-uri")
    if path is None and tracking_uri.startswith(("http://", "https://")):  # a server: one try with a short timeout
        problem = mlruns.problem(tracking_uri)
        if problem:
            raise HarnessError(problem)


def known_experiments(tracking_uri: str) -> dict[str, str]:
    """{name: id} of the store's active experiments: one query on a SQLite store's experiments table (MLflow 3.17
    dbmodels: experiment_id, name, lifecycle_stage), without building MLflow's SQLAlchemy store (~1.5 s of CPU,
    its schema check included); through the client elsewhere."""
    path = mlruns.sqlite_path(tracking_uri)
    if path is None:
        return {e.name: e.experiment_id for e in _client(tracking_uri).search_experiments()}
    db = connect(path)
    try:
        return {
            str(name): str(i)
            for i, name in db.execute("SELECT experiment_id, name FROM experiments WHERE lifecycle_stage = 'active'")
        }
    except sqlite3.Error as e:
        raise HarnessError(f"cannot read the experiments of {path}: {e}") from None
    finally:
        db.close()


def experiment_ids(known: dict[str, str], names: list[str] | None) -> dict[str, str]:
    """{experiment id: name} for the names given (all experiments when None) of `known` ({name: id}); an unknown
    name is a HarnessError."""
    if names is None:
        return {i: n for n, i in known.items()}
    unknown = [n for n in names if n not in known]
    if unknown:
        have = ", ".join(sorted(known)) or "none"
        raise HarnessError(f"unknown experiment {unknown[0]!r}; the store has: {have}")
    return {known[n]: n for n in names}


def record(run: Run) -> Record:
    """A run's info and its tags, params and latest metrics under the column names of `mlflow.search_runs`' frame."""
    rec: Record = {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "artifact_uri": run.info.artifact_uri,
    }
    for prefix, values in (("tags", run.data.tags), ("params", run.data.params), ("metrics", run.data.metrics)):
        rec.update({f"{prefix}.{k}": v for k, v in values.items()})
    return rec


def history(client: MlflowClient, run_id: str, key: str) -> History:
    """One run's history of `key` through the client (one request per run and key: a server's store)."""
    return latest((m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key))


def histories(tracking_uri: str, run_ids: Sequence[str], key: str) -> dict[str, History]:
    """The history of `key` of each run: one query for a SQLite store, else one client request per run."""
    path = mlruns.sqlite_path(tracking_uri)
    if path is not None:
        return sqlite_histories(path, run_ids, key)
    client = _client(tracking_uri)
    return {r: history(client, r, key) for r in run_ids}


def qual_tables(tracking_uri: str, recs: Sequence[Record]) -> dict[str, dict[str, float]]:
    """The qualitative table of each run analysed since the table (a QUAL_HEADLINE metric and no qual.seconds
    metric); a run analysed before it has every qual.* key as a metric and needs no artifact."""
    new = [
        r
        for r in recs
        if get(r, f"metrics.{schema.QUAL_SECONDS}") is None
        and any(get(r, f"metrics.{k}") is not None for k in schema.QUAL_HEADLINE)
    ]
    if not new:
        return {}
    with tempfile.TemporaryDirectory(prefix="harness-report-") as tmp:
        return {
            str(r["run_id"]): qual_table(
                _local_artifact(
                    str(r["artifact_uri"]), tracking_uri, str(r["run_id"]), schema.ART_QUAL_TABLE, Path(tmp)
                )
            )
            for r in new
        }


PAGE = 10_000  # runs per search request (MLflow's client allows up to 50,000)


def search_all(client: MlflowClient, exp_ids: list[str], filter_string: str, order_by: list[str] | None = None) -> list:
    """Every run matching `filter_string`, page by page (one request per PAGE runs; the client's default page is
    1,000 and a single call returns only the first page)."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            exp_ids, filter_string=filter_string, max_results=PAGE, order_by=order_by, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def client_records(client: MlflowClient, exp_ids: list[str], kinds: Sequence[str]) -> list[Record]:
    """`sqlite_records` through the client's paged search (a server's store)."""
    return [
        record(r)
        for kind in kinds  # MLflow's filter grammar has no IN for tags
        for r in search_all(client, exp_ids, f"tags.`{schema.TAG_KIND}` = '{kind}'")
    ]


@dataclass(frozen=True)
class Store:
    """What `read_store` read: the report's rows, and each run's artifact root (so that artifacts need no lookup)."""

    rows: list[RunRow]
    artifact_roots: dict[str, str]


def read_store(tracking_uri: str, experiments: list[str] | None, train_err_of: Collection[str] | None = None) -> Store:
    """Variant runs and sweep trials of the experiments named (all when None), sorted by run id. Variant runs carry
    their val_top1 and train_loss histories, and their train_err curve when their variant is in `train_err_of`
    (None: every variant; the report needs it only for speedup claims, and it holds ~50 points an epoch)."""
    check_store(tracking_uri)
    ids = experiment_ids(known_experiments(tracking_uri), experiments)
    if not ids:
        return Store([], {})
    path = mlruns.sqlite_path(tracking_uri)
    if path is not None:
        recs = sqlite_records(path, sorted(ids), KINDS)
    else:
        recs = client_records(_client(tracking_uri), sorted(ids), KINDS)
    plotted = [rec for rec in recs if (get_str(rec, f"tags.{schema.TAG_KIND}") or "variant") == "variant"]
    curves = {
        key: histories(tracking_uri, [str(x["run_id"]) for x in plotted], key)
        for key in ("val_top1", "train_loss", "train_top1")
    }
    curves[schema.TRAIN_ERR] = histories(
        tracking_uri,
        [
            str(x["run_id"])
            for x in plotted
            if train_err_of is None or get_str(x, f"tags.{schema.TAG_VARIANT}") in train_err_of
        ],
        schema.TRAIN_ERR,
    )
    tables = qual_tables(tracking_uri, recs)
    rows = [
        to_row(
            rec,
            ids.get(str(rec["experiment_id"]), str(rec["experiment_id"])),
            {k: v[str(rec["run_id"])] for k, v in curves.items() if str(rec["run_id"]) in v},
            tables.get(str(rec["run_id"])),
        )
        for rec in recs
    ]
    roots = {str(rec["run_id"]): str(rec["artifact_uri"]) for rec in recs}
    return Store(sorted((r for r in rows if r.variant), key=lambda r: r.run_id), roots)


def read_runs(
    tracking_uri: str, experiments: list[str] | None, train_err_of: Collection[str] | None = None
) -> list[RunRow]:
    """`read_store`'s rows."""
    return read_store(tracking_uri, experiments, train_err_of).rows


def _local_artifact(root: str, tracking_uri: str, run_id: str, path: str, dst: Path) -> Path | None:
    """The artifact as a local file: read in place from a local artifact store, else downloaded into `dst`."""
    parsed = urlparse(root)
    if parsed.scheme in ("", "file"):
        local = Path(unquote(parsed.path)) / path
        return local if local.is_file() else None
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=path, dst_path=str(dst), tracking_uri=tracking_uri
            )
        )
    except (MlflowException, OSError):
        return None


@contextmanager
def artifacts(tracking_uri: str, roots: dict[str, str] | None = None) -> Iterator[ArtifactReader]:
    """An ArtifactReader of the store; `roots` (run id -> artifact URI, `Store.artifact_roots`) saves a request per
    run."""
    sqlite = mlruns.sqlite_path(tracking_uri) is not None  # read in place, or downloaded naming the store: no global
    with (
        tempfile.TemporaryDirectory(prefix="harness-report-") as tmp,
        _quiet_downloads() if sqlite else using_store(tracking_uri),
    ):
        yield ArtifactReader(None, tracking_uri, Path(tmp), roots)


class ArtifactReader:
    """Loads the artifacts the report needs; a missing or unreadable artifact is None, never an error."""

    def __init__(
        self, client: MlflowClient | None, tracking_uri: str, tmp: Path, roots: dict[str, str] | None = None
    ) -> None:
        self._client, self.tracking_uri, self.tmp = client, tracking_uri, tmp
        self.roots = dict(roots or {})

    @property
    def client(self) -> MlflowClient:
        """Made when first needed: a client of a SQLite store builds MLflow's SQLAlchemy store (~1.5 s of CPU), and
        a report whose artifact roots all came with the search asks it nothing."""
        if self._client is None:
            self._client = _client(self.tracking_uri)
        return self._client

    def root(self, run_id: str) -> str:
        if run_id not in self.roots:
            self.roots[run_id] = self.client.get_run(run_id).info.artifact_uri
        return self.roots[run_id]

    def path(self, run_id: str, artifact: str) -> Path | None:
        return _local_artifact(self.root(run_id), self.tracking_uri, run_id, artifact, self.tmp / run_id)

    def predictions(self, run_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(labels (N,), probs (N, C)) from predictions/val_predictions.npz."""
        p = self.path(run_id, schema.ART_PREDICTIONS)
        if p is None:
            return None
        try:
            with np.load(p) as z:
                return np.asarray(z["labels"]), np.asarray(z["probs"])
        except (OSError, KeyError, ValueError):
            return None

    def state_dict(self, run_id: str) -> dict[str, torch.Tensor] | None:
        """Model weights from checkpoint/final.pt (harness.checkpoint's key rules)."""
        p = self.path(run_id, schema.ART_CHECKPOINT)
        if p is None:
            return None
        from harness import checkpoint  # (torch) only for a run with weights: a mlruns without them reads without it

        try:
            return checkpoint.load_state_dict(p)
        except HarnessError:
            return None

    def param(self, run_id: str, key: str) -> str | None:
        """One logged param of a run (e.g. a sweep parent's `epochs`); None when it was not logged."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(run_id).data.params.get(key)
        except MlflowException:
            return None

    def profile_deviations(self, run_id: str) -> tuple[str, ...] | None:
        p = self.path(run_id, schema.ART_CONFIG)
        if p is None:
            return None
        try:
            devs = json.loads(p.read_text()).get("profile_deviations")
        except (OSError, ValueError, AttributeError):
            return None
        return None if devs is None else tuple(str(d) for d in devs)


class _Parent(NamedTuple):
    """A sweep parent run as `sweep_summaries` reads it, from the client or from SQLite records."""

    run_id: str
    tags: dict
    metrics: dict
    params: dict
    start: int = 0


def _prefixed(rec: Record, prefix: str) -> dict:
    """The record's `prefix.X` columns as {X: value} (a NaN metric is kept, as the client keeps it)."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in rec.items() if k.startswith(prefix + ".")}


def sweep_summaries(tracking_uri: str, experiments: list[str] | None = None) -> list[SweepSummary]:
    """The latest recorded state of each sweep study in these experiments (all when None), by study name.

    Reads the sweep parent runs only; the newest parent that logged a best value wins (it counts the whole study).
    """
    path = mlruns.sqlite_path(tracking_uri)
    if path is not None and not path.is_file():
        return []
    exp_ids = [i for n, i in known_experiments(tracking_uri).items() if experiments is None or n in experiments]
    if not exp_ids:
        return []
    runs: list[_Parent] = []
    if path is not None:  # newest first, as the client's search below orders them (ties: by run id)
        for rec in sqlite_records(path, exp_ids, ("sweep",)):
            tags, metrics, params = (_prefixed(rec, p) for p in ("tags", "metrics", "params"))
            runs.append(_Parent(str(rec["run_id"]), tags, metrics, params, int(rec["start_time"] or 0)))  # type: ignore[call-overload]
        runs.sort(key=lambda r: (-r.start, r.run_id))
    else:
        c = _client(tracking_uri)
        for r in search_all(c, exp_ids, f"tags.`{schema.TAG_KIND}` = 'sweep'", ["attributes.start_time DESC"]):
            runs.append(_Parent(r.info.run_id, r.data.tags, r.data.metrics, r.data.params))
    chosen: dict[str, _Parent] = {}
    for r in runs:  # newest first
        study = r.tags.get(schema.TAG_SWEEP, "")
        if study not in chosen or (
            schema.BEST_VAL_TOP1 in r.metrics and schema.BEST_VAL_TOP1 not in chosen[study].metrics
        ):
            chosen[study] = r
    out = []
    for study, r in sorted(chosen.items()):
        t, m, p = r.tags, r.metrics, r.params
        out.append(
            SweepSummary(
                study=study,
                variant=t.get(schema.TAG_VARIANT, ""),
                dataset=t.get(schema.TAG_DATASET, ""),
                profile=t.get(schema.TAG_PROFILE, ""),
                best_value=m.get(schema.BEST_VAL_TOP1),
                n_trials=int(m.get(schema.N_TRIALS, 0)),
                n_pruned=int(m.get(schema.N_PRUNED, 0)),
                best_params={
                    k.removeprefix(schema.BEST_PREFIX): v
                    for k, v in sorted(p.items())
                    if k.startswith(schema.BEST_PREFIX)
                },
                parent_run_id=r.run_id,
                dataset_name=t.get(schema.TAG_DATASET_NAME, ""),
                space=t.get(schema.TAG_SWEEP_SPACE, ""),
                n_failed=int(m.get(schema.N_FAILED, 0)),
            )
        )
    return out

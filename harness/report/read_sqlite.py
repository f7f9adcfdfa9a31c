"""A SQLite MLflow store read with sqlite3, read only: its runs and their metric histories in a few queries, without
building MLflow's SQLAlchemy store (MLflow 3.17 mlflow/store/tracking/dbmodels/models.py names the tables)."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness import schema
from harness.errors import HarnessError
from harness.report.records import Record
from harness.report.types import History


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)  # read only: never a write lock


def _chunks(ids: Sequence[str], n: int = 500) -> Iterator[list[str]]:
    """Run ids, at most n at a time (SQLite's limit on a statement's variables was 999 before 3.32)."""
    for i in range(0, len(ids), n):
        yield list(ids[i : i + n])


def sqlite_records(path: Path, exp_ids: Sequence[str], kinds: Sequence[str]) -> list[Record]:
    """The active runs of these experiments whose harness.kind tag is one of `kinds`, as `record` gives them, read
    from a SQLite store's tables in five queries (MLflow 3.17 mlflow/store/tracking/dbmodels/models.py: runs, tags,
    params, latest_metrics, the tables `search_runs` reads; it builds an object per tag, param and metric of every
    run, most of a report's time on a store of a thousand runs)."""
    db = connect(path)
    try:
        recs: dict[str, Record] = {}
        for run_uuid, exp, status, start, end, root in db.execute(
            "SELECT r.run_uuid, r.experiment_id, r.status, r.start_time, r.end_time, r.artifact_uri FROM runs r "
            "JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = ? WHERE r.lifecycle_stage = 'active' AND "
            f"r.experiment_id IN ({','.join('?' * len(exp_ids))}) AND t.value IN ({','.join('?' * len(kinds))})",
            [schema.TAG_KIND, *exp_ids, *kinds],
        ):
            recs[run_uuid] = {
                "run_id": run_uuid,
                "experiment_id": str(exp),
                "status": status,
                "start_time": start,
                "end_time": end,
                "artifact_uri": root,
            }
        for chunk in _chunks(list(recs)):
            marks = ",".join("?" * len(chunk))
            for table, prefix in (("tags", "tags"), ("params", "params")):
                for run_uuid, key, value in db.execute(
                    f"SELECT run_uuid, key, value FROM {table} WHERE run_uuid IN ({marks})", chunk
                ):
                    recs[run_uuid][f"{prefix}.{key}"] = value
            for run_uuid, key, value, is_nan in db.execute(
                f"SELECT run_uuid, key, value, is_nan FROM latest_metrics WHERE run_uuid IN ({marks})", chunk
            ):
                recs[run_uuid][f"metrics.{key}"] = math.nan if is_nan else float(value)
    except sqlite3.Error as e:
        raise HarnessError(f"cannot read the runs of {path}: {e}") from None
    finally:
        db.close()
    return list(recs.values())


def sqlite_histories(path: Path, run_ids: Sequence[str], key: str) -> dict[str, History]:
    """The history of `key` of every run in `run_ids`, in one read-only query per 500 runs of a SQLite store's
    `metrics` table (MLflow 3.17 mlflow/store/tracking/dbmodels/models.py SqlMetric: key, value, timestamp, run_uuid,
    step, is_nan), in the order `get_metric_history` returns them. The client has no history of several runs at once,
    and one request per run and key is most of a report's time on a store of hundreds of runs."""
    last: dict[str, dict[int, float]] = {r: {} for r in run_ids}
    db = connect(path)
    try:
        for chunk in _chunks(run_ids):
            # by step, then as `latest` orders a step's values: the last row of each step is the one it keeps
            for run_uuid, step, value, is_nan in db.execute(
                "SELECT run_uuid, step, value, is_nan FROM metrics WHERE key = ? AND run_uuid IN "
                f"({','.join('?' * len(chunk))}) ORDER BY run_uuid, step, timestamp, value",
                [key, *chunk],
            ):
                last[run_uuid][step] = math.nan if is_nan else value
    except sqlite3.Error as e:
        raise HarnessError(f"cannot read the metric histories of {path}: {e}") from None
    finally:
        db.close()
    return {r: tuple((int(s), float(v)) for s, v in sorted(steps.items())) for r, steps in last.items()}

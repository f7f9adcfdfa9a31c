"""The report's read path (harness.report.read) on a real SQLite store of 30 runs made with MLflow's client: the rows
it reads in batches (paged search, one query per metric for all runs) are those of the one-request-per-run path
(mlflow.search_runs and get_metric_history per run and key), and the histories hold the values logged."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from harness import schema
from harness.report import read
from harness.report.build import generate_report
from harness.report.read_sqlite import sqlite_histories, sqlite_records
from harness.report.records import to_row
from harness.report.speedup import speedup_variants
from variants import claims

EXPERIMENT = "imagenet-paper"
CURVES = ("val_top1", "train_loss", schema.TRAIN_ERR)


def _run(client: MlflowClient, exp: str, variant: str, seed: int, *, kind: str = "variant", status: str = "FINISHED"):
    tags = {
        schema.TAG_KIND: kind,
        schema.TAG_VARIANT: variant,
        schema.TAG_PAPER: "KSH12",
        schema.TAG_PROFILE: "paper",
        schema.TAG_DATASET: "imagefolder",
        schema.TAG_DATASET_NAME: "ILSVRC-2012",
        schema.TAG_SPLIT: "val",
        schema.TAG_PROTOCOL: "ten_crop",
        schema.TAG_RECIPE_MODIFIED: "false",
    }
    rid = client.create_run(exp, start_time=1_700_000_000_000, run_name=variant, tags=tags).info.run_id
    for k, v in {"seed": seed, "epochs": 4, "num_classes": 1000, "batch_size": 128}.items():
        client.log_param(rid, k, v)
    ts = 1_700_000_000_000
    points = []
    for epoch in range(1, 5):
        points += [
            Metric("val_top1", 10.0 * epoch + seed, ts + epoch, epoch),
            Metric("train_loss", 6.9 / epoch, ts + epoch, epoch),
            Metric("images_per_sec", 1000.0 + seed, ts + epoch, epoch),
        ]
        points += [Metric(schema.TRAIN_ERR, 90.0 - epoch - s, ts + epoch, (epoch * 10 + s) * 128) for s in range(10)]
    client.log_batch(rid, metrics=points)
    if status == "RUNNING":
        return rid
    client.log_batch(
        rid,
        metrics=[
            Metric(schema.FINAL_TOP1, 40.0 + seed, ts + 9, 4),
            Metric("ten_crop_val_top1", 40.0 + seed, ts + 9, 4),
            Metric("center_val_top1", 38.5 + seed, ts + 9, 4),
            Metric(schema.LEARNED, 1.0, ts + 9, 4),
        ],
    )
    client.set_terminated(rid, status, end_time=ts + 3_600_000 * (seed + 1))
    return rid


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    """30 runs: 3 variants x 7 seeds (two of them on the speedup claim's sides), 4 sweep trials, a FAILED, a RUNNING
    and a deleted run, a resumed epoch logged twice, a NaN; another experiment's 2 runs."""
    tmp = tmp_path_factory.mktemp("read-store")
    uri = f"sqlite:///{tmp}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment(EXPERIMENT, artifact_location=str(tmp / "artifacts"))
    other = client.create_experiment("mnist5k-proxy", artifact_location=str(tmp / "artifacts-proxy"))
    named: dict[str, str] = {}
    for variant in ("alexnet2012", "ksh12_fig1_relu", "ksh12_fig1_tanh"):
        for seed in range(7):
            named[f"{variant}/{seed}"] = _run(client, exp, variant, seed)
    for t in range(4):
        named[f"trial/{t}"] = _run(client, exp, "alexnet2014", 10 + t, kind="trial")
    named["failed"] = _run(client, exp, "zfnet", 0, status="FAILED")
    named["running"] = _run(client, exp, "zfnet", 1, status="RUNNING")
    client.delete_run(_run(client, exp, "zfnet", 2))
    for seed in range(2):
        named[f"proxy/{seed}"] = _run(client, other, "alexnet2012", seed)
    resumed = named["alexnet2012/0"]  # epoch 2 again after a resume, later: the later value counts
    client.log_batch(resumed, metrics=[Metric("val_top1", 77.0, 1_700_000_000_500, 2)])
    client.log_batch(named["alexnet2012/1"], metrics=[Metric("train_loss", math.nan, 1_700_000_000_600, 5)])
    return uri, named


def _one_request_per_run(uri: str, experiments: list[str] | None) -> list:
    """The rows as the report read them before batching: mlflow.search_runs' frame, per run and key a request."""
    client = MlflowClient(uri)
    ids = read.experiment_ids({e.name: e.experiment_id for e in client.search_experiments()}, experiments)
    rows = []
    with read.using_store(uri):
        for kind in read.KINDS:
            frame = mlflow.search_runs(sorted(ids), filter_string=f"tags.`{schema.TAG_KIND}` = '{kind}'")
            for _, rec in frame.iterrows():
                curves = {k: read.history(client, rec["run_id"], k) for k in CURVES} if kind == "variant" else {}
                row = to_row(rec.drop(["start_time", "end_time"]).to_dict(), ids[rec["experiment_id"]], curves)
                end, start = rec["end_time"], rec["start_time"]
                hours = None if pd_missing(end) else (end - start).total_seconds() / 3600
                rows.append((row, hours))
    return sorted(rows, key=lambda x: x[0].run_id)


def pd_missing(value: object) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


@pytest.mark.parametrize("experiments", [None, [EXPERIMENT]])
def test_batched_rows_equal_the_rows_read_one_request_per_run(store, monkeypatch, experiments) -> None:
    uri, _ = store
    monkeypatch.setattr(read, "PAGE", 7)  # several pages of search results
    got = read.read_runs(uri, experiments)
    want = _one_request_per_run(uri, experiments)
    assert len(got) == len(want) == (29 if experiments is None else 27)  # the deleted run is not read
    for row, (ref, hours) in zip(got, want):
        assert row.hours == hours
        assert repr(row) == repr(replace(ref, hours=hours))  # repr: a NaN in a history equals itself


def test_histories_hold_the_latest_value_of_each_epoch(store) -> None:
    uri, named = store
    rows = {r.run_id: r for r in read.read_runs(uri, None)}
    resumed, nan = rows[named["alexnet2012/0"]], rows[named["alexnet2012/1"]]
    assert resumed.val_top1 == ((1, 10.0), (2, 77.0), (3, 30.0), (4, 40.0))
    assert nan.train_loss[:4] == tuple((e, 6.9 / e) for e in range(1, 5)) and math.isnan(nan.train_loss[4][1])
    assert len(rows[named["ksh12_fig1_tanh/3"]].train_err) == 40
    assert rows[named["trial/0"]].val_top1 == ()  # trials carry no curves
    running = rows[named["running"]]
    assert (running.status, running.hours, running.final_top1) == ("RUNNING", None, None)
    assert rows[named["failed"]].hours == 1.0


def test_train_err_is_read_only_for_the_variants_asked(store) -> None:
    uri, named = store
    asked = speedup_variants(claims())
    assert asked == {"ksh12_fig1_relu", "ksh12_fig1_tanh"}  # KSH12 Fig. 1's claim: the only speedup claim
    rows = read.read_store(uri, None, asked).rows
    assert {r.variant for r in rows if r.train_err} == asked
    assert all(r.val_top1 for r in rows if r.kind == "variant")  # the curves the figures draw stay


def test_sqlite_records_equal_the_clients_paged_search(store, monkeypatch) -> None:
    """A server's store is read through the client's search (PAGE runs a request); a SQLite one from its tables."""
    uri, named = store
    monkeypatch.setattr(read, "PAGE", 4)
    client = MlflowClient(uri)
    ids = sorted(read.experiment_ids(read.known_experiments(uri), None))
    by_id = lambda recs: {r["run_id"]: repr(sorted(r.items())) for r in recs}  # noqa: E731 - repr: NaN == NaN
    got = by_id(sqlite_records(Path(uri.removeprefix("sqlite:///")), ids, read.KINDS))
    want = by_id(read.client_records(client, ids, read.KINDS))
    assert got.keys() == want.keys() and len(got) == 29
    assert got == want
    assert "('metrics.train_loss', nan)" in got[named["alexnet2012/1"]]  # the latest value, NaN


def test_sqlite_histories_equal_the_clients(store) -> None:
    uri, named = store
    client = MlflowClient(uri)
    ids = [named["alexnet2012/0"], named["alexnet2012/1"], named["ksh12_fig1_relu/2"], "0" * 32]
    for key in CURVES:
        got = sqlite_histories(Path(uri.removeprefix("sqlite:///")), ids, key)
        assert got.keys() == set(ids)
        for rid in ids[:3]:
            assert repr(got[rid]) == repr(read.history(client, rid, key))  # repr: NaN equals NaN
        assert got["0" * 32] == ()


def test_the_report_is_the_same_when_every_curve_is_read(store, tmp_path: Path, monkeypatch) -> None:
    """The report reads train_err of the speedup claims' variants only: its text is that of reading every curve."""
    uri, _ = store
    fast = generate_report(uri, None, tmp_path / "fast" / "report.md").read_text()
    monkeypatch.setattr("harness.report.build.speedup_variants", lambda _claims: None)
    full = generate_report(uri, None, tmp_path / "full" / "report.md").read_text()
    assert fast == full
    assert "ksh12_fig1_relu" in fast


def test_sqlite_experiments_and_sweep_parents_equal_the_clients(tmp_path: Path, monkeypatch) -> None:
    """A SQLite store's experiments and sweep parents are read from its tables (no SQLAlchemy store): the same as the
    client's search, newest parent first, a deleted experiment left out."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment(EXPERIMENT, artifact_location=str(tmp_path / "a"))
    client.delete_experiment(client.create_experiment("gone", artifact_location=str(tmp_path / "b")))
    for i, (study, best, start) in enumerate([("s1", None, 5), ("s1", 71.5, 3), ("s2", 60.0, 3), ("s2", 61.0, 3)]):
        tags = {schema.TAG_KIND: "sweep", schema.TAG_SWEEP: study, schema.TAG_VARIANT: "zfnet"}
        rid = client.create_run(exp, start_time=1_700_000_000_000 + start, tags=tags).info.run_id
        client.log_param(rid, schema.BEST_PREFIX + "lr", str(0.01 * (i + 1)))
        client.log_metric(rid, schema.N_TRIALS, 4 + i)
        if best is not None:
            client.log_metric(rid, schema.BEST_VAL_TOP1, best)
    assert read.known_experiments(uri) == {e.name: e.experiment_id for e in client.search_experiments()}
    got = read.sweep_summaries(uri)
    assert [s.study for s in got] == ["s1", "s2"] and got[0].best_value == 71.5
    monkeypatch.setattr(read.mlruns, "sqlite_path", lambda _uri: None)  # as a server's store: through the client
    assert read.known_experiments(uri) == {e.name: e.experiment_id for e in client.search_experiments()}
    assert read.sweep_summaries(uri) == got


def test_the_report_through_the_client_is_the_report_read_in_sql(store, tmp_path: Path, monkeypatch) -> None:
    """A server's store goes through MLflow's client (imported where needed); a SQLite one through sqlite3 with no
    mlflow: the same text. The UI address is given, as a server's report would link its own."""
    uri, _ = store
    ui = "http://127.0.0.1:5000"
    sql = generate_report(uri, None, tmp_path / "sql" / "report.md", ui_url=ui).read_text()
    monkeypatch.setattr(read.mlruns, "sqlite_path", lambda _uri: None)
    client = generate_report(uri, None, tmp_path / "client" / "report.md", ui_url=ui).read_text()
    assert sql.replace(str(tmp_path / "sql"), "") == client.replace(str(tmp_path / "client"), "")

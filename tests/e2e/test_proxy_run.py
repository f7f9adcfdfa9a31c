"""The main command's path end to end: `python -m harness run` on the embedded proxy data, in a real process,
logging params, tags, metrics and artifacts to a real SQLite store; the same command again skips it."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from harness import schema


@pytest.mark.slow
def test_proxy_end_to_end_logs_params_tags_metrics_artifacts(tmp_path, uri, cli, runs):
    r = cli(
        "run",
        "torchvision_alexnet",
        "--limit-train",
        "320",
        "--limit-val",
        "100",
        "--epochs",
        "2",
        "--set",
        "warmup_epochs=0.25",
        "--tracking-uri",
        uri,
        "--no-report",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "torchvision_alexnet" in r.stdout and "finished" in r.stdout and "MLflow store" in r.stdout
    (run,) = runs(uri)
    p, t, m = run.data.params, run.data.tags, run.data.metrics
    for key in (
        "lr",
        "momentum",
        "weight_decay",
        "batch_size",
        "epochs",
        "schedule",
        "crop",
        "seed",
        "world_size",
        "dataset",
        "dataset_fingerprint",
        "profile",
        "effective_lr",
    ):
        assert key in p, key
    assert p["epochs"] == "2" and p["batch_size"] == "32" and p["world_size"] == "1" and p["dataset"] == "mnist-clutter"
    assert t["variant"] == "torchvision_alexnet" and t["paper"] == "TV" and t["profile"] == "proxy"
    assert (
        t["dataset"] == "mnist-clutter"
        and t["recipe_modified"] == "true"
        and t["modified_keys"] == "epochs,warmup_epochs"
    )
    assert p["width"] == "0.25"  # the proxy's quarter-width network
    for key in ("git_commit", "torch_version", "device"):
        assert t[key]
    c = MlflowClient(uri)
    for key in schema.EPOCH_METRICS:
        assert [h.step for h in c.get_metric_history(run.info.run_id, key)] == [1, 2], key
    assert {schema.FINAL_TOP1, schema.FINAL_TOP5, "center_val_top1"} <= set(m)
    assert "ten_crop_val_top1" not in m and p["test_protocol"] == "center"  # the proxy has no 10-crop test
    # the final centre-crop numbers are the last epoch's evaluation, not a second pass
    assert m["center_val_top1"] == c.get_metric_history(run.info.run_id, "val_top1")[-1].value
    # the proxy's per-step warmup (here a quarter of the first epoch) + linear decay: the epoch-mean lr falls
    lrs = [h.value for h in c.get_metric_history(run.info.run_id, "lr")]
    assert p["schedule"] == "warmup_linear" and p["init"] == "he2015" and lrs[1] < lrs[0] < 0.01
    arts = {a.path for a in c.list_artifacts(run.info.run_id)} | {
        a.path for d in ("predictions", "checkpoint") for a in c.list_artifacts(run.info.run_id, d)
    }
    assert {schema.ART_CONFIG, schema.ART_CURVES, schema.ART_CHECKPOINT, schema.ART_PREDICTIONS} <= arts
    # the store lives in ./mlruns as SQLite with artifacts beside it
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    # the same command again skips the finished identical configuration
    r2 = cli(
        "run",
        "torchvision_alexnet",
        "--limit-train",
        "320",
        "--limit-val",
        "100",
        "--epochs",
        "2",
        "--set",
        "warmup_epochs=0.25",
        "--tracking-uri",
        uri,
        "--no-report",
        cwd=tmp_path,
    )
    assert r2.returncode == 0 and "skipped" in r2.stdout
    assert len(runs(uri)) == 1

"""The training engine end to end: real MLflow stores, real data, real torchrun processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import mlflow
import pytest
import torch
import torch.nn as nn
from mlflow.tracking import MlflowClient

import variants
from harness import engine, schema
from harness.cli import main
from harness.request import RunRequest
from variants import Reported, Variant
from variants.torchvision_ref import RECIPE as TV_RECIPE


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
    assert t["dataset"] == "mnist-clutter" and t["recipe_modified"] == "true" and t["modified_keys"] == "warmup_epochs"
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


@pytest.mark.slow
@pytest.mark.parametrize(
    "schedule",
    [
        [],  # OWT14's lr table (CC2's schedule), stepped per epoch
        ["--set", "schedule=warmup_linear", "--set", "warmup_epochs=0.5"],  # the proxy's, stepped per optimiser step
    ],
    ids=["multistep", "warmup_linear"],
)
def test_same_seed_same_metrics_and_resume_after_kill(tmp_path, schedule, make_uri, cli, runs):
    args = ["run", "alexnet2014", "--profile", "smoke", "--epochs", "3", "--no-report", *schedule]
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    r = cli(*args, "--tracking-uri", make_uri(a), cwd=a)
    assert r.returncode == 0, r.stderr[-3000:]
    # interrupt a second, identical run with SIGKILL once its first checkpoint exists, then run it again
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args, "--tracking-uri", make_uri(b)],
        cwd=b,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not list((b / "mlruns" / "checkpoints").glob("*/last.pt")) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (interrupted,) = runs(make_uri(b))
    assert interrupted.info.status == "RUNNING"
    r = cli(*args, "--tracking-uri", make_uri(b), cwd=b)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming" in r.stderr
    (ra,), (rb,) = runs(make_uri(a)), runs(make_uri(b))
    assert rb.info.run_id == interrupted.info.run_id and rb.info.status == "FINISHED"
    ca, cb = MlflowClient(make_uri(a)), MlflowClient(make_uri(b))
    for key in ("val_loss", "train_loss", "val_top1", "lr"):
        ha = [(h.step, h.value) for h in ca.get_metric_history(ra.info.run_id, key)]
        hb = sorted({(h.step, h.value) for h in cb.get_metric_history(rb.info.run_id, key)})
        assert ha == hb, key
    assert ra.data.metrics[schema.FINAL_TOP1] == rb.data.metrics[schema.FINAL_TOP1]


@pytest.mark.slow
def test_torchrun_two_processes_log_one_run(tmp_path, uri, runs):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "harness",
        "run",
        "torchvision_alexnet",
        "--profile",
        "smoke",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--tracking-uri",
        uri,
        "--no-report",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    runs = runs(uri)
    assert len(runs) == 1
    p = runs[0].data.params
    assert p["world_size"] == "2"
    # every validation image counted exactly once across the two ranks
    preds = mlflow.artifacts.download_artifacts(
        run_id=runs[0].info.run_id,
        artifact_path=schema.ART_PREDICTIONS,
        tracking_uri=uri,
        dst_path=str(tmp_path / "dl"),
    )
    import numpy as np

    z = np.load(preds)
    assert len(z["labels"]) == int(p["val_size"])
    assert np.allclose(z["probs"].astype(np.float32).sum(1), 1.0, atol=1e-2)


def _broken(num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes // 2))  # too few outputs: the loss raises


@pytest.mark.slow
def test_one_failing_variant_does_not_stop_the_others(uri, runs, harness_main):
    broken = Variant(
        "broken_for_test",
        "TV",
        "a model whose output width is wrong",
        _broken,
        TV_RECIPE,
        reported=(Reported("x", "val", "center", 1.0, 2.0, "test"),),
    )
    variants.register(broken)
    try:
        code, out, _ = harness_main(
            [
                "run",
                "broken_for_test",
                "torchvision_alexnet",
                "--profile",
                "smoke",
                "--epochs",
                "1",
                "--tracking-uri",
                uri,
                "--no-report",
                "--device",
                "cpu",
            ]
        )
    finally:
        variants.registry._REGISTRY.pop("broken_for_test")
    assert code == 1
    assert "failed" in out and "finished" in out
    by_variant = {r.data.tags["variant"]: r for r in runs(uri)}
    assert by_variant["broken_for_test"].info.status == "FAILED"
    assert by_variant["torchvision_alexnet"].info.status == "FINISHED"
    arts = [a.path for a in MlflowClient(uri).list_artifacts(by_variant["broken_for_test"].info.run_id)]
    assert schema.ART_ERROR in arts
    (parent,) = runs(uri, kind="batch")
    assert by_variant["torchvision_alexnet"].data.tags[schema.TAG_BATCH] == parent.info.run_id
    assert "mlflow.parentRunId" not in by_variant["torchvision_alexnet"].data.tags  # siblings in the UI's table
    assert parent.data.metrics["runs_failed"] == 1 and parent.data.metrics["runs_finished"] == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, needle",
    [
        (["run", "alexnet2013"], "alexnet2012"),
        (["run", "zfnet", "--set", "bogus=1"], "valid keys"),
        (["run", "zfnet", "--set", "lr=fast"], "not a valid float"),
        (["run", "zfnet", "--set", "schedule=cosine"], "not one of"),
        (["run", "zfnet", "--epochs", "0"], "positive"),
        (["run", "zfnet", "--batch-size", "-3"], "positive"),
        (["run", "zfnet", "--data", "/nonexistent/imagenet"], "nonexistent"),
        (["run", "zfnet", "--dataset", "imagenet21k"], "imagenet21k"),
        (["run"], "--all"),
        (["eval", "zfnet", "--weights", "/nonexistent.pt", "--profile", "smoke"], "not found"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, needle, uri, cli):
    r = cli(*args, "--tracking-uri", uri, cwd=tmp_path, timeout=300)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.slow
def test_empty_data_dir_is_an_error(tmp_path, uri, cli):
    (tmp_path / "empty").mkdir()
    r = cli("run", "zfnet", "--data", str(tmp_path / "empty"), "--tracking-uri", uri, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert str(tmp_path / "empty") in r.stderr, r.stderr


@pytest.mark.slow
def test_eval_rejects_a_file_that_is_not_a_state_dict(tmp_path, cli):
    torch.save({"model": torch.arange(3)}, tmp_path / "w.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    for f, message in (("w.pt", "is not a state dict for zfnet"), ("junk.pt", "cannot load weights")):
        r = cli("eval", "zfnet", "--weights", str(tmp_path / f), "--profile", "smoke", cwd=tmp_path)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert message in r.stderr and str(tmp_path / f) in r.stderr, r.stderr


@pytest.mark.slow
def test_eval_official_weights_missing_says_where_to_put_them(tmp_path, cli):
    env = dict(os.environ, TORCH_HOME=str(tmp_path / "hub"))
    r = cli("eval", "torchvision_alexnet", "--weights", "IMAGENET1K_V1", "--profile", "smoke", cwd=tmp_path, env=env)
    assert r.returncode == 2
    assert "alexnet-owt-7be5be79.pth" in r.stderr and str(tmp_path / "hub") in r.stderr


@pytest.mark.slow
def test_eval_of_a_finished_run_and_of_a_weights_file(tmp_path, uri, cli, runs):
    r = cli(
        "run", "torchvision_alexnet", "--profile", "smoke", "--keep-weights", "--tracking-uri", uri, "--no-report",
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    (run,) = runs(uri)
    r = cli(
        "eval",
        "torchvision_alexnet",
        "--run-id",
        run.info.run_id,
        "--profile",
        "smoke",
        "--tta",
        "center",
        "--tracking-uri",
        uri,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    reported = float(r.stdout.split("top-1 ")[1].split()[0])
    assert reported == pytest.approx(run.data.metrics["center_val_top1"], abs=1e-3)
    # the checkpoint of another architecture is a clear error
    path = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path=schema.ART_CHECKPOINT, tracking_uri=uri, dst_path=str(tmp_path / "dl")
    )
    r = cli("eval", "zfnet", "--weights", path, "--profile", "smoke", cwd=tmp_path)
    assert r.returncode == 2 and "not a state dict for zfnet" in r.stderr


def test_optimizer_param_groups_follow_the_recipe():
    v = variants.get_variant("alexnet2014")
    model = v.build(10)
    opt = engine.build_optimizer(model, v.recipe, 0.01)
    weights, biases = opt.param_groups
    assert biases["lr"] == pytest.approx(0.02) and biases["weight_decay"] == 0.0  # CC2: epsB 2x, no decay
    assert weights["lr"] == 0.01 and weights["weight_decay"] == 5e-4
    assert all(p.dim() == 1 for p in biases["params"])


def test_schedules():
    v = variants.get_variant("alexnet2014")
    assert engine.milestones(v.recipe) == [22, 45, 68]
    opt = engine.build_optimizer(v.build(10), v.recipe, 0.01)
    sched = engine.build_scheduler(opt, v.recipe)
    for _ in range(22):
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * 250 ** (-1 / 3))
    k = replace(variants.get_variant("alexnet2012").recipe, schedule="plateau")  # the paper text's rule (KSH12 s5)
    opt = engine.build_optimizer(variants.get_variant("alexnet2012").build(10), k, 0.01)
    plateau = engine.build_scheduler(opt, k)
    for _ in range(100):
        plateau.step(50.0)  # never improves: drops 3 times (KSH12 s5) and stops
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-5, rel=0.01)


def test_warmup_linear_schedule_moves_every_step():
    v = variants.get_variant("torchvision_alexnet")
    recipe = replace(v.recipe, schedule="warmup_linear", warmup_epochs=0.5, epochs=2, lr=0.01)
    opt = engine.build_optimizer(v.build(10), recipe, 0.01)
    sched = engine.build_scheduler(opt, recipe, steps_per_epoch=10)  # 20 steps, 5 of warmup
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradients: changes nothing, keeps the optimiser-before-scheduler order
        sched.step()
    assert lrs[0] == pytest.approx(0.002) and lrs[4] == pytest.approx(0.01)  # (s + 1) / 5 of the peak
    assert lrs[5] == pytest.approx(0.01) and lrs[-1] == pytest.approx(0.01 / 15)  # then linear to 0 at step 20
    assert all(a > b for a, b in zip(lrs[5:], lrs[6:]))
    engine.step_scheduler(sched, 50.0, recipe)  # the per-epoch hook leaves a per-step schedule alone
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0)


def test_main_returns_2_for_harness_errors(capsys):
    assert main(["show", "nope"]) == 2


@pytest.mark.slow
def test_imagefolder_run_of_real_jpegs_skips_a_corrupt_one(tmp_path, photos, uri, cli, runs):
    """A paper-profile run on an ImageFolder of real photos (scaled down), with one corrupt JPEG skipped and logged."""
    root = Path(shutil.copytree(photos, tmp_path / "photos"))
    (root / "train" / "china" / "broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    r = cli(
        "run",
        "torchvision_alexnet",
        "--data",
        str(root),
        "--dataset-name",
        "photos",
        "--epochs",
        "1",
        "--batch-size",
        "6",
        "--set",
        "crop=64",
        "--set",
        "resize=72",
        "--tracking-uri",
        uri,
        "--no-report",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "broken.JPEG" in r.stderr
    (run,) = runs(uri)
    assert run.data.tags["profile"] == "paper" and run.data.tags["dataset"] == "imagefolder"
    assert run.data.metrics[schema.SKIPPED_IMAGES] == 1
    assert run.data.params["train_size"] == "18" and run.data.params["num_classes"] == "3"
    assert run.data.tags["recipe_modified"] == "true"
    assert set(run.data.tags["modified_keys"].split(",")) == {"batch_size", "crop", "epochs", "resize"}


def test_set_init_by_name_per_variant():
    from harness import config
    from harness.errors import HarnessError

    k = variants.get_variant("alexnet2012")
    assert config.PROXY.all_deviations() and any("He et al." in d for d in config.PROXY.all_deviations())
    proxy = config.resolve(k, RunRequest())
    assert proxy.recipe.init.name == "he2015" and not proxy.recipe_modified
    assert proxy.final_protocols == ("center",)
    paper_init = config.resolve(k, RunRequest(sets=config.parse_set(["init=paper"])))
    assert paper_init.recipe.init == k.recipe.init and paper_init.modified_keys == ("init",)
    assert paper_init.config_hash() != proxy.config_hash()
    assert config.resolve(k, RunRequest(data="/data/imagenet")).final_protocols == ("center", "ten_crop")
    with pytest.raises(HarnessError, match="not one of paper, he2015, pytorch"):
        config.parse_set(["init=xavier"])

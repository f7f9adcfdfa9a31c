"""The training engine end to end: real MLflow stores, real data, real torchrun processes."""

from __future__ import annotations

import shutil
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
from tests.support import one_line_error
from variants import Reported, Variant
from variants.torchvision_ref import RECIPE as TV_RECIPE


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
def test_bad_input_is_one_line_exit_2(tmp_path, args, needle, uri, harness_main, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = harness_main([*args, "--tracking-uri", uri])
    one_line_error(code, err, needle)


@pytest.mark.slow
def test_empty_data_dir_is_an_error(tmp_path, uri, harness_main):
    (tmp_path / "empty").mkdir()
    code, _, err = harness_main(["run", "zfnet", "--data", str(tmp_path / "empty"), "--tracking-uri", uri])
    one_line_error(code, err, str(tmp_path / "empty"))


@pytest.mark.slow
def test_eval_rejects_a_file_that_is_not_a_state_dict(tmp_path, harness_main, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"model": torch.arange(3)}, tmp_path / "w.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    for f, message in (("w.pt", "is not a state dict for zfnet"), ("junk.pt", "cannot load weights")):
        code, _, err = harness_main(["eval", "zfnet", "--weights", str(tmp_path / f), "--profile", "smoke"])
        assert code == 2 and "Traceback" not in err, err
        assert message in err and str(tmp_path / f) in err, err


@pytest.mark.slow
def test_eval_official_weights_missing_says_where_to_put_them(tmp_path, harness_main, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    code, _, err = harness_main(["eval", "torchvision_alexnet", "--weights", "IMAGENET1K_V1", "--profile", "smoke"])
    assert code == 2
    assert "alexnet-owt-7be5be79.pth" in err and str(tmp_path / "hub") in err


@pytest.mark.slow
def test_eval_of_a_finished_run_and_of_a_weights_file(tmp_path, uri, harness_main, runs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = harness_main(
        ["run", "torchvision_alexnet", "--profile", "smoke", "--keep-weights", "--tracking-uri", uri, "--no-report"]
    )
    assert code == 0, err[-2000:]
    (run,) = runs(uri)
    code, out, err = harness_main(
        [
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
        ]
    )
    assert code == 0, err[-2000:]
    reported = float(out.split("top-1 ")[1].split()[0])
    assert reported == pytest.approx(run.data.metrics["center_val_top1"], abs=1e-3)
    # the checkpoint of another architecture is a clear error
    path = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path=schema.ART_CHECKPOINT, tracking_uri=uri, dst_path=str(tmp_path / "dl")
    )
    code, _, err = harness_main(["eval", "zfnet", "--weights", path, "--profile", "smoke"])
    assert code == 2 and "not a state dict for zfnet" in err


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
def test_imagefolder_run_of_real_jpegs_skips_a_corrupt_one(tmp_path, photos, uri, harness_main, runs):
    """A paper-profile run on an ImageFolder of real photos (scaled down), with one corrupt JPEG skipped and logged."""
    root = Path(shutil.copytree(photos, tmp_path / "photos"))
    (root / "train" / "china" / "broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    code, _, err = harness_main(
        [
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
        ]
    )
    assert code == 0, err[-3000:]
    assert "broken.JPEG" in err
    (run,) = runs(uri)
    assert run.data.tags["profile"] == "paper" and run.data.tags["dataset"] == "imagefolder"
    assert run.data.metrics[schema.SKIPPED_IMAGES] == 1
    assert run.data.params["train_size"] == "18" and run.data.params["num_classes"] == "3"
    assert run.data.tags["recipe_modified"] == "true"
    assert set(run.data.tags["modified_keys"].split(",")) == {"batch_size", "crop", "epochs", "resize"}


def test_set_init_by_name_per_variant():
    from harness import config
    from harness.errors import HarnessError
    from harness.profiles import PROXY

    k = variants.get_variant("alexnet2012")
    assert PROXY.all_deviations() and any("He et al." in d for d in PROXY.all_deviations())
    proxy = config.resolve(k, RunRequest())
    assert proxy.recipe.init.name == "he2015" and not proxy.recipe_modified
    assert proxy.final_protocols == ("center", "five_crop")  # 5 crops without mirrors stand for the 10-crop
    paper_init = config.resolve(k, RunRequest(sets=config.parse_set(["init=paper"])))
    assert paper_init.recipe.init == k.recipe.init and paper_init.modified_keys == ("init",)
    assert paper_init.config_hash() != proxy.config_hash()
    assert config.resolve(k, RunRequest(data="/data/imagenet")).final_protocols == ("center", "ten_crop")
    with pytest.raises(HarnessError, match="not one of paper, he2015, pytorch"):
        config.parse_set(["init=xavier"])

"""`harness run --parallel towers|hybrid` end to end under torchrun (2 gloo processes): one MLflow run with the
scheme as a param and its communication metrics, a sharded run resumed after SIGTERM, its checkpoint evaluated on
one device, and the one-line refusals."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

SMALL = ("--profile", "smoke", "--limit-train", "64", "--limit-val", "32", "--device", "cpu", "--no-report")


def torchrun(*args: str, cwd: Path) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "harness",
            *args]  # fmt: skip


def _history(uri: str, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in MlflowClient(uri).get_metric_history(run_id, key))


@pytest.mark.slow
def test_a_towers_run_resumes_after_sigterm_and_its_checkpoint_evaluates_on_one_device(
    tmp_path, uri, runs, harness_main
):
    args = (
        "run",
        "alexnet2012",
        *SMALL,
        "--epochs",
        "2",
        "--parallel",
        "towers",
        "--keep-weights",
        "--tracking-uri",
        uri,
    )
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(torchrun(*args, cwd=tmp_path), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 400
        while not list((tmp_path / "mlruns" / "checkpoints").glob("*/last.pt")):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)  # torchrun forwards it to both workers
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    (run,) = runs(uri)
    assert run.info.status != "FINISHED"

    r = subprocess.run(torchrun(*args, cwd=tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resuming run {run.info.run_id}" in r.stderr
    (again,) = runs(uri)
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    assert again.data.params["parallel"] == "towers" and again.data.params["world_size"] == "2"
    assert _history(uri, run.info.run_id, "val_top1") == [1, 2]
    assert again.data.metrics["comm_bytes_per_step"] > 0 and again.data.metrics["step_seconds"] > 0

    # the run's final checkpoint is the one-device network's state dict: it evaluates in one plain process
    code, out, err = harness_main(
        ["eval", "alexnet2012", "--run-id", run.info.run_id, *SMALL[:-1], "--tracking-uri", uri]
    )
    assert code == 0, err[-3000:]
    assert "top-1" in out


@pytest.mark.slow
def test_a_hybrid_run_logs_one_run_and_sends_less_than_ddp(tmp_path, uri, runs, harness_main):
    args = ("run", "alexnet2014", *SMALL, "--epochs", "1", "--parallel", "hybrid", "--tracking-uri", uri)
    r = subprocess.run(torchrun(*args, cwd=tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = runs(uri)
    assert run.data.params["parallel"] == "hybrid"
    import torch

    from harness.parallel.build import ddp_bytes_per_step
    from variants import get_variant

    with torch.device("meta"):
        model = get_variant("alexnet2014").build(int(run.data.params["num_classes"]))
    # OWT14's point: the fc layers' 58M parameters never cross; only activations and the convs' gradients do
    assert 0 < run.data.metrics["comm_bytes_per_step"] < ddp_bytes_per_step(model, 2) / 4
    # the report reads it back into its "Parallel schemes" section
    code, _, err = harness_main(["report", "--tracking-uri", uri, "--out", str(tmp_path / "report.md")])
    assert code == 0, err
    text = (tmp_path / "report.md").read_text()
    assert "## 10. Parallel schemes" in text and "| alexnet2014 | hybrid | 2 | 1 |" in text


def test_a_scheme_the_world_cannot_use_is_refused_in_one_line_before_anything_is_recorded(uri, harness_main, runs):
    code, _, err = harness_main(["run", "alexnet2012", *SMALL, "--parallel", "towers", "--tracking-uri", uri])
    assert code == 2 and runs(uri) == []
    assert err.strip() == (
        "harness: error: --parallel towers needs 2 ranks per replica (a world of 2, 4, 6, ...), not 1: run under "
        "torchrun --nproc-per-node 2"
    )

"""kill -9 of a training process once its first checkpoint exists; the same command resumes the same MLflow run
to the metrics of an uninterrupted run, epoch by epoch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from harness import schema
from tests.support import env


@pytest.mark.slow
@pytest.mark.parametrize(
    "schedule",
    [
        [],  # OWT14's lr table (CC2's schedule), stepped per epoch
        ["--set", "schedule=warmup_linear", "--set", "warmup_epochs=0.5"],  # the proxy's, stepped per optimiser step
    ],
    ids=["multistep", "warmup_linear"],
)
def test_same_seed_same_metrics_and_resume_after_kill(tmp_path, schedule, make_uri, harness_main, runs):
    """The uninterrupted run and the resume run in this process; only the killed one needs a process of its own."""
    args = ["run", "alexnet2014", "--profile", "smoke", "--epochs", "3", "--no-report", *schedule]
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    code, _, err = harness_main([*args, "--tracking-uri", make_uri(a)])
    assert code == 0, err[-3000:]
    # interrupt a second, identical run with SIGKILL once its first checkpoint exists, then run it again
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args, "--tracking-uri", make_uri(b)],
        cwd=b,
        env=env(),
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
    code, _, err = harness_main([*args, "--tracking-uri", make_uri(b)])
    assert code == 0, err[-3000:]
    assert "resuming" in err
    (ra,), (rb,) = runs(make_uri(a)), runs(make_uri(b))
    assert rb.info.run_id == interrupted.info.run_id and rb.info.status == "FINISHED"
    ca, cb = MlflowClient(make_uri(a)), MlflowClient(make_uri(b))
    for key in ("val_loss", "train_loss", "val_top1", "lr"):
        ha = [(h.step, h.value) for h in ca.get_metric_history(ra.info.run_id, key)]
        hb = sorted({(h.step, h.value) for h in cb.get_metric_history(rb.info.run_id, key)})
        assert ha == hb, key
    assert ra.data.metrics[schema.FINAL_TOP1] == rb.data.metrics[schema.FINAL_TOP1]

"""`--launcher local` (submitit): a run requeued by the time-limit signal resumes to the same metrics."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest
from mlflow.tracking import MlflowClient

from harness import schema


def _submitit_task(root: int) -> psutil.Process | None:
    """The process submitit's local executor runs the job in (`python -m submitit.core._submit`)."""
    for p in psutil.Process(root).children(recursive=True):
        try:
            if "submitit.core._submit" in " ".join(p.cmdline()):
                return p
        except psutil.NoSuchProcess:
            continue
    return None


@pytest.mark.slow
def test_local_executor_run_requeued_by_the_time_limit_signal_resumes_to_the_same_metrics(tmp_path, make_uri, runs):
    """Two `--launcher local` runs of the same configuration; the second gets SIGUSR2 (what submitit's controller
    and Slurm send before the time limit) once its first epoch's checkpoint exists: submitit calls
    `VariantJob.checkpoint`, the job is requeued and resumes from the checkpoint into the same MLflow run."""
    args = ["run", "torchvision_alexnet", "--profile", "smoke", "--epochs", "3", "--set", "width=0.25"]
    args += ["--device", "cpu", "--no-report", "--launcher", "local"]
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    procs = {
        root: subprocess.Popen(
            [sys.executable, "-m", "harness", *args, "--tracking-uri", make_uri(root)],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for root in (a, b)
    }
    deadline = time.monotonic() + 400
    while not list((b / "mlruns" / "checkpoints").glob("*/last.pt")):
        assert time.monotonic() < deadline and procs[b].poll() is None, "no checkpoint"
        time.sleep(0.05)
    task = _submitit_task(procs[b].pid)
    assert task is not None
    task.send_signal(signal.SIGUSR2)
    out = {root: p.communicate(timeout=400) for root, p in procs.items()}
    logs = "".join(f.read_text() for f in sorted((b / "mlruns" / "submitit").rglob("*.err")))
    for root, p in procs.items():
        jobs = "".join(f.read_text() for f in sorted((root / "mlruns" / "submitit").rglob("*.err")))
        assert p.returncode == 0, out[root][1][-1000:] + jobs[-4000:]
    assert "requeued after a time-limit signal" in logs and "resuming run" in logs
    (ra,), (rb,) = runs(make_uri(a)), runs(make_uri(b))
    assert rb.info.status == "FINISHED"  # one run: the requeued job resumed the interrupted one
    ca, cb = MlflowClient(make_uri(a)), MlflowClient(make_uri(b))
    for key in ("val_loss", "train_loss", "val_top1"):
        ha = [(h.step, h.value) for h in ca.get_metric_history(ra.info.run_id, key)]
        hb = sorted({(h.step, h.value) for h in cb.get_metric_history(rb.info.run_id, key)})
        assert ha == hb, key
    assert ra.data.metrics[schema.FINAL_TOP1] == rb.data.metrics[schema.FINAL_TOP1]
    assert ra.data.metrics[schema.FINAL_LOSS] == rb.data.metrics[schema.FINAL_LOSS]

"""torchrun with two CPU processes (gloo) logs one MLflow run that counts every validation image once."""

from __future__ import annotations

import subprocess
import sys

import mlflow
import pytest

from harness import schema


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

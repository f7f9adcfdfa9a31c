"""Failure-safe DDP under torchrun: real gloo processes, a real disk error on rank 0, a rank that cannot see rank
0's checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from harness import schema
from tests.support import free_port, small_file_limit


@pytest.mark.slow
def test_a_disk_error_on_rank_0_fails_the_variant_on_every_rank_and_the_next_one_runs(tmp_path, uri, runs):
    """Rank 0's checkpoint write fails (RLIMIT_FSIZE: the file size limit a full disk or a quota gives), inside
    rank 0's branch at the end of epoch 1. Rank 1 must stop that variant with it, not wait in a collective; the
    variant is FAILED once and the next variant trains on both ranks."""
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
        "torchvision_alexnet",  # width 0.25: a ~28 MB checkpoint, over the limit
        "ksh12_fig1_relu",  # 210k parameters: its checkpoint and weights fit
        "--profile",
        "smoke",
        "--epochs",
        "1",
        "--set",
        "width=0.25",
        "--device",
        "cpu",
        "--dist-timeout",
        "200",
        "--tracking-uri",
        uri,
        "--no-report",
    ]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300, preexec_fn=small_file_limit)
    seconds = time.monotonic() - t0
    assert r.returncode != 0, r.stderr[-3000:]  # a variant failed
    assert seconds < 200, seconds  # no wait for the 200 s collective timeout: the ranks agreed to stop
    by_variant = {run.data.tags["variant"]: run for run in runs(uri)}
    assert set(by_variant) == {"torchvision_alexnet", "ksh12_fig1_relu"}  # one run each: FAILED once
    failed, finished = by_variant["torchvision_alexnet"], by_variant["ksh12_fig1_relu"]
    assert failed.info.status == "FAILED"
    assert finished.info.status == "FINISHED"
    assert finished.data.params["world_size"] == "2"
    assert schema.FINAL_TOP1 in finished.data.metrics
    arts = [a.path for a in MlflowClient(uri).list_artifacts(failed.info.run_id)]
    assert schema.ART_ERROR in arts
    assert "failed" in r.stdout and "finished" in r.stdout  # rank 0's summary
    assert "rank 1: torchvision_alexnet failed: PeerFailed: rank 0 failed: RuntimeError" in r.stderr  # and why


@pytest.mark.slow
def test_a_rank_that_cannot_see_rank_0s_checkpoint_refuses_to_resume(tmp_path, uri, runs):
    """Two ranks whose `--checkpoint-dir ck` is a different folder each (their own working directories: two nodes'
    local disks). Rank 0 finds the interrupted run's checkpoint; rank 1 cannot see it: both refuse in one line,
    before anything is trained, and the interrupted run stays resumable."""
    args = [sys.executable, "-m", "harness", "run", "torchvision_alexnet", "--profile", "smoke", "--epochs", "3"]
    args += ["--set", "width=0.25", "--device", "cpu", "--no-report", "--checkpoint-dir", "ck", "--tracking-uri", uri]
    node0, node1 = tmp_path / "node0", tmp_path / "node1"
    node0.mkdir(), node1.mkdir()
    first = subprocess.Popen(args, cwd=node0, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list((node0 / "ck" / "checkpoints").glob("*/last.pt")):
        assert time.monotonic() < deadline and first.poll() is None, "no checkpoint"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    env = dict(os.environ, WORLD_SIZE="2", LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    ranks = [
        subprocess.Popen(
            args + ["--dist-timeout", "120"],
            cwd=cwd,
            env=env | {"RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r, cwd in enumerate((node0, node1))
    ]
    results = [p.communicate(timeout=300) for p in ranks]
    for p, (_, err) in zip(ranks, results):
        assert p.returncode == 2, err[-2000:]
        assert "harness: error: rank(s) 1 cannot see the checkpoint" in err and "--checkpoint-dir" in err
    (interrupted,) = runs(uri)
    assert interrupted.info.status == "RUNNING"  # untouched: a run from node0 alone resumes it
    assert list((node0 / "ck" / "checkpoints").glob("*/last.pt"))

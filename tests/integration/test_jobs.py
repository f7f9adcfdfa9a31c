"""`run --jobs N`: worker processes give the sequential results, a failed run does not stop the others, and
Ctrl-C stops every worker."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest

from harness import schema
from tests.support import as_foreground, small_file_limit


@pytest.mark.slow
def test_jobs_2_gives_the_sequential_results_and_a_failed_run_does_not_stop_the_others(
    tmp_path, make_uri, runs, harness_main
):
    """`run --jobs 2`: one batch run, one run per (variant, seed), each child's final metrics equal to the
    sequential run's; torchvision_alexnet's worker fails (a real disk error: its checkpoint is over the file size
    limit) and the others finish."""
    common = ["--profile", "smoke", "--epochs", "1", "--set", "width=0.25", "--device", "cpu", "--no-report"]
    seq, par = tmp_path / "seq", tmp_path / "par"
    seq.mkdir(), par.mkdir()
    small = ["ksh12_fig1_relu", "ksh12_fig1_tanh"]
    code, _, err = harness_main(["run", *small, *common, "--tracking-uri", make_uri(seq)])  # sequential
    assert code == 0, err[-3000:]
    r = subprocess.run(
        [sys.executable, "-m", "harness", "run", "torchvision_alexnet", *small, *common, "--jobs", "2"]
        + ["--tracking-uri", make_uri(par)],
        capture_output=True,
        text=True,
        cwd=par,
        timeout=300,
        preexec_fn=small_file_limit,
    )
    assert r.returncode == 1, r.stderr[-3000:]  # one variant failed
    assert "2 at a time" in r.stderr
    want = {run.data.tags["variant"]: run.data.metrics for run in runs(make_uri(seq))}
    got = {run.data.tags["variant"]: run for run in runs(make_uri(par))}
    assert got["torchvision_alexnet"].info.status == "FAILED"
    for name in small:
        assert got[name].info.status == "FINISHED"
        for key in (schema.FINAL_TOP1, schema.FINAL_LOSS, "train_loss"):
            assert got[name].data.metrics[key] == want[name][key], (name, key)
    (parent,) = runs(make_uri(par), kind="batch")
    assert parent.info.status == "FAILED"  # a child failed
    assert {run.data.tags[schema.TAG_BATCH] for run in got.values()} == {parent.info.run_id}
    assert parent.data.metrics["runs_failed"] == 1 and parent.data.metrics["runs_finished"] == len(got) - 1
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines if line.split()[:1] and line.split()[0] in got] == [
        "torchvision_alexnet",
        *small,
    ]  # the summary in the plan's order, whichever finished first


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_and_closes_the_parent_killed(tmp_path, uri, runs):
    # two seeds of one net: both workers train at the same pace (a small net beside a big one can finish its
    # epochs before the big one's first checkpoint on a quiet machine)
    args = [sys.executable, "-m", "harness", "run", "torchvision_alexnet", "--seeds", "2", "--profile", "smoke"]
    args += ["--epochs", "500", "--set", "width=0.25", "--device", "cpu", "--jobs", "2", "--tracking-uri", uri]
    proc = subprocess.Popen(
        args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=as_foreground
    )
    try:
        deadline = time.monotonic() + 300
        while len(list((tmp_path / "mlruns" / "checkpoints").glob("*/last.pt"))) < 2:  # both workers are training
            assert time.monotonic() < deadline and proc.poll() is None, "the workers did not start training"
            time.sleep(0.1)
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert len(workers) >= 2
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # a failed test leaves nothing running (the workers end with their parent)
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive
    (parent,) = runs(uri, kind="batch")
    assert parent.info.status == "KILLED"
    assert sorted(r.info.status for r in runs(uri)) == ["KILLED", "KILLED"]  # each worker closed its run

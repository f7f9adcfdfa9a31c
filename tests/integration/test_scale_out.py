"""Scaling out (issue 16): failure-safe DDP under torchrun (real gloo processes, a real disk error on one rank)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest
from mlflow.tracking import MlflowClient

from harness import schema
from tests.support import free_port

FILE_LIMIT = 8 * 2**20  # bytes: above the SQLite store and the small net's files, below the wide net's checkpoint


def _small_file_limit() -> None:  # in the torchrun process, inherited by both ranks: only rank 0 writes files
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


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
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300, preexec_fn=_small_file_limit)
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
        preexec_fn=_small_file_limit,
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


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@pytest.mark.slow
def test_server_answers_on_localhost_and_receives_a_run(tmp_path, uri, cli):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "harness", "server", "--port", str(port), "--tracking-uri", uri, "--workers", "1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.5)
        listening = {
            c.laddr.ip
            for p in [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
            for c in p.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        assert listening == {"127.0.0.1"}  # not 0.0.0.0: reachable from this host only
        work = tmp_path / "work"
        work.mkdir()
        http = f"http://127.0.0.1:{port}"
        args = ["run", "ksh12_fig1_relu", "--profile", "smoke", "--epochs", "1", "--device", "cpu", "--no-report"]
        args += ["--keep-weights"]  # the smoke profile keeps none
        r = cli(*args, "--tracking-uri", http, cwd=work)
        assert r.returncode == 0, r.stderr[-3000:]
        exps = _post(f"{http}/api/2.0/mlflow/experiments/search", {"max_results": 10})["experiments"]
        ids = [e["experiment_id"] for e in exps if e["name"] == "synthetic-smoke"]
        found = _post(f"{http}/api/2.0/mlflow/runs/search", {"experiment_ids": ids})["runs"]
        assert [run["info"]["status"] for run in found] == ["FINISHED"]
        tags = {t["key"]: t["value"] for t in found[0]["data"]["tags"]}
        assert tags["variant"] == "ksh12_fig1_relu"
        # the artifacts went through the server into its destination beside the SQLite store
        assert list((tmp_path / "mlruns" / "artifacts").rglob("final.pt"))
    finally:
        server.send_signal(signal.SIGINT)  # `harness server` stops the mlflow server's process group
        server.wait(timeout=60)
    assert not psutil.pid_exists(server.pid) or psutil.Process(server.pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
def test_two_sweep_workers_on_one_journal_study_run_distinct_trials(tmp_path, uri, runs, cli):
    journal = tmp_path / "shared" / "study.log"
    r = cli(
        "sweep",
        "ksh12_fig1_relu",
        "--space",
        "lr",
        "--profile",
        "smoke",
        "--epochs",
        "2",
        "--trials",
        "4",
        "--jobs",
        "2",
        "--storage",
        f"journal:{journal}",
        "--device",
        "cpu",
        "--tracking-uri",
        uri,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    import optuna

    from harness.sweep import OWNER_ATTR

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    (study,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=study.study_name, storage=storage).trials
    assert len(trials) == 4
    assert all(t.state.is_finished() for t in trials)
    assert len({t.params["lr"] for t in trials}) == 4  # the workers did not draw the same trials
    pids = {t.user_attrs[OWNER_ATTR].split()[0] for t in trials}
    assert len(pids) == 2  # two processes ran trials: 2 each
    (parent,) = runs(uri, kind="sweep")
    assert parent.data.metrics[schema.N_TRIALS] == 4  # the parent records the whole study, every worker's trials
    children = runs(uri, kind="trial")
    assert len(children) == 4
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    # `run --from-sweep` reads the best trial from the same storage
    from harness.sweep import best_params

    best = best_params(study.study_name, uri, "ksh12_fig1_relu", f"journal:{journal}")
    assert set(best) == {"lr"}


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
    for root, p in procs.items():
        assert p.returncode == 0, out[root][1][-3000:]
    logs = "".join(f.read_text() for f in (b / "mlruns" / "submitit").rglob("*.err"))
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


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_and_closes_the_parent_killed(tmp_path, uri, runs):
    # two seeds of one net: both workers train at the same pace (a small net beside a big one can finish its
    # epochs before the big one's first checkpoint on a quiet machine)
    args = [sys.executable, "-m", "harness", "run", "torchvision_alexnet", "--seeds", "2", "--profile", "smoke"]
    args += ["--epochs", "500", "--set", "width=0.25", "--device", "cpu", "--jobs", "2", "--tracking-uri", uri]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(list((tmp_path / "mlruns" / "checkpoints").glob("*/last.pt"))) < 2:  # both workers are training
        assert time.monotonic() < deadline and proc.poll() is None, "the workers did not start training"
        time.sleep(0.1)
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert len(workers) >= 2
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive
    (parent,) = runs(uri, kind="batch")
    assert parent.info.status == "KILLED"
    assert sorted(r.info.status for r in runs(uri)) == ["KILLED", "KILLED"]  # each worker closed its run

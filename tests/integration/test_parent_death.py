"""No process outlives its parent (harness.lifeline): kill -9 of `run --jobs 2`, `run --launcher local`, `server`
and a sweep with a worker leaves no process behind within seconds. Real processes, real MLflow stores and a real
server: each test marks the harness's environment, kills the harness with SIGKILL, and looks for every process
that carries the mark (the children and their children, whoever they were re-parented to)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.support import env as _env
from tests.support import free_port as _free_port

MARK = "HARNESS_TEST_LIFELINE"
WITHIN_S = 15.0  # the watcher's poll (0.25 s) and grace (5 s), with room for a loaded machine
SMALL = ["--profile", "smoke", "--epochs", "50", "--set", "width=0.25", "--device", "cpu"]


def _start(args: list[str], root: Path) -> tuple[subprocess.Popen, str]:
    """`python -m harness ARGS` in its own session (so that the test's group is never signalled), marked."""
    mark = uuid.uuid4().hex
    log = (root / "harness.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args], cwd=root, env=_env() | {MARK: mark},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    return proc, mark


def _marked(mark: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and p.environ().get(MARK) == mark:
                found.append(p)
        except psutil.Error:
            continue
    return found


def _until(done: Callable[[], bool], proc: subprocess.Popen, root: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("not ready: " + (root / "harness.log").read_text()[-3000:])
        time.sleep(0.25)


def _kill9(proc: subprocess.Popen, mark: str) -> tuple[int, list[str], float]:
    """SIGKILL the harness; (how many processes it had started, those still alive after WITHIN_S, seconds until the
    last one ended). Survivors are killed afterwards, so that a failing test leaves nothing behind."""
    started = [p for p in _marked(mark) if p.pid != proc.pid]
    assert started, "the harness had started nothing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    t0 = time.monotonic()
    while _marked(mark) and time.monotonic() - t0 < WITHIN_S:
        time.sleep(0.1)
    took = time.monotonic() - t0
    survivors = _marked(mark)
    print(f"kill -9: {len(started)} started, {len(survivors)} alive after {took:.1f} s", file=sys.stderr)
    names = [" ".join(p.cmdline()[1:4]) for p in survivors]
    for p in survivors:
        p.kill()
    return len(started), names, took


def _variant_runs(uri: str, runs) -> list:
    try:
        return runs(uri)
    except Exception:  # noqa: BLE001 - the store is not created yet
        return []


@pytest.mark.slow
def test_killing_run_jobs_2_stops_both_workers_and_they_close_their_runs_killed(tmp_path, uri, runs):
    many = [*SMALL[:2], "--epochs", "500", *SMALL[4:]]  # neither worker finishes before the kill
    proc, mark = _start(["run", "ksh12_fig1_relu", "ksh12_fig1_tanh", *many, "--jobs", "2", "--tracking-uri", uri],
                        tmp_path)  # fmt: skip
    # both workers are training (each wrote a checkpoint), past setting up their runs: a worker stopped while its
    # run is being created or its first records written contends with the other for SQLite's lock
    _until(lambda: len(list((tmp_path / "mlruns" / "checkpoints").glob("*/last.pt"))) == 2, proc, tmp_path)
    started, survivors, took = _kill9(proc, mark)
    assert started >= 2 and survivors == [], (survivors, took)
    assert [r.info.status for r in runs(uri)] == ["KILLED", "KILLED"]  # SIGTERM first: each closed its own run
    (batch,) = runs(uri, kind="batch")
    assert batch.info.status == "RUNNING"  # its owner is gone: the next batch closes it (tests/test_batch_owner.py)


@pytest.mark.slow
def test_killing_run_launcher_local_stops_the_controller_and_the_task(tmp_path, uri, runs):
    proc, mark = _start(["run", "ksh12_fig1_relu", *SMALL, "--launcher", "local", "--tracking-uri", uri], tmp_path)
    _until(lambda: len(_variant_runs(uri, runs)) == 1, proc, tmp_path)
    started, survivors, took = _kill9(proc, mark)
    assert started >= 2 and survivors == [], (survivors, took)  # submitit's controller, the watcher, the task
    assert [r.info.status for r in runs(uri)] == ["KILLED"]  # SIGINT first (submitit's tasks ignore SIGTERM)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_killing_server_stops_mlflow_and_its_workers(tmp_path, uri):
    port = _free_port()
    proc, mark = _start(["server", "--port", str(port), "--tracking-uri", uri, "--workers", "1"], tmp_path)
    health = f"http://127.0.0.1:{port}/health"
    _until(lambda: _answers(health), proc, tmp_path)
    started, survivors, took = _kill9(proc, mark)
    assert started >= 3 and survivors == [], (survivors, took)  # the watcher, mlflow server, uvicorn, ...
    assert not _answers(health)


@pytest.mark.slow
def test_killing_a_sweep_stops_its_worker(tmp_path, uri, runs):
    args = ["sweep", "ksh12_fig1_relu", "--space", "lr", *SMALL, "--trials", "2", "--jobs", "2", "--tracking-uri", uri]
    proc, mark = _start(args, tmp_path)
    _until(lambda: len(_variant_runs(uri, lambda u: runs(u, kind="trial"))) == 2, proc, tmp_path)  # both trials
    started, survivors, took = _kill9(proc, mark)
    assert started >= 2 and survivors == [], (survivors, took)  # the watcher and the worker


def test_an_exited_owner_nobody_reaped_counts_as_gone():
    """A parent killed by kill -9 stays a zombie until its own parent reaps it: its children must not wait for that."""
    from harness import locks

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = locks.Owner(locks.hostname(), child.pid, locks.process_start(child.pid))
    deadline = time.monotonic() + 60
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:  # exited, not reaped (no wait() yet)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert locks.alive(owner) is False
    child.wait()
    assert locks.alive(owner) is False

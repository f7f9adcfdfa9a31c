"""SIGTERM to a run, a sweep and the UI: exit 143 and one line, the run or sweep and its trial closed KILLED,
the MLflow server and its workers gone; the next run resumes the interrupted one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import env as _env
from tests.support import harness_process, mlflow_runs, store_uri

SMOKE = ("torchvision_alexnet", "--profile", "smoke")


def start(*args: str, cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "w") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "harness", *args], cwd=cwd, env=_env(), stdout=f, stderr=subprocess.STDOUT
        )


def terminate_once(args: tuple[str, ...], cwd: Path, log_name: str, ready: Callable[[], object], what: str) -> None:
    """Start `harness ARGS`, send SIGTERM once `ready()` holds: exit 143 and one line, no traceback."""
    proc = start(*args, cwd=cwd, log=cwd / log_name)
    try:
        wait_for(ready, proc, 300, what)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
    log = (cwd / log_name).read_text()
    assert "harness: terminated (SIGTERM)" in log and "Traceback" not in log, log[-3000:]


def wait_for(condition: Callable[[], object], proc: subprocess.Popen | None, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the process ended (status {proc.returncode}) before {what}")
        time.sleep(0.05)
    pytest.fail(f"no {what} within {timeout} s")


@pytest.mark.slow
def test_sigterm_during_a_run_kills_it_cleanly_and_the_next_run_resumes_it(tmp_path: Path) -> None:
    uri = store_uri(tmp_path)
    args = (*SMOKE, "--epochs", "4", "--tracking-uri", uri, "--no-report")
    checkpoints = tmp_path / "mlruns" / "checkpoints"
    terminate_once(("run", *args), tmp_path, "first.log", lambda: list(checkpoints.glob("*/last.pt")), "a checkpoint")
    (run,) = mlflow_runs(uri)
    assert run.info.status == "KILLED"
    (ckpt,) = (tmp_path / "mlruns" / "checkpoints").glob("*/last.pt")  # the last whole epoch's checkpoint stays

    r = harness_process("run", *args, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resuming run {run.info.run_id}" in r.stderr
    (again,) = mlflow_runs(uri)
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    from mlflow.tracking import MlflowClient

    steps = sorted(m.step for m in MlflowClient(uri).get_metric_history(run.info.run_id, "val_top1"))
    assert steps == [1, 2, 3, 4]
    assert not ckpt.exists()


@pytest.mark.slow
def test_sigterm_during_a_sweep_closes_the_sweep_and_its_trial(tmp_path: Path) -> None:
    import optuna

    uri = store_uri(tmp_path)
    args = ("sweep", *SMOKE, "--trials", "3", "--epochs", "4", "--space", "lr", "--tracking-uri", uri)
    checkpoints = tmp_path / "mlruns" / "checkpoints"
    terminate_once(args, tmp_path, "sweep.log", lambda: list(checkpoints.glob("sweep-*-trial-0.pt")), "a trial")
    (parent,) = mlflow_runs(uri, "sweep")
    (trial,) = mlflow_runs(uri, "trial")
    assert parent.info.status == "KILLED" and trial.info.status == "KILLED"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    (name,) = optuna.get_all_study_names(storage)
    states = [t.state for t in optuna.load_study(study_name=name, storage=storage).trials]
    assert states == [optuna.trial.TrialState.FAIL]  # not left RUNNING


def _children(pid: int) -> set[int]:
    """Every live descendant of `pid` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited (it waits for a parent to collect its status)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")
def test_sigterm_to_ui_stops_the_mlflow_server_and_its_workers(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    uri = store_uri(tmp_path)
    (tmp_path / "mlruns").mkdir()
    MlflowClient(uri).search_experiments()  # creates the store
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = start("ui", "--port", str(port), "--tracking-uri", uri, cwd=tmp_path, log=tmp_path / "ui.log")
    family: set[int] = set()
    try:
        wait_for(lambda: _listening(port), proc, 180, "MLflow server listening")
        family = _children(proc.pid)
        assert family, "the server runs in child processes"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
        wait_for(lambda: not any(_alive(p) for p in family), None, 20, "server processes gone")
        assert not _listening(port)
    finally:
        for pid in [proc.pid, *family]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert "Traceback" not in (tmp_path / "ui.log").read_text()

"""Crash consistency of the records (docs/security.md): whatever instant a process dies and whoever
else writes, the store holds one run per configuration with each epoch exactly once, and the next command finishes
the job. Real processes, SIGKILL, file locks and a SQLite MLflow store under tmp_path.

A process is killed (or paused) at an exact point by `HOOK_SCRIPT`: the harness's own command line, with
`Tracker.log_metrics` wrapped to SIGKILL the process just before (or after) it logs a given metric at a given step, or
to pause there until a file appears. Networks at a quarter of their width (`--set width=0.25`) keep each process to
seconds of training.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
import torch
from mlflow.tracking import MlflowClient

from harness import checkpoint, locks, schema
from harness.config import resolve
from harness.request import RunRequest
from harness.sweep import studies
from harness.sweep.trials import trial_checkpoint
from tests.support import ROOT, harness_here, mlflow_runs, store_uri
from variants import get_variant

ENV = os.environ | {"PYTHONPATH": str(ROOT)}  # this checkout's harness in every subprocess, whatever is installed
VARIANT = "torchvision_alexnet"
EXPERIMENT = "synthetic-smoke"

HOOK_SCRIPT = """
import os, sys, time
from pathlib import Path
from harness import tracking
key, at, when = os.environ["HOOK_KEY"], int(os.environ["HOOK_STEP"]), os.environ["HOOK_WHEN"]
log_metrics = tracking.Tracker.log_metrics
def hooked_log_metrics(self, metrics, step=0):
    hit = key in metrics and step == at
    if hit and when == "kill-before":
        os.kill(os.getpid(), 9)
    log_metrics(self, metrics, step)
    if hit and when == "kill-after":
        os.kill(os.getpid(), 9)
    if hit and when.startswith("pause-until:"):
        go = Path(when.removeprefix("pause-until:"))
        Path(str(go) + ".paused").touch()
        while not go.exists():
            time.sleep(0.05)
tracking.Tracker.log_metrics = hooked_log_metrics
from harness.cli import main
sys.exit(main(sys.argv[1:]))
"""


WIDTH = ["--set", "width=0.25"]


def run_args(uri: str, epochs: int, *extra: str) -> list[str]:
    return [
        "run",
        VARIANT,
        "--profile",
        "smoke",
        "--epochs",
        str(epochs),
        *WIDTH,
        "--no-report",
        "--tracking-uri",
        uri,
        *extra,
    ]


def harness(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """`harness ARGS` in a process of its own: where another process is the point (a lock, a live owner)."""
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=timeout
    )


def again(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The next command, after a kill or on a prepared store, in this process (the process that was killed was the
    point; the one that resumes needs no start-up of its own)."""
    return harness_here(*args, cwd=cwd)


class Background:
    """`harness ARGS` started in the background (with `hook`: under HOOK_SCRIPT, hook = (key, step, when)); its
    stdout and stderr go to files (a pipe nobody reads could fill with progress output and stall it)."""

    def __init__(self, args: list[str], cwd: Path, name: str, hook: tuple[str, int, str] | None = None) -> None:
        self.out, self.err = cwd / f"{name}.out", cwd / f"{name}.err"
        cmd, env = [sys.executable, "-m", "harness", *args], ENV
        if hook is not None:
            cmd = [sys.executable, "-c", HOOK_SCRIPT, *args]
            env = ENV | {"HOOK_KEY": hook[0], "HOOK_STEP": str(hook[1]), "HOOK_WHEN": hook[2]}
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        self.pid = self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        return self.err.read_text()

    def finish(self, timeout: float = 600) -> tuple[int, str, str]:
        code = self.proc.wait(timeout)
        return code, self.out.read_text(), self.err.read_text()


def killed_at(args: list[str], cwd: Path, key: str, step: int, when: str) -> subprocess.CompletedProcess:
    """`harness ARGS`, SIGKILLed by itself just before (`when` = "kill-before") or after ("kill-after") it logs metric
    `key` at `step`."""
    env = ENV | {"HOOK_KEY": key, "HOOK_STEP": str(step), "HOOK_WHEN": when}
    r = subprocess.run(
        [sys.executable, "-c", HOOK_SCRIPT, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )
    assert r.returncode == -signal.SIGKILL, r.stderr[-3000:]
    return r


def wait_for(condition, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def config_hash(epochs: int) -> str:
    """The configuration `run_args(uri, epochs)` trains."""
    req = RunRequest(names=(VARIANT,), profile="smoke", epochs=epochs, sets={"width": 0.25})
    return resolve(get_variant(VARIANT), req).config_hash()


def history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in MlflowClient(uri).get_metric_history(run_id, key))


def steps(uri: str, run_id: str, key: str) -> list[int]:
    return [s for s, _ in history(uri, run_id, key)]


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# --- locks and temporary files (no training) ------------------------------------------------------------------------


def test_a_held_lock_names_its_holder_to_another_process_and_is_released_with_the_file(tmp_path):
    path = tmp_path / "cfg" / "abc.lock"
    probe = (
        "import sys; from pathlib import Path; from harness import locks\n"
        "try:\n"
        "    with locks.hold(Path(sys.argv[1]), 'cfg abc'):\n"
        "        print('got it')\n"
        "except locks.Busy as e:\n"
        "    print(e, e.holder.pid); sys.exit(2)\n"
    )
    with locks.hold(path, "cfg abc"):
        assert path.read_text().split()[:2] == [str(os.getpid()), locks.hostname()]
        r = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, env=ENV)
        assert r.returncode == 2 and f"in use by PID {os.getpid()} on {locks.hostname()}" in r.stdout
        assert r.stdout.split()[-1] == str(os.getpid())
    assert not path.exists()  # released and removed
    r = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0 and "got it" in r.stdout


def test_owner_liveness_checks_pid_host_and_start_time():
    me = locks.owner()
    assert locks.alive(me) is True
    assert locks.alive(locks.Owner(me.host, dead_pid(), "")) is False
    assert locks.alive(locks.Owner("some-other-host", me.pid, me.start)) is None
    if me.start:  # this PID, reused by another process (another start time)
        assert locks.alive(locks.Owner(me.host, me.pid, str(int(me.start) + 1))) is False
    assert locks.parse_owner(me.text()) == me and locks.parse_owner("") is None


def test_checkpoint_writes_use_a_writer_own_temporary_and_leave_none(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save(path, epoch=1)
    assert list(tmp_path.iterdir()) == [path] and checkpoint.load(path)["epoch"] == 1
    names = {locks.unique_tmp(path).name for _ in range(3)}
    assert len(names) == 3 and all(n.startswith(f"last.pt.{os.getpid()}.") and n.endswith(".tmp") for n in names)

    def fail(state, f):
        Path(f).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(OSError):
        checkpoint.save(path, epoch=2)
    assert list(tmp_path.iterdir()) == [path]  # the old checkpoint intact, no temporary left
    monkeypatch.undo()
    stale = tmp_path / f"last.pt.{dead_pid()}.0a1b2c3d.tmp"  # a writer that was killed mid-write
    live = tmp_path / f"last.pt.{os.getpid()}.0a1b2c3d.tmp"
    stale.write_bytes(b"x")
    live.write_bytes(b"x")
    assert locks.remove_stale_tmp(path) == [stale] and live.exists()


def test_an_unloadable_checkpoint_is_reported_and_moved_aside(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.save(path, model={}, optimizer={}, scheduler={}, epoch=1, rng={}, history=[], config_hash="h")
    assert checkpoint.check_training(path, "h") is None
    assert "config hash h" in checkpoint.check_training(path, "other")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert checkpoint.check_training(path, "h")
    aside = checkpoint.move_aside(path)
    assert (
        not path.exists() and aside.name.startswith("last.pt.corrupt-") and aside.read_bytes() == data[: len(data) // 2]
    )


# --- 1. concurrent commands -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_configuration_locked_by_another_process_is_refused_in_one_line_or_waited_for(tmp_path):
    uri = store_uri(tmp_path)
    args = run_args(uri, 1)
    h = config_hash(1)
    lock = tmp_path / "mlruns" / "checkpoints" / f"{VARIANT}-{h}" / f"{h}.lock"
    with locks.hold(lock, "test"):
        r = harness(args, tmp_path)
        assert r.returncode == 2 and r.stdout == "", r.stderr[-3000:]
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert f"PID {os.getpid()}" in r.stderr and "--wait" in r.stderr
        assert mlflow_runs(uri) == []  # nothing recorded
        waiter = Background([*args, "--wait"], tmp_path, "waiter")
        wait_for(lambda: "waiting for" in waiter.stderr() or not waiter.running(), "the waiter to wait")
        assert f"waiting for PID {os.getpid()}" in waiter.stderr()
        time.sleep(1)
        assert waiter.running()
    code, out, err = waiter.finish()
    assert code == 0, err[-3000:]
    assert "finished" in out
    (run,) = mlflow_runs(uri)
    assert run.info.status == "FINISHED" and steps(uri, run.info.run_id, "val_top1") == [1]


@pytest.mark.slow
def test_a_second_run_of_a_training_configuration_is_refused_and_a_waiter_skips_after_it(tmp_path):
    uri = store_uri(tmp_path)
    epochs = 3
    go = tmp_path / "go"  # the first process pauses after recording epoch 1 until this file exists
    first = Background(run_args(uri, epochs), tmp_path, "first", hook=("val_top1", 1, f"pause-until:{go}"))
    wait_for(lambda: Path(f"{go}.paused").exists() or not first.running(), "the first run's epoch 1")
    waiter = Background([*run_args(uri, epochs), "--wait"], tmp_path, "waiter")
    second = harness(run_args(uri, epochs), tmp_path)
    assert second.returncode == 2 and second.stdout == "", second.stderr[-3000:]
    assert len(second.stderr.strip().splitlines()) == 1 and f"in use by PID {first.pid} " in second.stderr
    wait_for(lambda: "waiting for" in waiter.stderr() or not waiter.running(), "the waiter to wait")
    assert first.running() and waiter.running()
    go.touch()
    code, _, err = first.finish()
    assert code == 0, err[-3000:]
    code, out, err = waiter.finish()
    assert code == 0, err[-3000:]
    assert f"waiting for PID {first.pid}" in err and "skipped" in out
    (run,) = mlflow_runs(uri)
    assert run.info.status == "FINISHED"
    for key in schema.EPOCH_METRICS:
        assert steps(uri, run.info.run_id, key) == list(range(1, epochs + 1)), key
    assert steps(uri, run.info.run_id, schema.FINAL_TOP1) == [epochs]
    assert steps(uri, run.info.run_id, schema.SKIPPED_IMAGES) == [0]
    assert not list((tmp_path / "mlruns" / "checkpoints").glob("*/*"))  # no checkpoint, temporary or lock left


@pytest.mark.slow
def test_two_first_commands_in_a_fresh_store_both_record(tmp_path):
    uri = store_uri(tmp_path)
    procs = [Background([*run_args(uri, 1), "--seed", str(seed)], tmp_path, f"seed{seed}") for seed in (0, 1)]
    for p in procs:
        code, _, err = p.finish()
        assert code == 0, err[-3000:]
    done = mlflow_runs(uri)
    assert sorted(r.data.params["seed"] for r in done) == ["0", "1"]
    assert all(r.info.status == "FINISHED" for r in done)


# --- 2, 5. checkpoint before metrics; a resume logs only what the run lacks; a corrupt checkpoint -------------------

EPOCHS = 3


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    uri = store_uri(root)
    r = again(run_args(uri, EPOCHS), root)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = mlflow_runs(uri)
    return uri, run


def assert_resumes_in_the_same_run(uri: str, root: Path, interrupted, uninterrupted, says: str = "") -> None:
    """The same command again resumes the interrupted run (saying so), finishes it, and matches an uninterrupted run."""
    r = again(run_args(uri, EPOCHS), root)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resuming run {interrupted.info.run_id}{says}" in r.stderr
    (run,) = mlflow_runs(uri)
    assert run.info.run_id == interrupted.info.run_id and run.info.status == "FINISHED"
    assert_same_as_uninterrupted(uri, run, uninterrupted)


def assert_same_as_uninterrupted(uri: str, run, uninterrupted) -> None:
    """Each epoch exactly once, with the uninterrupted run's values; the final metrics once and equal."""
    a_uri, a = uninterrupted
    for key in schema.EPOCH_METRICS:
        assert steps(uri, run.info.run_id, key) == list(range(1, EPOCHS + 1)), key
    for key in ("train_loss", "val_loss", "val_top1", "lr", schema.TRAIN_ERR):
        assert history(uri, run.info.run_id, key) == history(a_uri, a.info.run_id, key), key
    for key in (schema.FINAL_TOP1, schema.FINAL_TOP5, schema.LEARNED):
        assert history(uri, run.info.run_id, key) == history(a_uri, a.info.run_id, key), key
    assert history(uri, run.info.run_id, schema.SKIPPED_IMAGES) == [(0, 0.0)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "key, step, when, checkpoint_epoch",
    [
        ("val_top1", 1, "kill-after", 1),  # the case: killed right after the first epoch's metrics appear
        ("val_top1", 2, "kill-before", 2),  # between epoch 2's checkpoint and its metrics
        (schema.FINAL_TOP1, EPOCHS, "kill-after", EPOCHS),  # after the final metrics, before the run is closed
    ],
    ids=["after-epoch-1-metrics", "before-epoch-2-metrics", "after-final-metrics"],
)
def test_a_kill_around_an_epoch_metrics_resumes_with_each_epoch_once(
    tmp_path, uninterrupted, key, step, when, checkpoint_epoch
):
    uri = store_uri(tmp_path)
    killed_at(run_args(uri, EPOCHS), tmp_path, key, step, when)
    (ckpt,) = (tmp_path / "mlruns" / "checkpoints").glob("*/last.pt")
    assert torch.load(ckpt, weights_only=True)["epoch"] == checkpoint_epoch  # the checkpoint landed first
    (interrupted,) = mlflow_runs(uri)
    assert interrupted.info.status == "RUNNING"
    assert max(steps(uri, interrupted.info.run_id, "val_top1"), default=0) <= checkpoint_epoch
    assert_resumes_in_the_same_run(uri, tmp_path, interrupted, uninterrupted)


@pytest.mark.slow
def test_a_run_killed_before_its_first_checkpoint_is_trained_again_in_the_same_run(tmp_path, uninterrupted):
    uri = store_uri(tmp_path)
    killed_at(run_args(uri, EPOCHS), tmp_path, schema.SKIPPED_IMAGES, 0, "kill-after")
    (interrupted,) = mlflow_runs(uri)
    assert_resumes_in_the_same_run(uri, tmp_path, interrupted, uninterrupted, says=" from epoch 1")


@pytest.mark.slow
def test_a_truncated_checkpoint_is_moved_aside_and_the_configuration_starts_over(tmp_path, uninterrupted):
    uri = store_uri(tmp_path)
    killed_at(run_args(uri, EPOCHS), tmp_path, "val_top1", 2, "kill-before")
    (ckpt,) = (tmp_path / "mlruns" / "checkpoints").glob("*/last.pt")
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    (interrupted,) = mlflow_runs(uri)
    r = again(run_args(uri, EPOCHS), tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    said = [line for line in r.stderr.splitlines() if "cannot be resumed" in line]
    assert len(said) == 1 and "moved to last.pt.corrupt-" in said[0] and interrupted.info.run_id in said[0]
    (aside,) = ckpt.parent.glob("last.pt.corrupt-*")
    assert aside.read_bytes() == data[: len(data) // 2] and not ckpt.exists()
    old, new = mlflow_runs(uri)
    assert old.info.run_id == interrupted.info.run_id and old.info.status == "FAILED"
    error = mlflow.artifacts.download_artifacts(
        run_id=old.info.run_id, artifact_path=schema.ART_ERROR, tracking_uri=uri, dst_path=str(tmp_path / "dl")
    )
    assert "cannot be resumed" in Path(error).read_text()
    assert new.info.status == "FINISHED"
    assert_same_as_uninterrupted(uri, new, uninterrupted)
    r = again(run_args(uri, EPOCHS), tmp_path)  # and the next command skips it
    assert r.returncode == 0 and "skipped" in r.stdout and len(mlflow_runs(uri)) == 2


# --- 4. only RUNNING runs without a live owner are closed -----------------------------------------------------------


@pytest.mark.slow
def test_a_failed_run_keeps_its_status_and_end_time(tmp_path):
    uri = store_uri(tmp_path)
    args = run_args(uri, 1, "--set", "lr=1e6")
    r = again(args, tmp_path)
    assert r.returncode == 1, r.stderr[-3000:]
    (first,) = mlflow_runs(uri)
    assert first.info.status == "FAILED"
    r = again(args, tmp_path)
    assert r.returncode == 1, r.stderr[-3000:]
    by_id = {r.info.run_id: r for r in mlflow_runs(uri)}
    assert len(by_id) == 2
    kept = by_id[first.info.run_id]
    assert kept.info.status == "FAILED" and kept.info.end_time == first.info.end_time


def _fake_interrupted_run(uri: str, owner: str, epochs: int, with_epoch_metric: bool) -> str:
    """A RUNNING variant run of the smoke configuration, written by `owner` (as `harness run` tags it)."""
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name(EXPERIMENT)
    artifacts = Path(uri.removeprefix("sqlite:///")).parent / "artifacts" / EXPERIMENT  # as `harness run` lays out
    exp_id = exp.experiment_id if exp else c.create_experiment(EXPERIMENT, artifact_location=artifacts.as_uri())
    run = c.create_run(
        exp_id,
        run_name=VARIANT,
        tags={schema.TAG_KIND: "variant", schema.TAG_CONFIG_HASH: config_hash(epochs), schema.TAG_OWNER: owner},
    )
    if with_epoch_metric:
        c.log_metric(run.info.run_id, "val_top1", 1.0, step=1)
    return run.info.run_id


@pytest.mark.slow
def test_a_running_run_with_a_live_owner_is_never_closed(tmp_path):
    uri = store_uri(tmp_path)
    (tmp_path / "mlruns").mkdir()
    MlflowClient(uri).search_experiments()
    live = _fake_interrupted_run(uri, locks.owner().text(), 1, with_epoch_metric=True)  # this test process
    r = harness(run_args(uri, 1), tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr[-3000:]
    assert f"run {live} is being trained by PID {os.getpid()}" in r.stderr
    (run,) = mlflow_runs(uri)
    assert run.info.status == "RUNNING"


@pytest.mark.slow
def test_a_running_run_of_a_dead_owner_is_closed_or_trained_again(tmp_path):
    uri = store_uri(tmp_path)
    (tmp_path / "mlruns").mkdir()
    MlflowClient(uri).search_experiments()
    dead = locks.Owner(locks.hostname(), dead_pid()).text()
    with_epochs = _fake_interrupted_run(uri, dead, 1, with_epoch_metric=True)
    r = again(run_args(uri, 1), tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    closed, new = mlflow_runs(uri)
    assert closed.info.run_id == with_epochs and closed.info.status == "KILLED" and new.info.status == "FINISHED"
    # no epoch recorded: the same run is trained from epoch 1
    uri2 = store_uri(tmp_path / "b")
    (tmp_path / "b" / "mlruns").mkdir(parents=True)
    MlflowClient(uri2).search_experiments()
    empty = _fake_interrupted_run(uri2, dead, 1, with_epoch_metric=False)
    r = again(run_args(uri2, 1), tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = mlflow_runs(uri2)
    assert run.info.run_id == empty and run.info.status == "FINISHED"


# --- 6. a sweep killed mid-trial ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_sweep_killed_mid_trial_is_cleaned_up_by_the_next_sweep(tmp_path):
    uri = store_uri(tmp_path)
    study = "killed"
    args = ["sweep", VARIANT, "--profile", "smoke", "--epochs", "2", "--space", "lr", "--study-name", study]
    args += [*WIDTH, "--tracking-uri", uri, "--pruner", "none"]
    killed = killed_at([*args, "--trials", "2"], tmp_path, "val_top1", 1, "kill-after")
    ckpt = trial_checkpoint(uri, study, 0)
    assert ckpt.is_file()
    storage = f"sqlite:///{studies.storage_path(uri)}"
    assert optuna.load_study(study_name=study, storage=storage).trials[0].state.name == "RUNNING"
    (trial_run,) = mlflow_runs(uri, "trial")
    assert trial_run.info.status == "RUNNING"

    r = again([*args, "--trials", "1"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "trial 0 of killed was left running by PID" in r.stderr, killed.stderr[-2000:] + r.stderr[-3000:]
    assert not ckpt.exists() and not list(ckpt.parent.glob(f"{ckpt.name}*"))
    trials = optuna.load_study(study_name=study, storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    c = MlflowClient(uri)
    dead = c.get_run(trial_run.info.run_id)
    assert dead.info.status == "KILLED" and dead.data.tags[schema.TAG_TRIAL_STATE] == "failed"
    old_parent, new_parent = mlflow_runs(uri, "sweep")
    assert old_parent.info.status == "KILLED" and new_parent.info.status == "FINISHED"
    assert "2 trials: 1 complete, 0 pruned, 1 failed" in r.stdout
    m = new_parent.data.metrics
    assert m["n_trials"] == m["n_complete"] + m["n_pruned"] + m["n_failed"] == 2

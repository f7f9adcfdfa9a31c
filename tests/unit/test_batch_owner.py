"""A batch run whose process died (kill -9, out of memory) does not stay RUNNING: the next command that opens a batch
in the experiment closes it KILLED, as `runs.decide` closes a variant run's. In this process, on a real SQLite store:
owners that are provably gone are told apart from live ones, other hosts' and untagged ones."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from harness import locks, schema, tracking
from harness.runs import batch


def _gone_pid() -> int:
    """A PID no process has: the kernel hands out PIDs below pid_max."""
    return int(Path("/proc/sys/kernel/pid_max").read_text())


def _batch(uri: str, exp_id: str, owner: str | None) -> str:
    tags = {schema.TAG_KIND: "batch"} | ({schema.TAG_OWNER: owner} if owner is not None else {})
    return MlflowClient(uri).create_run(exp_id, tags=tags).info.run_id


def _status(uri: str, run_id: str) -> str:
    return MlflowClient(uri).get_run(run_id).info.status


def test_only_batches_whose_owner_is_provably_gone_are_closed_killed(uri):
    exp_id = tracking.experiment_id(uri, "synthetic-smoke")
    me = locks.owner()
    dead = _batch(uri, exp_id, locks.Owner(me.host, _gone_pid(), "1").text())
    reused = _batch(uri, exp_id, locks.Owner(me.host, me.pid, str(int(me.start) + 1)).text())  # our PID, not us
    live = _batch(uri, exp_id, me.text())
    elsewhere = _batch(uri, exp_id, locks.Owner("another-node", _gone_pid(), "1").text())  # cannot tell from here
    untagged = _batch(uri, exp_id, None)  # written before runs had owners
    finished = _batch(uri, exp_id, locks.Owner(me.host, _gone_pid(), "1").text())
    MlflowClient(uri).set_terminated(finished, "FINISHED")
    variant = (
        MlflowClient(uri)
        .create_run(
            exp_id, tags={schema.TAG_KIND: "variant", schema.TAG_OWNER: locks.Owner(me.host, _gone_pid()).text()}
        )
        .info.run_id
    )  # a variant run is `decide`'s to close, when its configuration runs again

    assert sorted(batch.close_dead_batches(uri, exp_id)) == sorted([dead, reused])
    assert _status(uri, dead) == _status(uri, reused) == "KILLED"
    for run_id in (live, elsewhere, untagged, variant):
        assert _status(uri, run_id) == "RUNNING"
    assert _status(uri, finished) == "FINISHED"
    assert batch.close_dead_batches(uri, exp_id) == []  # closed once


def test_the_next_batch_command_closes_the_dead_ones_and_runs_its_own(uri, runs, harness_main, tmp_path, monkeypatch):
    exp_id = tracking.experiment_id(uri, "synthetic-smoke")
    dead = _batch(uri, exp_id, locks.Owner(locks.hostname(), _gone_pid(), "1").text())
    monkeypatch.chdir(tmp_path)
    code, _, err = harness_main(
        ["run", "ksh12_fig1_relu", "ksh12_fig1_tanh", "--profile", "smoke", "--epochs", "1", "--set", "width=0.25"]
        + ["--device", "cpu", "--no-report", "--tracking-uri", uri]
    )
    assert code == 0, err[-2000:]
    assert f"batch run {dead}: its process (PID {_gone_pid()}" in err and "closed KILLED" in err
    statuses = {r.info.run_id: r.info.status for r in runs(uri, kind="batch")}
    assert statuses.pop(dead) == "KILLED"
    assert list(statuses.values()) == ["FINISHED"]  # the new batch

"""`harness server` on localhost receives a run and stores its artifacts beside the SQLite store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from tests.support import as_foreground, free_port


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
        preexec_fn=as_foreground,
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
        listening: set[str] = set()
        for p in [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]:
            try:  # a short-lived child (the server's start-up) may be gone by the time it is asked
                conns = p.net_connections("tcp")
            except psutil.NoSuchProcess:
                continue
            listening |= {c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
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
        try:
            server.wait(timeout=60)
        finally:
            if server.poll() is None:  # a failed test leaves nothing running (its mlflow server ends with it)
                os.killpg(server.pid, signal.SIGKILL)
    assert not psutil.pid_exists(server.pid) or psutil.Process(server.pid).status() == psutil.STATUS_ZOMBIE

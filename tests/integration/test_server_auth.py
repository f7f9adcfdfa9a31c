"""`harness server --auth` (harness.auth): a real MLflow basic-auth server on 127.0.0.1, asked with plain HTTP
requests. Without credentials: 401; a user the admin created reads everything but cannot write into the admin's
experiment or model (403); the admin writes; the admin's password, given in a file, appears on no process's
command line."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest

from tests.support import env as _env
from tests.support import free_port as _free_port

ADMIN = ("admin", "admin-secret-0123")
READER = ("reader", "reader-secret-0123")


def _call(base: str, endpoint: str, body: dict | None = None, user: tuple[str, str] | None = None) -> tuple[int, dict]:
    """POST `body` (GET without one) to the REST API as `user` (None: no credentials): (status, JSON answer)."""
    req = urllib.request.Request(f"{base}/api/2.0/mlflow/{endpoint}", method="GET" if body is None else "POST")
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    if user is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(user).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, {}


@pytest.fixture
def server(tmp_path, uri):
    """`harness server --auth`, the admin's password in a file: (base URL, the server's process)."""
    secret = tmp_path / "admin.txt"
    secret.write_text(ADMIN[1] + "\n")
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    args = ["server", "--auth", "--admin-password-file", str(secret), "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args, "--tracking-uri", uri], cwd=tmp_path, env=_env(),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(base + "/health", timeout=2).close()  # /health answers without credentials
            break
        except OSError as e:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("no server: " + (tmp_path / "server.log").read_text()[-3000:]) from e
            time.sleep(0.5)
    yield base, proc
    from harness import workers

    workers.stop(proc, grace_s=10.0, group=True)
    log.close()


@pytest.mark.slow
def test_without_credentials_401_a_reader_reads_and_cannot_write_the_admin_writes(server):
    base, proc = server
    assert _call(base, "experiments/search", {"max_results": 10})[0] == 401  # no credentials
    assert _call(base, "experiments/search", {"max_results": 10}, ("admin", "wrong-password-0"))[0] == 401
    status, made = _call(base, "experiments/create", {"name": "by-admin"}, ADMIN)
    assert status == 200, status  # the admin writes
    exp_id = made["experiment_id"]
    assert _call(base, "users/create", {"username": READER[0], "password": READER[1]}, ADMIN)[0] == 200
    assert _call(base, "users/create", {"username": "x", "password": "y" * 12})[0] == 401  # nobody signs up

    status, got = _call(base, f"experiments/get?experiment_id={exp_id}", user=READER)
    assert status == 200 and got["experiment"]["name"] == "by-admin"  # default_permission READ
    assert _call(base, "runs/search", {"experiment_ids": [exp_id]}, READER)[0] == 200
    assert _call(base, "runs/create", {"experiment_id": exp_id}, READER)[0] == 403
    assert _call(base, "experiments/delete", {"experiment_id": exp_id}, READER)[0] == 403
    assert _call(base, "users/create", {"username": "y", "password": "z" * 12}, READER)[0] == 403
    status, run = _call(base, "runs/create", {"experiment_id": exp_id}, ADMIN)
    assert status == 200
    run_id = run["run"]["info"]["run_id"]
    assert _call(base, "runs/log-metric", {"run_id": run_id, "key": "x", "value": 1, "timestamp": 0}, READER)[0] == 403
    assert _call(base, "registered-models/create", {"name": "alexnet2014"}, ADMIN)[0] == 200
    version = {"name": "alexnet2014", "source": run["run"]["info"]["artifact_uri"] + "/model", "run_id": run_id}
    assert _call(base, "model-versions/create", version, READER)[0] == 403  # no version of the admin's model
    assert _call(base, "model-versions/create", version, ADMIN)[0] == 200
    # MLflow's limit, as the README says: a signed-in user may create experiments (and models) of its own
    assert _call(base, "experiments/create", {"name": "by-reader"}, READER)[0] == 200

    command_lines = [
        " ".join(p.cmdline()) for p in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(True)]
    ]
    assert len(command_lines) >= 3 and not any(ADMIN[1] in line for line in command_lines)

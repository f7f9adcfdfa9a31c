"""`harness ui` whose `mlflow server` fails after it started (a store file that is not SQLite): the command's exit
status says so (it was 0 for any way the server ended by itself, e.g. "Address already in use"), with one line of
its own after MLflow's log. A real `mlflow server` process: the failure is MLflow's, found at its start.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, store_uri


@pytest.mark.slow
def test_ui_exits_non_zero_when_mlflow_server_fails(tmp_path: Path) -> None:
    db = tmp_path / "mlruns" / "mlflow.db"
    db.parent.mkdir()
    db.write_bytes(random.Random(0).randbytes(8192))  # not a SQLite database: MLflow's start-up fails on it
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "harness", "ui", "--port", str(port), "--tracking-uri", store_uri(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, start_new_session=True,
    )  # fmt: skip
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    last = r.stderr.strip().splitlines()[-1]
    assert last == "harness: error: the MLflow server stopped by itself (exit status 1); its log is above"

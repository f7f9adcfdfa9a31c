"""Worker processes of the harness's own commands (`run --jobs/--gpus`, `sweep --jobs`): their log folder beside the
store, starting one under a lifeline (it ends with this process, even killed outright: `harness.lifeline`), and
stopping its process group (`stop`; with `group=True` also for the MLflow server of `harness ui`/`server`, whose
workers outlive their leader for a moment)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness import lifeline, mlruns


def log_folder(uri: str, parent_id: str) -> Path:
    """Where the workers of the batch or sweep whose parent run is `parent_id` write their logs: LOGS/<parent id>
    beside the store (created)."""
    logs = mlruns.local_root(uri).resolve() / "logs" / parent_id
    logs.mkdir(parents=True, exist_ok=True)
    return logs


def spawn(argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """`argv` in a session of its own (Ctrl-C reaches it only through us) that ends with this process, its stdout and
    stderr to `log` (overwritten)."""
    with log.open("w") as out:
        return lifeline.popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)


def stop(proc: subprocess.Popen, grace_s: float = 30.0, group: bool = False) -> None:
    """SIGTERM to the process group `proc` leads (its processes close their runs KILLED), SIGKILL to what is left
    after `grace_s`; no-op once the group is gone. `group`: once the leader has exited, wait (up to `grace_s`) for the
    group's other members too (an MLflow server's workers) before calling it stopped."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            continue
        if not group:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _group_alive(proc.pid):
            time.sleep(0.1)
        if not _group_alive(proc.pid):
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True

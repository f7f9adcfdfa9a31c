"""Worker processes of the harness's own commands (`run --jobs/--gpus`, `sweep --jobs`): their log folder beside the
store, starting one under a lifeline (it ends with this process, even killed outright: `harness.lifeline`), and
stopping its process group. `cli.stop_group` (the MLflow server of `harness ui`) is the same stop, waiting for the
group's other members as well."""

from __future__ import annotations

import os
import signal
import subprocess
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


def stop(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM to the worker's process group (it closes its run KILLED), SIGKILL after `grace_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue

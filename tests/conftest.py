"""Shared fixtures and the rule of the tiers.

- `tests/unit`: in this process; no process of any kind (a real SQLite store and a few seconds of training are fine).
- `tests/integration`: real processes: kill -9 and SIGTERM at chosen points, torchrun and spawned ranks, the MLflow
  server, `--jobs` workers, the command line's own exit codes.
- `tests/e2e`: the main command's path end to end.

`refuse_processes` holds the first rule: a test outside `integration` and `e2e` that starts a process (or whose
fixtures do) fails, naming the tier it belongs in. Helpers shared by every tier are in `tests/support.py`.
"""

from __future__ import annotations

import contextlib
import multiprocessing.util
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import support

os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
TESTS = Path(__file__).resolve().parent
PROCESS_TIERS = ("integration", "e2e")
ALLOWED = ("git",)  # tracking.git_commit asks git for the checkout's commit: not a process the test is about


class ProcessInUnitTest(AssertionError):
    pass


@contextlib.contextmanager
def refuse_processes(nodeid: str) -> Iterator[None]:
    """Every way Python starts a process, refused for the duration (git excepted, see ALLOWED)."""

    def refuse(what: str):
        raise ProcessInUnitTest(f"{nodeid} starts a process ({what}): it belongs in tests/integration")

    execute_child = subprocess.Popen._execute_child

    def guarded_execute_child(self, args, executable, *rest, **kwargs):
        argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
        if Path(os.fsdecode(argv[0])).name not in ALLOWED:
            refuse(f"subprocess {os.fsdecode(argv[0])!r}")
        return execute_child(self, args, executable, *rest, **kwargs)

    patches = [
        (subprocess.Popen, "_execute_child", guarded_execute_child),
        (multiprocessing.util, "spawnv_passfds", lambda *a, **k: refuse("multiprocessing spawn")),
    ]
    patches += [(os, name, lambda *a, _n=name, **k: refuse(f"os.{_n}")) for name in _OS_STARTERS if hasattr(os, name)]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    for obj, name, new in patches:
        setattr(obj, name, new)
    try:
        yield
    finally:
        for obj, name, old in saved:
            setattr(obj, name, old)


_OS_STARTERS = ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "execv", "execve", "spawnv", "spawnve")


def tier(path: Path) -> str:
    return path.resolve().relative_to(TESTS).parts[0]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    if tier(Path(item.path)) in PROCESS_TIERS:
        yield
        return
    with refuse_processes(item.nodeid):
        yield


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: trains a network or starts a subprocess (seconds to minutes)")
    # libraries that start a process once, when first imported or asked (mlflow's import asks `uname -p` through
    # `platform`): done here, before any test, so that the guard sees only what a test itself starts
    import platform

    import mlflow  # noqa: F401
    import torch

    platform.processor()
    # pytest-xdist: a worker per core; each worker's torch (and every process it starts, through the environment)
    # takes its share of the cores instead of all of them, so that two workers do not fight over both
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


@pytest.fixture
def make_uri() -> Callable[[Path], str]:
    return support.store_uri


@pytest.fixture
def uri(tmp_path: Path) -> str:
    """A fresh SQLite MLflow store under this test's tmp_path."""
    return support.store_uri(tmp_path)


@pytest.fixture
def runs() -> Callable[..., list]:
    return support.mlflow_runs


@pytest.fixture
def cli(request: pytest.FixtureRequest) -> Callable[..., subprocess.CompletedProcess]:
    """`harness ARGS` answered as a finished process: a fresh `python -m harness` in the process tiers, the same
    command in this process everywhere else."""
    if tier(Path(request.node.path)) in PROCESS_TIERS:
        return support.harness_process
    return support.harness_here


@pytest.fixture
def harness_main() -> Callable[[list[str]], tuple[int, str, str]]:
    """`harness ARGV` in this process: (exit code, stdout, stderr)."""
    return support.harness_in_process


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only photo tree shared by the whole session (copy it before changing it)."""
    return support.write_photo_tree(tmp_path_factory.mktemp("photos"))

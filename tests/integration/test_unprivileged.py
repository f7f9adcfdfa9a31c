"""Folders and stores the user may not read or write, as the user would meet them: the tests run as root, so
the child process drops the two capabilities that let root ignore permission bits (CAP_DAC_OVERRIDE,
CAP_DAC_READ_SEARCH) before it starts; in process they would have no effect."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness import mlruns
from tests.support import harness_process, mlflow_runs, store_uri

SMOKE = ("torchvision_alexnet", "--profile", "smoke")


def _drop_root_permissions() -> None:
    """In the child, before exec: as root, give up the capabilities that bypass file permission bits."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, out of the bounding set: gone after exec
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def harness(
    *args: str, cwd: Path, env: dict[str, str] | None = None, unprivileged: bool = False, timeout: int = 300
) -> subprocess.CompletedProcess:
    """`python -m harness ARGS`, as a user root's permission bits apply to with `unprivileged`."""
    return harness_process(
        *args, cwd=cwd, env_=env, timeout=timeout, preexec_fn=_drop_root_permissions if unprivileged else None
    )


def one_line_error(r: subprocess.CompletedProcess, needle: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert needle in r.stderr, r.stderr


def nothing_recorded(uri: str) -> bool:
    db = mlruns.sqlite_path(uri)
    assert db is not None
    return not db.exists() or not (mlflow_runs(uri) or mlflow_runs(uri, "batch") or mlflow_runs(uri, "sweep"))


@pytest.fixture()
def photos_copy(photos: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(photos, tmp_path / "photos"))


@pytest.fixture()
def read_only(tmp_path: Path):
    """A folder nobody may write (restored afterwards so that pytest can delete it)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


@pytest.mark.slow
def test_unreadable_class_folder_is_one_line_not_no_images(tmp_path: Path, photos_copy: Path) -> None:
    uri = store_uri(tmp_path)
    locked = photos_copy / "train" / "flower"
    locked.chmod(0o000)
    try:
        r = harness(
            "run", *SMOKE, "--dataset", "imagefolder", "--data", str(photos_copy), "--tracking-uri", uri,
            cwd=tmp_path, unprivileged=True,
        )  # fmt: skip
    finally:
        locked.chmod(0o755)
    one_line_error(r, f"cannot read folder {locked}: Permission denied")
    assert nothing_recorded(uri)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("where", "needle"),
    [("mlflow.db", "is not writable"), ("sub/mlflow.db", "cannot create the MLflow store folder")],
)
def test_sqlite_store_in_a_read_only_folder_fails_within_seconds(
    tmp_path: Path, read_only: Path, where: str, needle: str
) -> None:
    uri = f"sqlite:///{read_only / where}"
    t0 = time.monotonic()
    r = harness("run", *SMOKE, "--tracking-uri", uri, cwd=tmp_path, unprivileged=True, timeout=120)
    one_line_error(r, needle)
    assert time.monotonic() - t0 < 60
    assert not list(read_only.iterdir())


@pytest.mark.slow
def test_report_out_onto_a_folder_or_into_a_read_only_folder(tmp_path: Path, read_only: Path) -> None:
    uri = store_uri(tmp_path)
    (tmp_path / "a-folder").mkdir()
    r = harness("report", "--out", str(tmp_path / "a-folder"), "--tracking-uri", uri, cwd=tmp_path)
    one_line_error(r, f"--out {tmp_path / 'a-folder'} is a folder")
    r = harness("report", "--out", str(read_only / "r.md"), "--tracking-uri", uri, cwd=tmp_path, unprivileged=True)
    one_line_error(r, f"cannot write the report into {read_only}")
    assert not list(read_only.iterdir())

"""Shared fixtures: a throwaway MLflow store, the harness command line (in a subprocess or in this process), the runs
a store holds, and a small ImageNet-style folder of real photos.

Tests that train or start subprocesses are marked `slow` (`python -m pytest -m "not slow"` skips them while editing;
the README's test command runs everything).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: trains a network or starts a subprocess (seconds to minutes)")


def store_uri(root: Path) -> str:
    """The harness's default layout under `root`: root/mlruns/mlflow.db."""
    return f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"


@pytest.fixture
def make_uri() -> Callable[[Path], str]:
    return store_uri


@pytest.fixture
def uri(tmp_path: Path) -> str:
    """A fresh SQLite MLflow store under this test's tmp_path."""
    return store_uri(tmp_path)


def mlflow_runs(uri: str, kind: str = "variant") -> list:
    """The runs of one kind (tag harness.kind) in every experiment of the store, oldest first."""
    from mlflow.tracking import MlflowClient

    from harness import schema

    c = MlflowClient(uri)
    exps = [e.experiment_id for e in c.search_experiments()]
    return c.search_runs(
        exps, filter_string=f"tags.`{schema.TAG_KIND}` = '{kind}'", order_by=["attributes.start_time ASC"]
    )


@pytest.fixture
def runs() -> Callable[..., list]:
    return mlflow_runs


def harness_subprocess(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """`python -m harness ARGS` in a fresh process, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess]:
    return harness_subprocess


def harness_in_process(argv: list[str]) -> tuple[int, str, str]:
    """`harness ARGV` through `harness.cli.main` in this process: (exit code, stdout, stderr)."""
    from harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def harness_main() -> Callable[[list[str]], tuple[int, str, str]]:
    return harness_in_process


# --- a small ImageNet-style folder of real photos (scikit-learn's two sample images, cropped) -----------------------

PHOTO_CLASSES = ["china", "flower", "mosaic"]
N_TRAIN, N_VAL = 6, 3  # images per class


def photo_crop(kind: str, i: int):  # -> np.ndarray, 96x128 RGB
    import numpy as np
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images  # 427x640 RGB
    top, left = 17 * i + 10, 41 * i + 20
    if kind == "mosaic":  # a third class: left half of china beside right half of flower
        return np.concatenate(
            [china[top : top + 96, left : left + 64], flower[top : top + 96, left + 64 : left + 128]], 1
        )
    return (china if kind == "china" else flower)[top : top + 96, left : left + 128]  # 96x128, not square


def write_photo_tree(root: Path, n_train: int = N_TRAIN, n_val: int = N_VAL) -> Path:
    """root/{train,val}/<class>/<class>_<i>.JPEG for the three photo classes."""
    from PIL import Image

    for split, n, offset in (("train", n_train, 0), ("val", n_val, n_train)):
        for name in PHOTO_CLASSES:
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(photo_crop(name, i + offset)).save(root / split / name / f"{name}_{i}.JPEG", quality=90)
    return root


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only photo tree shared by the whole session (copy it before changing it)."""
    return write_photo_tree(tmp_path_factory.mktemp("photos"))

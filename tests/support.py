"""What the tests share: the project root, the harness command line (in this process or in a fresh one), a free
port, waiting for a condition, MLflow stores and their runs, and a small ImageNet-style folder of real photos.

Tests that start a process live in `tests/integration` or `tests/e2e`; `tests/conftest.py` refuses a process
anywhere else (see `refuse_processes`)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def env(**extra: str) -> dict[str, str]:
    """The environment of a harness subprocess: this checkout's harness whatever is installed, no inherited
    MLFLOW_TRACKING_URI, plus `extra`."""
    base = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return base | {"PYTHONPATH": str(ROOT)} | extra


def as_foreground() -> None:
    """`preexec_fn` of a child a test sends Ctrl-C (SIGINT): the disposition a terminal's foreground command has,
    whatever this process inherited. A shell starts a background job (`cmd &`, as a CI script may be started) with
    SIGINT ignored, and every process below it inherits that, the harness too: Ctrl-C then does nothing there, as
    it should, and a test of Ctrl-C would measure how pytest was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def harness_process(
    *args: str,
    cwd: Path | None = None,
    env_: dict[str, str] | None = None,
    timeout: float = 600,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess:
    """`python -m harness ARGS` in a fresh process, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env_ or env(),
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


_STARTUP_WARNING_FILTERS = list(warnings.filters)  # as a fresh interpreter has them, before pytest records warnings


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python's own printing of a warning, to the (redirected) stderr: pytest's recorder would keep it from there."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def harness_in_process(argv: list[str]) -> tuple[int, str, str]:
    """`harness ARGV` through `harness.cli.main` in this process: (exit code, stdout, stderr). An argparse error
    (SystemExit) gives its exit code, and warnings are printed to stderr under a fresh interpreter's filters, as the
    command line would."""
    from harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.filters[:] = _STARTUP_WARNING_FILTERS
        warnings.showwarning = _print_warning
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    return code, out.getvalue(), err.getvalue()


def harness_here(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """`harness ARGS` in this process, answered as `harness_process` answers: from the folder `cwd`, with `env` as
    the whole environment for the duration (`timeout` is a process's; here it only keeps the signature)."""
    saved = dict(os.environ)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    try:
        with contextlib.chdir(cwd or Path.cwd()):
            code, out, err = harness_in_process(list(args))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(list(args), code, out, err)


def one_line_error(code: int, stderr: str, needle: str, exit_code: int = 2) -> None:
    """The harness's answer to bad input: exit `exit_code`, one line on stderr naming `needle`, no traceback."""
    assert code == exit_code, (code, stderr[-3000:])
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert needle in stderr, stderr


FILE_LIMIT = 8 * 2**20  # bytes: above the SQLite store and the small net's files, below the wide net's checkpoint


def small_file_limit() -> None:
    """A `preexec_fn`: files over FILE_LIMIT fail to write (a real disk error) in the process and its children
    (under torchrun both ranks inherit it; only rank 0 writes files)."""
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(
    condition: Callable[[], object], what: str, timeout: float = 300, proc: subprocess.Popen | None = None
) -> object:
    """Poll `condition` until it holds (its value) or fail after `timeout` s, or as soon as `proc` ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (status {proc.returncode}) before {what}")
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {timeout} s")


def store_uri(root: Path) -> str:
    """The harness's default layout under `root`: root/mlruns/mlflow.db."""
    return f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"


def mlflow_runs(uri: str, kind: str = "variant") -> list:
    """The runs of one kind (tag harness.kind) in every experiment of the store, oldest first; none while a SQLite
    store does not exist yet. Opened as the harness opens it (`tracking.client`: under the store's set-up lock), so
    that polling a store a harness process is creating does not create its schema at the same time (two creators:
    "table ... already exists" or "out-of-date database schema" in whichever comes second)."""
    from harness import mlruns, schema, tracking

    db = mlruns.sqlite_path(uri)
    if db is not None and not db.is_file():
        return []
    c = tracking.client(uri)
    exps = [e.experiment_id for e in c.search_experiments()]
    return c.search_runs(
        exps, filter_string=f"tags.`{schema.TAG_KIND}` = '{kind}'", order_by=["attributes.start_time ASC"]
    )


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

"""`harness prepare` onto a disk that is too small: one line, exit 2, no half store, the folder it made removed.

A real process under RLIMIT_FSIZE (the limit a full disk or a quota gives: writes past it fail with EFBIG; SIGXFSZ
ignored, as tests/test_scale.py does). raw: the full size is reserved up front (posix_fallocate), so it fails
before decoding, naming the bytes and --resize; jpeg: a write fails part-way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.unit.test_prepare_links import write_tree

LIMIT = 64 * 1024  # bytes a file may have: less than 3 images of 3x128x128

CHILD = f"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({LIMIT}, {LIMIT}))
from harness.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fmt", "needle"),
    [
        (
            "raw",
            "cannot reserve 0.3 MiB for train-images.npy (6 images of 3x128x128 bytes, --resize 128): File too large",
        ),
        ("jpeg", "cannot write the store {out}: File too large"),
    ],
)
def test_a_disk_too_small_is_one_line_and_leaves_nothing(tmp_path: Path, fmt: str, needle: str) -> None:
    src = write_tree(tmp_path / "src", n=3)
    out = tmp_path / "store"
    args = ["prepare", "--data", str(src), "--out", str(out), "--resize", "128", "--format", fmt, "--quality", "100"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2, r.stderr[-3000:]
    line = r.stderr.strip().splitlines()[-1]
    assert line == f"harness: error: {needle.format(out=out)}" and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert not out.exists()  # made by the run, removed with its half store

"""Two `harness prepare` processes started at the same instant into one destination, with different --resize: one
writes the store, the other is refused in one line (its lock is held, or the store is already the other's), and the
store is the one whose process said it succeeded. Before the lock, 2 of 6 such pairs both reported success and the
store ended as either one's.

Real processes (the lock is the kernel's flock between them); each starts once and runs every try, released by a
file the test creates once both are ready, so that their starts differ by about a millisecond.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.prepared import open_store
from tests.support import ROOT
from tests.unit.test_prepare_links import write_tree

TRIES = 4
SIZES = (16, 24)  # each process's --resize

CHILD = r"""
import contextlib, io, json, sys, time
from pathlib import Path
import harness.prepare  # the imports done before the start, so that both start together
from harness.cli import main

src, outs, resize, work, me = sys.argv[1], sys.argv[2].split(","), sys.argv[3], Path(sys.argv[4]), sys.argv[5]
(work / f"ready-{me}").touch()
for k, out in enumerate(outs):
    while not (work / f"go-{k}").exists():
        time.sleep(0.0005)
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        code = main(["prepare", "--data", src, "--out", out, "--resize", resize, "--workers", "1"])
    (work / f"result-{k}-{me}.json").write_text(json.dumps({"code": code, "stderr": err.getvalue()}))
"""


def wait_for(paths: list[Path], procs: list[subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        for proc in procs:  # a child that is done with its last try exits 0 while the other still writes
            if proc.poll() not in (None, 0):
                pytest.fail(f"a child failed: {proc.stderr.read() if proc.stderr else ''}"[-3000:])
        assert time.monotonic() < deadline, f"no {[p.name for p in paths if not p.exists()]} within {timeout} s"
        time.sleep(0.01)


@pytest.mark.slow
def test_two_prepares_at_once_write_one_store_and_refuse_the_other(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", n=3)
    outs = [tmp_path / f"store-{k}" for k in range(TRIES)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(src), ",".join(map(str, outs)), str(size), str(tmp_path), str(i)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i, size in enumerate(SIZES)
    ]
    try:
        wait_for([tmp_path / f"ready-{i}" for i in range(2)], procs, 240)
        for k in range(TRIES):
            (tmp_path / f"go-{k}").touch()
            wait_for([tmp_path / f"result-{k}-{i}.json" for i in range(2)], procs, 120)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
    refusals = []
    for k, out in enumerate(outs):
        results = [json.loads((tmp_path / f"result-{k}-{i}.json").read_text()) for i in range(2)]
        codes = [r["code"] for r in results]
        assert sorted(codes) == [0, 2], results
        winner, loser = codes.index(0), codes.index(2)
        line = results[loser]["stderr"]
        assert line.count("\n") == 1 and line.startswith("harness: error: ") and "Traceback" not in line, line
        assert "is being prepared by" in line or f"is already a store of {src} (raw, {SIZES[winner]}px)" in line
        refusals.append(line)
        store = open_store(out)
        assert store.manifest.resize == SIZES[winner] and store.manifest.train.count == 6
        assert sorted(p.name for p in out.iterdir())[0] == "manifest.json"  # no lock file, no .tmp- left
    print(f"refused while the other held the lock: {sum('being prepared' in r for r in refusals)} of {TRIES}")

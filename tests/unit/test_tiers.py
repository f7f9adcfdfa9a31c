"""The tiers stay honest: a test here that starts a process fails (tests/conftest.py `refuse_processes`), and every
test module lives in a tier."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys

import pytest

from tests.conftest import PROCESS_TIERS, TESTS, ProcessInUnitTest


@pytest.mark.parametrize(
    "start",
    [
        lambda: subprocess.run([sys.executable, "-c", "pass"]),
        lambda: subprocess.Popen(["sleep", "0"]),
        lambda: os.system("true"),
        lambda: os.fork(),
        lambda: multiprocessing.get_context("spawn").Process(target=print).start(),
        lambda: multiprocessing.get_context("fork").Process(target=print).start(),
    ],
    ids=["subprocess.run", "Popen", "os.system", "os.fork", "multiprocessing spawn", "multiprocessing fork"],
)
def test_a_unit_test_that_starts_a_process_fails_naming_its_tier(start) -> None:
    with pytest.raises(ProcessInUnitTest, match="starts a process .*it belongs in tests/integration"):
        start()


def test_git_is_the_one_process_allowed() -> None:
    from harness import tracking

    assert tracking.git_commit()  # `git rev-parse`, or "unknown" outside a checkout: either way no refusal


def test_every_test_module_is_in_a_tier() -> None:
    tiers = {"unit", *PROCESS_TIERS}
    stray = [p.relative_to(TESTS) for p in TESTS.rglob("test_*.py") if p.relative_to(TESTS).parts[0] not in tiers]
    assert stray == []

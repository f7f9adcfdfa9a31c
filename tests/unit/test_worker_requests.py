"""What a `--jobs` worker and a `--launcher` job are asked to train: exactly the planned (variant, seed) of the
parent, with `--seed-offset` applied once, and the same offset, so that the same runs get the qualitative evaluation
(`profiles.wants_qualitative` reads the seed less the offset) as in one process."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import launch, pool, runner
from harness.cli import build_parser
from harness.cli.common import request
from harness.cli.run import run_seeds
from harness.request import RunRequest


def _parsed(argv: list[str]) -> RunRequest:
    """A worker's command line through the real parser, as `harness run` in the child reads it."""
    args = build_parser().parse_args(argv)
    return request(RunRequest, args, seeds=run_seeds(args))


@pytest.mark.parametrize("offset", [0, 100])
def test_a_worker_and_a_job_train_the_planned_seed_with_the_parents_offset(offset: int, tmp_path: Path) -> None:
    parent = RunRequest(all=True, profile="proxy", seed_offset=offset)
    planned = runner.planned(parent)[2]
    assert planned[0].seed == offset  # the plan's seeds start at the offset
    for r in planned[:12]:
        job = launch.one_run(parent, r.variant, r.seed, "parent-run")
        assert runner.planned(job)[2] == (r,) and job.seed_offset == offset
        argv = pool.Job(r.variant, r.seed, tmp_path / "log", tmp_path / "out", offset).argv([], "parent-run")
        assert argv[:3] == [argv[0], "-m", "harness"]
        child = _parsed(argv[3:])
        assert runner.planned(child)[2] == (r,) and child.seed_offset == offset


def test_a_second_stage_job_trains_its_run_not_nothing() -> None:
    """The second stage's request names its runs (`only`); a job's request names one (variant, seed) instead."""
    parent = RunRequest(all=True, profile="proxy", seed_offset=100, only=(("alexnet2012", 103),))
    [r] = runner.planned(parent)[2]
    job = launch.one_run(parent, r.variant, r.seed, "parent-run")
    assert job.only == () and runner.planned(job)[2] == (r,)

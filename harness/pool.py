"""`harness run --jobs N` / `--gpus 0,1,...`: N (variant, seed) runs at a time on one node, each in its own process.

The papers trained each network on one or two GPUs, so on an 8-GPU node the natural unit is one variant per
GPU at the paper's own batch, not one variant over eight. The parent opens the batch's parent run (the store's
schema is created first, once, before any child writes: mlflow issue #19943), then runs a queue of children, each
`python -m harness run VARIANT --seed S` with the same options, `--parent-run-id` and, with `--gpus`, its own
`CUDA_VISIBLE_DEVICES`. A child is the ordinary single-variant command: it takes its configuration's lock, skips,
resumes or trains, and records its run as a child of the parent; its log goes to a file beside the store. A failed
child does not stop the others. Ctrl-C or SIGTERM stops every child (each closes its run KILLED) and the parent run
is closed KILLED; a parent killed outright (kill -9) takes its children with it (`harness.lifeline`), and the next
batch closes its parent run KILLED (`runs.batch.open_batch_run`). The batch run's lifecycle is `harness.runs.batch`'s;
starting, logging and stopping the children, `harness.workers`'.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import runner, workers
from harness.errors import HarnessError
from harness.request import RunRequest
from harness.runs import batch as batch_mod
from harness.runs.batch import RunResult
from harness.runs.common import Outcome

POLL_S = 0.5


@dataclass(frozen=True)
class Job:
    """One child: a (variant, seed) run and where its output goes."""

    variant: str
    seed: int  # the seed trained: the plan's seed plus `offset`
    log: Path
    outcome: Path  # the child's outcomes, as JSON (`--outcomes-json`)
    offset: int = 0  # `--seed-offset`: the child shifts the plan's seed itself, as `harness run` in one process does

    def argv(self, options: Sequence[str], parent: str) -> list[str]:
        offset = ["--seed-offset", str(self.offset)] if self.offset else []
        return [
            sys.executable,
            "-m",
            "harness",
            "run",
            self.variant,
            "--seed",
            str(self.seed - self.offset),
            *offset,
            *options,
            "--no-report",
            "--parent-run-id",
            parent,
            "--outcomes-json",
            str(self.outcome),
        ]


def slots(jobs: int | None, gpus: str | None) -> list[str | None]:
    """One entry per worker slot: the CUDA_VISIBLE_DEVICES it sets (None: unchanged)."""
    if gpus is None:
        return [None] * (jobs or 1)
    ids = [g.strip() for g in gpus.split(",")]
    if not all(g.isdigit() for g in ids) or len(set(ids)) != len(ids):
        raise HarnessError(f"--gpus {gpus!r}: give distinct device numbers, e.g. --gpus 0,1,2,3")
    if jobs is not None and jobs != len(ids):
        raise HarnessError(f"--jobs {jobs} and --gpus {gpus} disagree: --gpus runs one job per device")
    return list(ids)


def write_outcomes(path: Path, outcomes: Sequence[Outcome]) -> None:
    """What a child reports back to the parent (the parent prints the one summary)."""
    path.write_text(json.dumps([asdict(o) for o in outcomes]))


def read_outcomes(job: Job, code: int) -> list[Outcome]:
    try:
        return [Outcome(**o) for o in json.loads(job.outcome.read_text())]
    except (OSError, ValueError, TypeError):  # it died before writing them (killed, a crash): say where to look
        why = f"worker exited with status {code}: see {job.log}"
        return [Outcome(variant=job.variant, status="failed", error=why, seed=job.seed)]


def run_pool(req: RunRequest, options: Sequence[str], jobs: int | None, gpus: str | None) -> RunResult:
    """Every planned (variant, seed) of `req` in child processes, `len(slots)` at a time. `options`: the command
    line options every child repeats (the data, store, recipe changes; not the names or seeds)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise HarnessError("--jobs/--gpus start their own processes: do not run them under torchrun")
    devices = slots(jobs, gpus)
    batch, planned_runs = runner.open_batch(req, f"--jobs {len(devices)}")
    assert batch.parent is not None
    logs = workers.log_folder(req.uri, batch.parent)
    queue = [
        Job(
            r.variant,
            r.seed,
            logs / f"{r.variant}-seed{r.seed}.log",
            logs / f"{r.variant}-seed{r.seed}.json",
            req.seed_offset,
        )
        for r in planned_runs
    ]
    print(f"{len(queue)} runs, {len(devices)} at a time; logs in {logs}", file=sys.stderr, flush=True)
    running: dict[int, tuple[Job, subprocess.Popen, float]] = {}  # slot -> job
    done: dict[Job, list[Outcome]] = {}

    def stop_all() -> None:  # Ctrl-C, SIGTERM (cli.Terminated), or a failure of this loop: stop every child
        for _, proc, _ in running.values():
            workers.stop(proc)

    with batch_mod.running(batch, stop=stop_all):
        while queue or running:
            for slot, (job, proc, t0) in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                del running[slot]
                done[job] = read_outcomes(job, code)
                for o in done[job]:
                    o.seconds = o.seconds or time.monotonic() - t0
                states = ", ".join(o.status for o in done[job])
                print(f"done: {job.variant} seed {job.seed} ({states})", file=sys.stderr, flush=True)
            for slot, device in enumerate(devices):
                if slot in running or not queue:
                    continue
                job = queue.pop(0)
                env = os.environ.copy()
                if device is not None:
                    env["CUDA_VISIBLE_DEVICES"] = device  # the child sees one GPU, as cuda:0
                running[slot] = (job, workers.spawn(job.argv(options, batch.parent), job.log, env), time.monotonic())
                where = "" if device is None else f" on GPU {device}"
                print(f"start: {job.variant} seed {job.seed}{where}", file=sys.stderr, flush=True)
            time.sleep(POLL_S)
        order = {(r.variant, r.seed): i for i, r in enumerate(planned_runs)}
        batch.outcomes += [o for job in sorted(done, key=lambda j: order[(j.variant, j.seed)]) for o in done[job]]
    return batch.result()

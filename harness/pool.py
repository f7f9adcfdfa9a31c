"""`harness run --jobs N` / `--gpus 0,1,...`: N (variant, seed) runs at a time on one node, each in its own process.

Issue 16: the papers trained each network on one or two GPUs, so on an 8-GPU node the natural unit is one variant per
GPU at the paper's own batch, not one variant over eight. The parent opens the batch's parent run (the store's
schema is created here, once, before any child writes: mlflow issue #19943), then runs a queue of children, each
`python -m harness run VARIANT --seed S` with the same options, `--parent-run-id` and, with `--gpus`, its own
`CUDA_VISIBLE_DEVICES`. A child is the ordinary single-variant command: it takes its configuration's lock, skips,
resumes or trains, and records its run as a child of the parent; its log goes to a file beside the store. A failed
child does not stop the others. Ctrl-C or SIGTERM stops every child (each closes its run KILLED) and the parent run
is closed KILLED; a parent killed outright (kill -9) takes its children with it (`harness.lifeline`), and the next
batch closes its parent run KILLED (`runner.open_batch_run`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness import lifeline, runner, store, tracking
from harness.errors import HarnessError
from harness.plan import PlannedRun
from harness.request import RunRequest

POLL_S = 0.5


@dataclass(frozen=True)
class Job:
    """One child: a (variant, seed) run and where its output goes."""

    variant: str
    seed: int
    log: Path
    outcome: Path  # the child's outcomes, as JSON (`--outcomes-json`)

    def argv(self, options: Sequence[str], parent: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "harness",
            "run",
            self.variant,
            "--seed",
            str(self.seed),
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


def write_outcomes(path: Path, outcomes: Sequence[runner.Outcome]) -> None:
    """What a child reports back to the parent (the parent prints the one summary)."""
    path.write_text(json.dumps([asdict(o) for o in outcomes]))


def read_outcomes(job: Job, code: int) -> list[runner.Outcome]:
    try:
        return [runner.Outcome(**o) for o in json.loads(job.outcome.read_text())]
    except (OSError, ValueError, TypeError):  # it died before writing them (killed, a crash): say where to look
        return [
            runner.Outcome(
                job.variant, "failed", error=f"worker exited with status {code}: see {job.log}", seed=job.seed
            )
        ]


@dataclass(frozen=True)
class Batch:
    """The parent run of runs trained elsewhere (worker processes, submitit jobs) and what they will train."""

    parent: tracking.Tracker
    experiment: str
    exp_id: str
    profile: str
    dataset: str
    runs: tuple[PlannedRun, ...]


def open_batch(req: RunRequest, how: str) -> Batch:
    """Check the data, create the experiment (and with it the store's schema, before any worker opens the store:
    mlflow issue #19943) and the parent run; the (variant, seed) runs to hand out."""
    _, profile, planned_runs = runner.planned(req)
    from harness.config import resolve  # torch: only once the arguments are known to be good
    from variants import get_variant

    first = resolve(get_variant(planned_runs[0].variant), req)
    runner.load(runner.data_spec(first), "center")  # bad data paths fail here, before anything is recorded
    exp_name = runner.experiment_name(first)
    exp_id = tracking.experiment_id(req.uri, exp_name)
    title = ("run --all" if req.all else "run " + " ".join(req.names)) + f" {how}"
    parent = runner.open_batch_run(req.uri, exp_id, title, first, [(r.variant, r.seed) for r in planned_runs])
    return Batch(tracking.Tracker(req.uri, parent), exp_name, exp_id, profile, first.dataset, planned_runs)


def one_run(req: RunRequest, variant: str, seed: int, parent: str) -> RunRequest:
    """A worker's request: one (variant, seed) of `req`, recorded under `parent`, picklable (`sets` a dict)."""
    return replace(req, names=(variant,), all=False, seed=seed, seeds=1, parent_run_id=parent, sets=dict(req.sets))


def run_pool(req: RunRequest, options: Sequence[str], jobs: int | None, gpus: str | None) -> runner.RunResult:
    """Every planned (variant, seed) of `req` in child processes, `len(slots)` at a time. `options`: the command
    line options every child repeats (the data, store, recipe changes; not the names or seeds)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise HarnessError("--jobs/--gpus start their own processes: do not run them under torchrun")
    workers = slots(jobs, gpus)
    batch = open_batch(req, f"--jobs {len(workers)}")
    uri, exp_name, parent, planned_runs = req.uri, batch.experiment, batch.parent, batch.runs
    logs = store.local_root(uri).resolve() / "logs" / parent.run_id
    logs.mkdir(parents=True, exist_ok=True)
    queue = [
        Job(r.variant, r.seed, logs / f"{r.variant}-seed{r.seed}.log", logs / f"{r.variant}-seed{r.seed}.json")
        for r in planned_runs
    ]
    print(f"{len(queue)} runs, {len(workers)} at a time; logs in {logs}", file=sys.stderr, flush=True)
    running: dict[int, tuple[Job, subprocess.Popen, float]] = {}  # slot -> job
    done: dict[Job, list[runner.Outcome]] = {}
    try:
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
            for slot, device in enumerate(workers):
                if slot in running or not queue:
                    continue
                job = queue.pop(0)
                env = os.environ.copy()
                if device is not None:
                    env["CUDA_VISIBLE_DEVICES"] = device  # the child sees one GPU, as cuda:0
                with job.log.open("w") as log:  # own session: Ctrl-C reaches the children only through us
                    proc = lifeline.popen(
                        job.argv(options, parent.run_id), stdout=log, stderr=subprocess.STDOUT, env=env
                    )
                running[slot] = (job, proc, time.monotonic())
                where = "" if device is None else f" on GPU {device}"
                print(f"start: {job.variant} seed {job.seed}{where}", file=sys.stderr, flush=True)
            time.sleep(POLL_S)
    except BaseException:  # Ctrl-C, SIGTERM (cli.Terminated), or a failure of this loop: stop every child
        for _, proc, _ in running.values():
            stop(proc)
        parent.finish("KILLED")
        raise
    order = {(r.variant, r.seed): i for i, r in enumerate(planned_runs)}
    outcomes = [o for job in sorted(done, key=lambda j: order[(j.variant, j.seed)]) for o in done[job]]
    result = runner.RunResult(
        tuple(outcomes), uri, exp_name, batch.profile, batch.dataset, True, parent.run_id, batch.exp_id
    )
    runner.close_batch_run(uri, parent.run_id, outcomes, "FAILED" if result.failed else "FINISHED")
    return result


def stop(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM to the child's process group (it closes its run KILLED), SIGKILL after `grace_s`."""
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

"""`harness run --launcher slurm|local`: one submitit job per (variant, seed), under one batch run.

On a cluster the unit is a Slurm job array, with the engine users already run (submitit) rather than a
home-made scheduler. Each array task is `runner.run_variants` of one (variant, seed) (`VariantJob`), recorded as a
child of the batch's parent run. At the time limit (or on preemption) Slurm signals the job; submitit then calls
`VariantJob.checkpoint`, which requeues the same job, as torchvision's references/classification/
run_with_submitit.py does. The job needs no state of its own: the harness checkpoints every epoch, and the requeued
job finds the interrupted run (KILLED, with its checkpoint) and resumes it, in the same MLflow run
(`runs.decide.decide`). A task with several GPUs, or several nodes, is one data-parallel run: submitit's
`TorchDistributedEnvironment` exports MASTER_ADDR/PORT, RANK, WORLD_SIZE and LOCAL_RANK (the env:// rendezvous
torchrun also provides) before `harness.distributed.init`.

`--launcher local` runs the same code through submitit's LocalExecutor (every job at once, on this machine): what
the tests run here. Its tasks end with the harness process that submitted them, even when it is killed outright
(`executor`, `harness.lifeline`). Nothing here has run on a real Slurm cluster.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Literal

from harness import interrupts, lifeline, mlruns, runner
from harness.errors import HarnessError
from harness.request import RunRequest
from harness.runs import batch as batch_mod
from harness.runs.batch import RunResult
from harness.runs.common import Outcome

Launcher = Literal["local", "slurm"]


@dataclass(frozen=True)
class Resources:
    """What each array task asks for (`run --partition/--time/--nodes/--gpus-per-node/--array-parallelism`)."""

    partition: str | None = None
    time_min: int = 24 * 60  # Slurm's --time; the local executor's timeout
    nodes: int = 1
    gpus_per_node: int = 0  # one data-parallel rank per GPU; 0: one rank per task (CPU)
    cpus_per_task: int | None = None
    array_parallelism: int = 8  # array tasks running at once

    @property
    def tasks_per_node(self) -> int:
        return max(1, self.gpus_per_node)


@dataclass(frozen=True)
class VariantJob:
    """One array task: `harness run VARIANT --seed S` under the batch's parent run, as a picklable callable."""

    req: RunRequest

    def __call__(self) -> list[dict[str, object]]:
        import submitit

        env = submitit.JobEnvironment()
        # submitit's handlers exit the task wherever it is: the time-limit signal's (sys.exit to requeue) and
        # Ctrl-C's (the controller's cancel); inside a store write that would leave SQLite's write lock held and the
        # run unclosed (harness.interrupts), so both wait for the write under way
        interrupts.deferring(env._usr_sig())
        interrupts.deferring(signal.SIGINT, again_acts=True)
        if env.num_tasks > 1:  # one rank per task: the env:// rendezvous variables torchrun would set
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        if problem := mlruns.shared_sqlite_problem(self.req.uri, os.environ):
            raise HarnessError(problem)
        result = runner.run_variants(self.req)
        return [asdict(o) for o in result.outcomes] if result.is_main else []

    def checkpoint(self, *args: object, **kwargs: object):
        """submitit calls this on the time-limit (or preemption) signal: requeue the same job. The epoch checkpoint
        is already on disk; the requeued job resumes from it into the same run."""
        import submitit

        print(f"{self.req.names[0]} seed {self.req.seed}: requeued after a time-limit signal", file=sys.stderr)
        return submitit.helpers.DelayedSubmission(VariantJob(self.req))


def executor(launcher: Launcher, folder: str, res: Resources):
    import submitit

    # the local executor's tasks end with this process, even killed outright (`harness.lifeline`); Slurm's jobs run
    # on other nodes and outlive the submitting process by design
    watched = lifeline.command([sys.executable], forward=True, stop=signal.SIGINT)  # submitit's tasks ignore SIGTERM
    local = {"local_python": shlex.join(watched)} if launcher == "local" else {}
    ex = submitit.AutoExecutor(folder=folder, cluster=launcher, **local)
    params: dict[str, object] = {
        "timeout_min": res.time_min,
        "nodes": res.nodes,
        "tasks_per_node": res.tasks_per_node,
        "gpus_per_node": res.gpus_per_node,
        "name": "harness",
        "slurm_array_parallelism": res.array_parallelism,
        "slurm_signal_delay_s": 120,  # the checkpoint signal 2 min before the limit: one epoch is already saved
    }
    if res.cpus_per_task:
        params["cpus_per_task"] = res.cpus_per_task
    if res.partition:
        params["slurm_partition"] = res.partition
    ex.update_parameters(**params)
    return ex


def run_launched(req: RunRequest, launcher: Launcher, res: Resources) -> RunResult:
    """Submit every planned (variant, seed) as one job (a Slurm array), wait for them, gather their outcomes."""
    if launcher == "slurm" and (problem := mlruns.shared_sqlite_problem(req.uri, {"SLURM_ARRAY_TASK_ID": "0"})):
        raise HarnessError(problem)
    if launcher == "local" and res.nodes > 1:
        raise HarnessError("--launcher local runs on this machine: --nodes must be 1")
    batch, planned_runs = runner.open_batch(req, f"--launcher {launcher}")
    assert batch.parent is not None
    folder = mlruns.local_root(req.uri).resolve() / "submitit" / batch.parent
    jobs: list = []  # submitted

    def cancel() -> None:  # Ctrl-C or SIGTERM: every job cancelled (each closes its run KILLED)
        for job in jobs:
            job.cancel(check=False)

    with batch_mod.running(batch, stop=cancel):
        jobs += _submit(launcher, folder, res, [one_run(req, r.variant, r.seed, batch.parent) for r in planned_runs])
        print(
            f"{len(jobs)} job(s) submitted ({launcher}): {', '.join(j.job_id for j in jobs)}; logs in {folder}",
            file=sys.stderr,
            flush=True,
        )
        batch.outcomes += [o for r, job in zip(planned_runs, jobs) for o in _outcomes(r.variant, r.seed, job)]
    return batch.result()


def one_run(req: RunRequest, variant: str, seed: int, parent: str) -> RunRequest:
    """A job's request: one planned (variant, seed) of `req` (`seed` already shifted by `--seed-offset`: the job
    shifts the plan's seed itself, as `harness run` in one process does, so that the same runs get the qualitative
    evaluation), recorded under `parent`, picklable (`sets` a dict)."""
    return replace(
        req,
        names=(variant,),
        all=False,
        seed=seed - req.seed_offset,
        seeds=1,
        only=(),
        parent_run_id=parent,
        sets=dict(req.sets),
    )


def _submit(launcher: Launcher, folder, res: Resources, requests: Sequence[RunRequest]) -> list:
    """One job per request, as one array on Slurm; a failure to submit is one line (the batch run: FAILED)."""
    jobs = []
    try:
        ex = executor(launcher, str(folder), res)
        with ex.batch():  # one array on Slurm
            for r in requests:
                jobs.append(ex.submit(VariantJob(r)))
    except Exception as e:  # noqa: BLE001 - no sbatch, a rejected partition, a bad parameter: one line
        why = str(e).strip().splitlines()
        raise HarnessError(
            f"--launcher {launcher}: submitting failed: {why[-1] if why else type(e).__name__}"
        ) from None
    return jobs


def _outcomes(variant: str, seed: int, job) -> Sequence[Outcome]:
    try:
        return [Outcome(**o) for task in job.results() for o in task]  # rank 0's; other ranks return []
    except Exception as e:  # noqa: BLE001 - the job failed or was cancelled: this variant failed, not the batch
        first = str(e).strip().splitlines()
        why = first[-1] if first else type(e).__name__
        return [Outcome(variant=variant, status="failed", error=f"job {job.job_id}: {why}", seed=seed)]

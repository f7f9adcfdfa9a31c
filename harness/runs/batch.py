"""A batch: several (variant, seed) runs under one batch run (kind `batch`), however they are trained (in this
process: `harness.runner`; in worker processes: `harness.pool`; as submitit jobs: `harness.launch`). One lifecycle
for all: `begin` checks the data, creates the experiment and opens the batch run; `running` collects the outcomes
and closes it (FINISHED, or FAILED when a run failed, with the counts), KILLED on an interrupt, FAILED on an error,
after stopping what the batch started; `Batch.result` is what the CLI prints and reports on."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from harness import locks, note, schema, tracking
from harness.config import RunConfig
from harness.request import RunRequest
from harness.runs.common import Outcome, data_inputs, data_spec, experiment_name, load


@dataclass(frozen=True)
class RunResult:
    """What `run_variants` did, for the CLI to print and report on."""

    outcomes: tuple[Outcome, ...]
    uri: str
    experiment: str
    profile: str
    dataset: str
    is_main: bool  # rank 0 (the only rank that prints and reports)
    parent: str | None = None  # the batch's parent run (several runs), where the report is logged too
    exp_id: str = ""

    @property
    def failed(self) -> bool:
        return any(o.status == "failed" for o in self.outcomes)


@dataclass
class Batch:
    """The runs of one `harness run` command as they end, and the batch run around them (if any)."""

    uri: str
    exp_id: str
    experiment: str
    profile: str
    dataset: str
    parent: str | None  # the batch run: its variant runs name it in `schema.TAG_BATCH` (None: one run, no batch)
    owned: bool  # this process opened the batch run and closes it (a `--jobs` worker's belongs to its pool)
    is_main: bool = True
    outcomes: list[Outcome] = field(default_factory=list)

    def result(self) -> RunResult:
        return RunResult(
            outcomes=tuple(self.outcomes),
            uri=self.uri,
            experiment=self.experiment,
            profile=self.profile,
            dataset=self.dataset,
            is_main=self.is_main,
            parent=self.parent,
            exp_id=self.exp_id,
        )

    def close(self, status: str | None = None) -> None:
        """Close the batch run if this process owns it: `status` (an interrupt or error), or with the counts,
        FAILED when a run failed, else FINISHED."""
        if not (self.owned and self.is_main and self.parent):
            return
        if status is not None:
            tracking.Tracker(self.uri, self.parent).finish(status)
        else:
            close_batch_run(self.uri, self.parent, self.outcomes, "FAILED" if self.result().failed else "FINISHED")


def title(req: RunRequest, how: str = "") -> str:
    """The batch run's name: the command that made it (`run --all`, `run zfnet alexnet2012 --jobs 4`)."""
    return ("run --all" if req.all else "run " + " ".join(req.names)) + (f" {how}" if how else "")


def begin(
    req: RunRequest, first: RunConfig, runs: Sequence[tuple[str, int]], name: str | None, is_main: bool = True
) -> Batch:
    """Check the data (bad paths fail here, before anything is recorded), create the experiment (and with it the
    store's schema, before any worker opens the store: mlflow issue #19943), and open the batch run named `name` on
    rank 0 (None: no batch run of this process's; `req.parent_run_id`, a `--jobs` worker's, is its pool's)."""
    load(data_spec(first), "center")
    exp_name = experiment_name(first)
    exp_id = tracking.experiment_id(req.uri, exp_name) if is_main else ""
    if is_main:
        tracking.mark_experiment(req.uri, exp_id)  # an experiment created before the harness tagged its kind
    parent, owned = req.parent_run_id, False
    if is_main and parent is None and name is not None:
        parent, owned = open_batch_run(req.uri, exp_id, name, first, runs), True
    return Batch(req.uri, exp_id, exp_name, first.profile, first.dataset, parent, owned, is_main)


@contextlib.contextmanager
def running(batch: Batch, stop: Callable[[], None] | None = None) -> Iterator[Batch]:
    """The batch while its runs train: on the way out the batch run is closed. An interrupt (Ctrl-C, SIGTERM) or an
    error first calls `stop` (the workers or jobs the batch started close their runs KILLED), then closes the batch
    run KILLED (interrupt) or FAILED (error), and is raised again."""
    try:
        yield batch
    except BaseException as e:
        if stop is not None:
            stop()
        batch.close("KILLED" if isinstance(e, (KeyboardInterrupt, SystemExit)) else "FAILED")
        raise
    batch.close()


def close_dead_batches(uri: str, exp_id: str) -> list[str]:
    """The experiment's batch runs left RUNNING by a process that is gone (kill -9, out of memory, a reboot): closed
    KILLED, as `decide` closes a variant run's. Only owners on this host that are provably gone: another host's
    batch may still run, and a run without an owner tag predates them. The ids closed."""
    closed = []
    for run in tracking.running_runs(uri, exp_id, "batch"):
        o = locks.parse_owner(run.owner)
        if o is not None and locks.alive(o) is False and tracking.close_orphan(uri, run.run_id):
            print(f"batch run {run.run_id}: its process ({o.describe()}) is gone: closed KILLED", file=sys.stderr)
            closed.append(run.run_id)
    return closed


def open_batch_run(uri: str, exp_id: str, title: str, first: RunConfig, runs: Iterable[tuple[str, int]]) -> str:
    """A batch's run (kind `batch`): the sibling its variant runs name in `schema.TAG_BATCH`, with a description, the
    data set as its input, and (at the end) the counts and the report. Its id. Batches of the experiment whose
    process died are closed first (`close_dead_batches`)."""
    close_dead_batches(uri, exp_id)
    labels = [f"{variant} seed {seed}" for variant, seed in runs]
    tracker = tracking.Tracker.create(
        uri,
        exp_id,
        title,
        {
            schema.TAG_KIND: "batch",
            schema.TAG_PROFILE: first.profile,
            schema.TAG_DATASET: first.dataset,
            schema.TAG_GIT: tracking.git_commit(),
            schema.TAG_NOTE: note.batch_note(title, first.profile, first.dataset_name, labels),
        }
        | tracking.owner_tags(),
    )
    tracking.mark_experiment(uri, exp_id)  # an experiment created before the harness tagged its kind
    tracking.log_inputs(uri, tracker.run_id, data_inputs(first, load(data_spec(first), "center")))
    return tracker.run_id


def close_batch_run(uri: str, parent: str, outcomes: Sequence[Outcome], status: str) -> None:
    """Count the batch's runs by status on its run, then close it."""
    tracking.log_counts(uri, parent, (o.status for o in outcomes))
    tracking.Tracker(uri, parent).finish(status)

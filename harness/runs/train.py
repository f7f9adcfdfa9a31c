"""One (variant, seed) run on every rank: rank 0 decides under the configuration's lock (`harness.runs.decide`),
then the run is skipped, or trained (or resumed) and recorded: params, tags, data inputs, per-epoch metrics, then
`harness.runs.finish`. A failure is recorded on the run (FAILED, error.txt) and returned as the outcome."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import traceback
from collections.abc import Iterable
from pathlib import Path

from harness import data as data_mod
from harness import distributed, engine, schema, tracking
from harness.config import RunConfig
from harness.distributed import Dist
from harness.errors import HarnessError
from harness.profiles import wants_qualitative
from harness.runs.common import Outcome, data_inputs, data_spec, load, run_name, run_tags
from harness.runs.decide import Decision, Recording, decide_locked
from harness.runs.finish import Finishing, Trained, finish
from variants import Variant


def train_variant(variant: Variant, cfg: RunConfig, d: Dist, rec: Recording, verbose: bool = True) -> Outcome:
    """One variant, start to finish, on every rank: rank 0 decides and broadcasts, then `train_tracked`."""
    t0 = time.perf_counter()
    with contextlib.ExitStack() as held:  # rank 0 holds the configuration's lock until its run is closed
        decision: Decision = distributed.broadcast(  # type: ignore[assignment]
            decide_locked(cfg, rec, held) if d.is_main else None, d
        )
        if decision.action == "refuse":
            raise HarnessError(decision.message)
        if decision.action == "error":  # rank 0 could not decide (the store failed): this variant fails, not the run
            return Outcome(variant=variant.name, status="failed", error=decision.message, seed=cfg.seed)
        if decision.action == "resume":
            _check_checkpoint_visible(rec.checkpoint, d)
        if decision.action == "skip":
            if d.is_main:  # a process that died after closing its run, before deleting its checkpoint
                rec.checkpoint.unlink(missing_ok=True)
            outcome = (
                skipped(rec.uri, decision.run_id, variant, cfg)
                if d.is_main
                else Outcome(variant=variant.name, status="skipped", run_id=decision.run_id)
            )
        else:
            outcome = train_tracked(variant, cfg, d, rec, decision, verbose)
    outcome.seconds = time.perf_counter() - t0
    outcome.seed = cfg.seed
    return outcome


def _check_checkpoint_visible(path: Path, d: Dist) -> None:
    """Rank 0 resumes from `path`: every rank must see that file (the checkpoint dir on storage every node mounts),
    else the ranks would start at different epochs. Raised on every rank alike."""
    seen = distributed.gather(path.is_file(), d)
    blind = [r for r, s in enumerate(seen) if not s]
    if seen[0] and blind:
        raise HarnessError(
            f"rank(s) {', '.join(map(str, blind))} cannot see the checkpoint {path} that rank 0 resumes from: "
            "put --checkpoint-dir on storage every node mounts"
        )


def train_tracked(
    variant: Variant, cfg: RunConfig, d: Dist, rec: Recording, decision: Decision, verbose: bool
) -> Outcome:
    """Train (or resume) and record one run. Rank 0 alone talks to MLflow; a failure is recorded, not raised.

    Each (metric, step) is logged once (`OnceMetrics`): a resumed run logs what its checkpoint's history has and the
    run lacks (the epoch its process finished but did not record), then the epochs it trains."""
    tracker: tracking.Tracker | tracking.NullTracker | OnceMetrics = tracking.NullTracker()
    try:
        with distributed.together(d):  # a failure on any rank (its data, rank 0's store) stops every rank here
            data = load(data_spec(cfg), "center")
            if d.is_main:
                tags = run_tags(cfg, variant, data) | dict(rec.tags) | tracking.owner_tags()
                tracker = open_run(variant, cfg, rec, decision, tags)
                record_setup(tracker, cfg, data, rec, decision, tags)
        model = engine.prepare_model(variant, data.num_classes, cfg.recipe, cfg.seed)
        result = _fit(model, cfg, data, d, rec, tracker, decision, verbose)
        # sweep trials (no weights logged) are not analysed; `harness analyze` can do any finished run later
        qualitative = rec.log_weights and wants_qualitative(cfg.profile, cfg.variant, cfg.seed - rec.seed_offset)
        how = Finishing(log_weights=rec.log_weights, qualitative=qualitative, register=rec.register, uri=rec.uri)
        with distributed.together(d):  # rank 0's final logging failed: FAILED on every rank
            outcome = finish(Trained(model, variant, cfg, data, result), d, tracker, how)
        if d.is_main:
            rec.checkpoint.unlink(missing_ok=True)
        return outcome
    except engine.Pruned:
        tracker.set_tags({schema.TAG_TRIAL_STATE: "pruned"})
        tracker.finish("KILLED")
        rec.checkpoint.unlink(missing_ok=True)
        return Outcome(variant=variant.name, status="pruned", run_id=tracker.run_id)
    except (KeyboardInterrupt, SystemExit):
        tracker.finish("KILLED")
        raise
    except Exception as e:
        if isinstance(e, HarnessError) and decision.action == "new" and tracker.run_id == "" and d.is_main:
            raise  # bad input (e.g. a missing data folder) before anything was recorded: one line for the user
        return _failed(variant, d, tracker, e)


def open_run(variant: Variant, cfg: RunConfig, rec: Recording, decision: Decision, tags: dict) -> OnceMetrics:
    """Rank 0: the interrupted run reopened (resume), or a new run created with `tags`."""
    if decision.action == "resume":
        tracker = OnceMetrics(
            tracking.Tracker.reopen(rec.uri, decision.run_id), tracking.logged_steps(rec.uri, decision.run_id)
        )
        print(
            f"{variant.name}: resuming run {decision.run_id} from {rec.checkpoint}"
            if rec.checkpoint.is_file()
            else f"{variant.name}: resuming run {decision.run_id} from epoch 1 (it stopped before its "
            "first checkpoint)",
            file=sys.stderr,
        )
        return tracker
    name = rec.run_name or run_name(variant.name, cfg.seed)
    return OnceMetrics(tracking.Tracker.create(rec.uri, rec.exp_id, name, tags, parent=rec.parent))


def record_setup(
    tracker: OnceMetrics, cfg: RunConfig, data: data_mod.Datasets, rec: Recording, decision: Decision, tags: dict
) -> None:
    """Rank 0: the run's tags, params, resolved config and skipped images; a new run's data inputs."""
    tracker.set_tags(tags)
    tracker.log_params(
        cfg.params()
        | {
            "dataset_fingerprint": data.fingerprint,
            "num_classes": str(data.num_classes),
            "train_size": str(len(data.train)),
            "val_size": str(len(data.val)),
        }
    )
    tracker.log_text(_config_json(cfg, data), schema.ART_CONFIG)
    tracker.log_metrics({schema.SKIPPED_IMAGES: len(data.skipped)})  # once per run (step 0)
    if decision.action == "new":
        tracking.log_inputs(rec.uri, tracker.run_id, data_inputs(cfg, data))


def _fit(model, cfg: RunConfig, data, d: Dist, rec: Recording, tracker, decision: Decision, verbose: bool):
    """`engine.fit`, each epoch logged as it ends (and a resumed run's missing epochs first), with MLflow's system
    metrics when asked. Its `FitResult`."""

    def log_epoch(stats: engine.EpochStats) -> None:
        tracker.log_metrics(stats.metrics(), step=stats.epoch)
        tracker.log_series(schema.TRAIN_ERR, stats.train_curve)

    def on_epoch(stats: engine.EpochStats) -> None:
        log_epoch(stats)
        if rec.on_epoch is not None:
            rec.on_epoch(stats)

    def on_resume(history: list[engine.EpochStats]) -> None:
        for stats in history:  # only what the run lacks: OnceMetrics drops the rest
            log_epoch(stats)

    monitor = tracking.SystemMetrics(
        rec.uri, tracker.run_id, enabled=rec.system_metrics and d.is_main, resume=decision.action == "resume"
    )
    with monitor:
        return engine.fit(
            model, cfg, data.train, data.val, d, rec.checkpoint, on_epoch, verbose=verbose, on_resume=on_resume
        )


def _failed(variant: Variant, d: Dist, tracker, e: Exception) -> Outcome:
    """A failure while training or finishing: recorded on the run (error.txt, FAILED), this variant's outcome. A
    failed collective stops the whole command: the ranks may be out of step."""
    tracker.log_text(traceback.format_exc(), schema.ART_ERROR)
    tracker.finish("FAILED")
    if not d.is_main:  # rank 0 records and reports the failure; this rank's line says why it stopped too
        print(f"rank {d.rank}: {variant.name} failed: {distributed.describe(e)}", file=sys.stderr)
    if d.enabled and distributed.collective_failed(e):  # not an agreed failure: the ranks may be out of step
        raise HarnessError(
            f"{variant.name}: a collective failed on rank {d.rank} ({distributed.describe(e)}); the variant is "
            "FAILED and the run stops: the process group cannot be trusted for the next variant"
        ) from None
    return Outcome(variant=variant.name, status="failed", run_id=tracker.run_id, error=distributed.describe(e))


class OnceMetrics:
    """A run's tracker that logs each (metric, step) at most once: pairs the run already holds (`known`, from
    `tracking.logged_steps` when it is resumed) or that this process logged are dropped; all else is passed on."""

    def __init__(self, tracker: tracking.Tracker, known: set[tuple[str, int]] | None = None) -> None:
        self.tracker, self.known = tracker, set(known or ())

    @property
    def run_id(self) -> str:
        return self.tracker.run_id

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        new = {k: v for k, v in metrics.items() if (k, step) not in self.known}
        if new:
            self.tracker.log_metrics(new, step=step)
            self.known |= {(k, step) for k in new}

    def log_series(self, key: str, points: Iterable[tuple[int, float]]) -> None:
        new = [(int(step), v) for step, v in points if (key, int(step)) not in self.known]
        if new:
            self.tracker.log_series(key, new)
            self.known |= {(key, step) for step, _ in new}

    def __getattr__(self, name: str):
        return getattr(self.tracker, name)


def _config_json(cfg: RunConfig, data: data_mod.Datasets) -> str:
    d = json.loads(cfg.to_json())
    d["dataset_fingerprint"] = data.fingerprint
    d["classes"] = data.classes
    d["skipped_files"] = data.skipped
    d["profile_deviations"] = list(cfg.profile_deviations)
    return json.dumps(d, indent=2, sort_keys=True)


def skipped(uri: str, run_id: str, variant: Variant, cfg: RunConfig) -> Outcome:
    """A finished identical run's outcome, read back from its metrics."""
    m = tracking.client(uri).get_run(run_id).data.metrics
    learned = m.get(schema.LEARNED)
    return Outcome(
        variant=variant.name,
        status="skipped",
        run_id=run_id,
        top1=m.get(schema.FINAL_TOP1),
        top5=m.get(schema.FINAL_TOP5),
        protocol=cfg.recipe.test_protocol,
        learned=None if learned is None else bool(learned),
        epochs=cfg.recipe.epochs,
    )

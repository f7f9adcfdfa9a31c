"""`harness run`: for each variant, resolve its config, skip or resume, fit, evaluate, record in MLflow.

variant = get_variant(name) -> cfg = config.resolve(...) -> model = variant.build(C) -> engine.fit(...) ->
evaluate(...) under both test protocols -> tracking (params, tags, metrics, artifacts) -> summary -> report.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from harness import (
    checkpoint,
    distributed,
    engine,
    evaluate,
    locks,
    memory,
    mlmodel,
    note,
    plan,
    schema,
    store,
    tracking,
)
from harness import data as data_mod
from harness.analysis import record
from harness.config import (
    PROFILES,
    RunConfig,
    choose_profile,
    own_recipe,
    resolve,
    run_dropout_scaling,
    wants_qualitative,
)
from harness.distributed import Dist
from harness.errors import HarnessError
from harness.plan import PlannedRun
from harness.report import figures
from harness.request import EvalRequest, RunRequest
from variants import Variant, get_variant


@dataclass
class Outcome:
    variant: str
    status: str  # finished, skipped, failed
    run_id: str = ""
    top1: float | None = None
    top5: float | None = None
    protocol: str = ""
    learned: bool | None = None
    epochs: int = 0
    seconds: float = 0.0
    error: str = ""
    seed: int | None = None


def planned(req: RunRequest) -> tuple[list[Variant], str, tuple[PlannedRun, ...]]:
    """The requested variants, the profile's name and the (variant, seed) runs to train, in order: `--seeds N` or
    `--seed S` for every variant; else `run --all` follows the profile's plan (`harness.plan`); else seed 0."""
    from variants import UnknownVariantError, claims, list_variants

    if req.all and req.names:
        raise HarnessError("give either --all or variant names, not both")
    if not req.all and not req.names:
        raise HarnessError("name at least one variant, or --all (see `python -m harness list`)")
    try:
        chosen = list_variants() if req.all else [get_variant(n) for n in req.names]
    except UnknownVariantError as e:
        raise HarnessError(str(e)) from None
    profile = choose_profile(req)[0].name
    if not follows_plan(req):
        runs = plan.fixed_seeds([v.name for v in chosen], range(req.seed, req.seed + (req.seeds or 1)))
    else:
        runs = plan.plan(chosen, claims(), seeds_table(req, chosen, profile), profile)
    return chosen, profile, plan.shifted(runs, req.seed_offset)


def seeds_table(req: RunRequest, chosen: Sequence[Variant], profile: str) -> tuple[plan.ClaimSeeds, ...]:
    """The plan's seed table: the proxy's `PROXY_SEEDS`; on the paper profile the two-stage table, its second stage
    read from this store's experiment for the data (`harness.report.design`); none elsewhere."""
    from variants import claims

    if profile == "proxy":
        return plan.PROXY_SEEDS
    if profile != "paper":
        return ()
    from harness.report import design

    experiment = experiment_name(resolve(chosen[0], replace(req, seed=0)))
    try:
        return design.paper_seeds(req.uri, experiment, claims(), chosen, req.seed_offset, req.max_seeds)
    except ValueError as e:  # --max-seeds below what a verdict reads
        raise HarnessError(str(e)) from None


def follows_plan(req: RunRequest) -> bool:
    """`run --all` with neither `--seeds` nor `--seed`: the profile's plan chooses the seeds."""
    return req.all and req.seeds is None


def describe_plan(req: RunRequest) -> str:
    """`harness run --plan` (no names: `--all`): what `harness run` with the same options would train, and why."""
    from variants import claims

    if not req.names:
        req = replace(req, all=True)
    chosen, profile, runs = planned(req)
    target = (
        ("--all" if req.all else " ".join(req.names))
        + ("" if req.seeds is None else f" --seed {req.seed}" if req.seeds == 1 else f" --seeds {req.seeds}")
        + (f" --seed-offset {req.seed_offset}" if req.seed_offset else "")
    )
    table = seeds_table(req, chosen, profile) if follows_plan(req) else ()
    text = plan.describe(runs, claims(), table, f"Plan for `run {target}` on the {profile} profile")
    if profile == "paper" and follows_plan(req):
        text += (
            "\n\nTwo stages (harness/plan.py): the first trains 3 seeds a side of every claim; once they have "
            "finished, the same command plans the second stage from their spread (the claims whose reason says "
            '"second stage" have it) and trains only the runs the store does not hold.'
        )
    return text


def configs(req: RunRequest, d: Dist) -> list[tuple[Variant, RunConfig]]:
    """Each planned (variant, seed) with its fully resolved configuration; bad names or values are HarnessErrors."""
    chosen, _, runs = planned(req)
    by_name = {v.name: v for v in chosen}
    return [
        (
            by_name[r.variant],
            resolve(by_name[r.variant], replace(req, seed=r.seed), device=str(d.device), world_size=d.world_size),
        )
        for r in runs
    ]


def data_spec(cfg: RunConfig) -> data_mod.DataSpec:
    r = cfg.recipe
    return data_mod.DataSpec(
        dataset=cfg.dataset,
        root=Path(cfg.data_dir) if cfg.data_dir else None,
        image_size=r.crop,
        resize=r.resize,
        train_aug=r.train_aug,
        flip=cfg.flip,
        pca_lighting=r.pca_lighting,
        pca_alpha_std=r.pca_alpha_std,
        limit_train=cfg.limit_train,
        limit_val=cfg.limit_val,
        input_scale=r.input_scale,
        input_mean=cfg.input_mean,
        batch_size=r.batch_size,
    )


@lru_cache(maxsize=8)
def load(spec: data_mod.DataSpec, protocol: str) -> data_mod.Datasets:
    return data_mod.load_datasets(spec, protocol)


def experiment_name(cfg: RunConfig) -> str:
    name = data_mod.SOURCES[cfg.dataset].experiment_dataset(cfg.dataset_name)
    return schema.EXPERIMENT_NAME.format(dataset=name, profile=cfg.profile)


def checkpoint_path(req: RunRequest, cfg: RunConfig) -> Path:
    root = Path(req.checkpoint_dir) if req.checkpoint_dir else store.local_root(req.uri)
    return root / "checkpoints" / f"{cfg.variant}-{cfg.config_hash()}" / "last.pt"


def run_tags(cfg: RunConfig, variant: Variant, data: data_mod.Datasets) -> dict[str, str]:
    tags = {
        schema.TAG_KIND: "variant",
        schema.TAG_VARIANT: cfg.variant,
        schema.TAG_PAPER: cfg.paper,
        schema.TAG_PROFILE: cfg.profile,
        schema.TAG_DATASET: cfg.dataset,
        schema.TAG_DATASET_NAME: cfg.dataset_name,
        schema.TAG_SPLIT: data.split_name,
        schema.TAG_PROTOCOL: cfg.recipe.test_protocol,
        schema.TAG_RECIPE_MODIFIED: str(cfg.recipe_modified).lower(),
        schema.TAG_MODIFIED_KEYS: ",".join(cfg.modified_keys),
        schema.TAG_CONFIG_HASH: cfg.config_hash(),
        schema.TAG_GIT: tracking.git_commit(),
        schema.TAG_TORCH: torch.__version__,
        schema.TAG_DEVICE: cfg.device,
    }
    if variant.ablation_of:
        tags[schema.TAG_ABLATION_OF] = variant.ablation_of
    if cfg.tuned_from:
        tags[schema.TAG_TUNED_FROM] = cfg.tuned_from
    tags[schema.TAG_NOTE] = note.run_note(variant, cfg, cfg.dataset_name, data.split_name)
    return tags


def data_inputs(cfg: RunConfig, data: data_mod.Datasets) -> list[tracking.DataInput]:
    """The two splits a run reads, as MLflow dataset inputs (digest: the data fingerprint)."""
    source = cfg.data_dir or f"harness:{cfg.dataset}"  # an embedded data set: built by harness.data
    return [
        tracking.DataInput(cfg.dataset_name, split, data.fingerprint, source, len(ds), data.num_classes)
        for split, ds in (("train", data.train), (data.split_name, data.val))
    ]


def run_name(variant: str, seed: int) -> str:
    """The run's name in MLflow's runs table, `alexnet2012 s3`: the seeds of one variant are told apart there. A name
    only: skip and resume find a run by its tags (config hash, kind), never by its name."""
    return f"{variant} s{seed}"


@dataclass(frozen=True)
class Recording:
    """Where and how one variant's run is recorded. `harness run` uses the defaults; a sweep trial changes them."""

    uri: str
    exp_id: str
    parent: str | None
    checkpoint: Path  # per-epoch training checkpoint, deleted when the run finishes
    reuse: bool = True  # skip an identical finished configuration, resume an interrupted one (trials: never)
    run_name: str | None = None  # default: `run_name(variant, seed)`
    tags: Mapping[str, str] = field(default_factory=dict)  # added to the run's tags (a trial's sweep and number)
    log_weights: bool = True  # False: no final.pt (~230 MB for AlexNet); sweep trials re-run in full from the best
    on_epoch: Callable[[engine.EpochStats], None] | None = None  # after each epoch is logged (a sweep's pruner)
    wait: bool = False  # another process holds this configuration's lock: wait for it (`run --wait`), else refuse
    register: bool = False  # register the final weights in the Model Registry under the variant's name
    system_metrics: bool = False  # MLflow's system metrics (CPU, memory, GPU) while training
    seed_offset: int = 0  # `--seed-offset K`: the plan's seed s is seed s + K (the qualitative runs are its first)


@dataclass(frozen=True)
class Decision:
    # "skip" (identical finished run), "resume" (an interrupted run: from its checkpoint, or from epoch 1 in the
    # same run when it has neither a checkpoint nor an epoch logged), "new", or "refuse" (`message` says why: another
    # live process trains this configuration)
    action: str
    run_id: str = ""
    message: str = ""


def decide(cfg: RunConfig, rec: Recording) -> Decision:
    """Rank 0's choice for one configuration, made while holding its lock (`train_variant`): skip it, resume its
    interrupted run, or start a new run.

    Only an interrupted run is resumed or closed: RUNNING without a live owner (`tracking.owner_alive`), or KILLED.
    A FAILED or FINISHED run keeps its status and end time; after a failure the configuration starts over in a new
    run. A checkpoint that cannot be resumed (truncated, corrupt) is moved aside and the configuration starts over in
    a new run, the interrupted one marked FAILED with the reason (`error.txt`): each run's epochs come from one
    training, never a mix of two.
    """
    prev = tracking.find_previous(rec.uri, rec.exp_id, cfg.config_hash()) if rec.reuse else None
    if prev and prev.status == "FINISHED":
        return Decision("skip", prev.run_id)
    if prev and prev.status == "RUNNING" and tracking.owner_alive(prev.owner):
        owner = locks.parse_owner(prev.owner)
        return Decision(
            "refuse",
            prev.run_id,
            f"{cfg.variant} (config {cfg.config_hash()}): run {prev.run_id} is being trained by "
            f"{owner.describe() if owner else 'another process'}; wait for it, or add --wait",
        )
    interrupted = prev is not None and prev.status in ("RUNNING", "KILLED")
    if prev and interrupted and rec.checkpoint.is_file():
        problem = checkpoint.check_training(rec.checkpoint, cfg.config_hash())
        if problem is None:
            return Decision("resume", prev.run_id)
        aside = checkpoint.move_aside(rec.checkpoint)
        note = (
            f"checkpoint {rec.checkpoint} cannot be resumed ({problem}): moved to {aside.name}; "
            "this configuration starts over in a new run"
        )
        tracking.fail_unresumable(rec.uri, prev.run_id, note)
        print(f"{cfg.variant}: {note} (run {prev.run_id} marked FAILED)", file=sys.stderr)
    elif prev and interrupted and not tracking.has_epochs(rec.uri, prev.run_id):
        rec.checkpoint.unlink(missing_ok=True)
        return Decision("resume", prev.run_id)  # died before its first epoch was recorded: train it from epoch 1
    elif prev:
        tracking.close_orphan(rec.uri, prev.run_id)  # only a RUNNING run without a live owner
    rec.checkpoint.unlink(missing_ok=True)
    return Decision("new")


def lock_path(cfg: RunConfig, rec: Recording) -> Path:
    """The configuration's lock: CONFIG_HASH.lock beside its checkpoint (a trial's: beside the trial's checkpoint)."""
    if rec.reuse:
        return rec.checkpoint.parent / f"{cfg.config_hash()}.lock"
    return rec.checkpoint.with_name(rec.checkpoint.name + ".lock")


def _decide_locked(cfg: RunConfig, rec: Recording, held: contextlib.ExitStack) -> Decision:
    """Rank 0: take the configuration's lock into `held` (waiting for it with `rec.wait`), then `decide`. A lock or
    run held by another process is a "refuse" decision, so that every rank stops, not only rank 0."""
    what = f"{cfg.variant} (config {cfg.config_hash()})"
    try:
        held.enter_context(locks.hold(lock_path(cfg, rec), what, wait=rec.wait))
        for tmp in locks.remove_stale_tmp(rec.checkpoint):
            print(f"{cfg.variant}: removed {tmp.name}, a checkpoint write that did not finish", file=sys.stderr)
        said = False
        while True:
            decision = decide(cfg, rec)
            if decision.action != "refuse" or not rec.wait:
                return decision
            if not said:
                print(f"{decision.message.removesuffix('; wait for it, or add --wait')}: waiting", file=sys.stderr)
                said = True
            time.sleep(2)
    except HarnessError as e:
        return Decision("refuse", message=str(e))
    except Exception as e:  # noqa: BLE001 - e.g. the store failed on rank 0: the other ranks wait in the broadcast
        return Decision("error", message=distributed.describe(e))


def train_variant(variant: Variant, cfg: RunConfig, d: Dist, rec: Recording, verbose: bool = True) -> Outcome:
    """One variant, start to finish, on every rank: rank 0 decides and broadcasts, then `train_tracked`."""
    t0 = time.perf_counter()
    with contextlib.ExitStack() as held:  # rank 0 holds the configuration's lock until its run is closed
        decision: Decision = distributed.broadcast(  # type: ignore[assignment]
            _decide_locked(cfg, rec, held) if d.is_main else None, d
        )
        if decision.action == "refuse":
            raise HarnessError(decision.message)
        if decision.action == "error":  # rank 0 could not decide (the store failed): this variant fails, not the run
            outcome = Outcome(variant.name, "failed", error=decision.message)
            outcome.seed = cfg.seed
            return outcome
        if decision.action == "resume":
            _check_checkpoint_visible(rec.checkpoint, d)
        if decision.action == "skip":
            if d.is_main:  # a process that died after closing its run, before deleting its checkpoint
                rec.checkpoint.unlink(missing_ok=True)
            outcome = (
                _skipped(rec.uri, decision.run_id, variant, cfg)
                if d.is_main
                else Outcome(variant.name, "skipped", decision.run_id)
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
                if decision.action == "resume":
                    tracker = OnceMetrics(
                        tracking.Tracker.reopen(rec.uri, decision.run_id),
                        tracking.logged_steps(rec.uri, decision.run_id),
                    )
                    print(
                        f"{variant.name}: resuming run {decision.run_id} from {rec.checkpoint}"
                        if rec.checkpoint.is_file()
                        else f"{variant.name}: resuming run {decision.run_id} from epoch 1 (it stopped before its "
                        "first checkpoint)",
                        file=sys.stderr,
                    )
                else:
                    tracker = OnceMetrics(
                        tracking.Tracker.create(
                            rec.uri,
                            rec.exp_id,
                            rec.run_name or run_name(variant.name, cfg.seed),
                            tags,
                            parent=rec.parent,
                        )
                    )
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
        model = engine.prepare_model(variant, data.num_classes, cfg.recipe, cfg.seed)

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
            result = engine.fit(
                model, cfg, data.train, data.val, d, rec.checkpoint, on_epoch, verbose=verbose, on_resume=on_resume
            )
        # sweep trials (no weights logged) are not analysed; `harness analyze` can do any finished run later
        qualitative = rec.log_weights and wants_qualitative(cfg.profile, cfg.variant, cfg.seed - rec.seed_offset)
        with distributed.together(d):  # rank 0's final logging failed: FAILED on every rank
            outcome = finish(
                model,
                variant,
                cfg,
                data,
                d,
                tracker,
                result,
                log_weights=rec.log_weights,
                qualitative=qualitative,
                register=rec.register,
                uri=rec.uri,
            )
        if d.is_main:
            rec.checkpoint.unlink(missing_ok=True)
        return outcome
    except engine.Pruned:
        tracker.set_tags({schema.TAG_TRIAL_STATE: "pruned"})
        tracker.finish("KILLED")
        rec.checkpoint.unlink(missing_ok=True)
        return Outcome(variant.name, "pruned", tracker.run_id)
    except (KeyboardInterrupt, SystemExit):
        tracker.finish("KILLED")
        raise
    except Exception as e:
        if isinstance(e, HarnessError) and decision.action == "new" and tracker.run_id == "" and d.is_main:
            raise  # bad input (e.g. a missing data folder) before anything was recorded: one line for the user
        tracker.log_text(traceback.format_exc(), schema.ART_ERROR)
        tracker.finish("FAILED")
        if not d.is_main:  # rank 0 records and reports the failure; this rank's line says why it stopped too
            print(f"rank {d.rank}: {variant.name} failed: {distributed.describe(e)}", file=sys.stderr)
        if d.enabled and distributed.collective_failed(e):  # not an agreed failure: the ranks may be out of step
            raise HarnessError(
                f"{variant.name}: a collective failed on rank {d.rank} ({distributed.describe(e)}); the variant is "
                "FAILED and the run stops: the process group cannot be trusted for the next variant"
            ) from None
        return Outcome(variant.name, "failed", tracker.run_id, error=distributed.describe(e))


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


def finish(
    model,
    variant: Variant,
    cfg: RunConfig,
    data,
    d: Dist,
    tracker,
    result,
    log_weights: bool = True,
    qualitative: bool = False,
    register: bool = False,
    uri: str = "",
) -> Outcome:
    """Final evaluation under the profile's protocols (KSH12 s4.1 ten-crop and centre), artifacts, the qualitative
    evaluation when asked (`harness.analysis`; a failure there is recorded in qualitative/error.txt and does not fail
    the run), status.

    The centre crop is the last epoch's evaluation when this process trained it (`FitResult.last_val`).
    """
    spec = data_spec(cfg)
    finals: dict[str, evaluate.EvalResult] = {}
    for protocol in cfg.final_protocols:
        if protocol == "center" and result.last_val is not None and result.last_val.n == len(data.val):
            finals[protocol] = result.last_val
            continue
        val = load(spec, protocol).val
        finals[protocol] = evaluate.evaluate(
            model,
            val,
            d,
            batch_size=64,
            workers=cfg.workers,
            keep_probs=protocol == cfg.recipe.test_protocol,
            precision=cfg.precision,
        )
    main = finals[cfg.recipe.test_protocol]
    did_learn = engine.learned(main.top1, data.num_classes)
    if d.is_main:
        metrics = {
            schema.FINAL_TOP1: main.top1,
            schema.FINAL_TOP5: main.top5,
            schema.FINAL_LOSS: main.loss,
            schema.LEARNED: float(did_learn),
        }
        for protocol, r in finals.items():
            metrics[schema.PROTOCOL_METRIC.format(protocol=protocol, k="top1")] = r.top1
            metrics[schema.PROTOCOL_METRIC.format(protocol=protocol, k="top5")] = r.top5
        tracker.log_metrics(metrics, step=cfg.recipe.epochs)
        with tempfile.TemporaryDirectory() as tmp:
            tmpd = Path(tmp)
            classes, probs5 = evaluate.top5_table(main.probs)
            np.savez_compressed(
                tmpd / "val_predictions.npz",
                labels=main.labels,
                probs=main.probs,
                top5_classes=classes,
                top5_probs=probs5,
                protocol=np.array(cfg.recipe.test_protocol),
            )
            tracker.log_artifact(tmpd / "val_predictions.npz", "predictions")
            if log_weights:
                torch.save(model.state_dict(), tmpd / "final.pt")
                tracker.log_artifact(tmpd / "final.pt", "checkpoint")
        # a registered run's weights also as an MLflow model (pt2: what the Model Registry serves); an unregistered
        # run keeps one copy, final.pt (the readers: harness.report.read, harness.analysis.record, eval --run-id)
        if log_weights and register and uri:
            logged = mlmodel.log_model(
                uri,
                tracker.run_id,
                model,
                cfg.recipe.crop,
                variant.name,
                register=register,
                version_tags={
                    schema.TAG_MODEL_DATASET: f"{cfg.dataset_name} {data.split_name}",
                    schema.TAG_MODEL_TOP1: f"{main.top1:.2f}",
                    schema.TAG_MODEL_RUN: tracker.run_id,
                },
            )
            if logged.registered:
                print(f"{variant.name}: registered as {logged.registered}", file=sys.stderr)
        fig = figures.curves_figure(
            [
                figures.Curves(
                    f"seed {cfg.seed}",
                    tuple((h.epoch, h.val_top1) for h in result.history if h.val_top1 is not None),
                    tuple((h.epoch, h.train_loss) for h in result.history),
                )
            ],
            variant.name,
            data.num_classes,
        )
        tracker.log_figure(fig, schema.ART_CURVES)
        if qualitative:
            try:
                record.analyze(model, data, tracker, f"{variant.name} seed {cfg.seed}", cfg.seed)
            except Exception:  # noqa: BLE001 - the training result stands; the analyses can be rerun
                tracker.log_text(traceback.format_exc(), f"{schema.ART_QUAL}/error.txt")
                print(f"{variant.name}: qualitative evaluation failed (qualitative/error.txt)", file=sys.stderr)
        tracker.finish("FINISHED")
    return Outcome(
        variant.name,
        "finished",
        tracker.run_id,
        main.top1,
        main.top5,
        cfg.recipe.test_protocol,
        did_learn,
        len(result.history),
    )


def _skipped(uri: str, run_id: str, variant: Variant, cfg: RunConfig) -> Outcome:
    m = tracking.client(uri).get_run(run_id).data.metrics
    learned = m.get(schema.LEARNED)
    return Outcome(
        variant.name,
        "skipped",
        run_id,
        m.get(schema.FINAL_TOP1),
        m.get(schema.FINAL_TOP5),
        cfg.recipe.test_protocol,
        None if learned is None else bool(learned),
        cfg.recipe.epochs,
    )


def summary_table(outcomes: list[Outcome]) -> str:
    head = (
        f"{'variant':36} {'seed':>4} {'status':9} {'protocol':9} {'top-1':>7} {'top-5':>7} {'learned':>7} {'min':>6}  "
        "run id"
    )
    lines = [head, "-" * len(head)]
    for o in outcomes:
        t1 = "-" if o.top1 is None else f"{o.top1:.2f}"
        t5 = "-" if o.top5 is None else f"{o.top5:.2f}"
        learned = "-" if o.learned is None else ("yes" if o.learned else "NO")
        lines.append(
            f"{o.variant:36} {'-' if o.seed is None else o.seed:>4} {o.status:9} {o.protocol:9} {t1:>7} {t5:>7} "
            f"{learned:>7} {o.seconds / 60:>6.1f}  {o.run_id}" + (f"\n    error: {o.error}" if o.error else "")
        )
    return "\n".join(lines)


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


def run_variants(req: RunRequest) -> RunResult:
    """`harness run`: train and record every requested variant (one batch run beside them when there are several)."""
    memory.keep_freed_memory()  # a third faster on the CPU: see harness/memory.py
    d = distributed.init(req.device, req.dist_timeout)
    try:
        return _run(req, d)
    finally:
        distributed.shutdown()


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


def _run(req: RunRequest, d: Dist) -> RunResult:
    uri = req.uri
    pairs = configs(req, d)
    first = pairs[0][1]
    load(data_spec(first), "center")  # bad data paths fail here, before anything is recorded
    exp_name = experiment_name(first)
    exp_id = tracking.experiment_id(uri, exp_name) if d.is_main else ""
    if d.is_main:
        tracking.mark_experiment(uri, exp_id)  # an experiment created before the harness tagged its kind
    parent = req.parent_run_id  # a `--jobs` worker's: the pool opened and closes it
    if d.is_main and parent is None and (req.all or len(pairs) > 1):
        title = "run --all" if req.all else "run " + " ".join(req.names)
        parent = open_batch_run(uri, exp_id, title, first, [(cfg.variant, cfg.seed) for _, cfg in pairs])
    profile = PROFILES[first.profile]
    register = profile.register if req.register is None else req.register
    system_metrics = profile.system_metrics if req.system_metrics is None else req.system_metrics
    keep = register or (profile.keep_weights if req.keep_weights is None else req.keep_weights)
    outcomes: list[Outcome] = []
    try:
        for variant, cfg in pairs:
            rec = Recording(
                uri,
                exp_id,
                None,  # the batch run is the variant runs' sibling (schema.TAG_BATCH), so that the UI lists them all
                checkpoint_path(req, cfg),
                tags={schema.TAG_BATCH: parent} if parent else {},
                wait=req.wait,
                register=register,
                system_metrics=system_metrics,
                log_weights=keep,
                seed_offset=req.seed_offset,
            )
            outcomes.append(train_variant(variant, cfg, d, rec, verbose=req.verbose))
    except (KeyboardInterrupt, HarnessError) as e:
        if parent and d.is_main and not req.parent_run_id:
            tracking.Tracker(uri, parent).finish("KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        raise
    result = RunResult(tuple(outcomes), uri, exp_name, first.profile, first.dataset, d.is_main, parent, exp_id)
    if parent and d.is_main and not req.parent_run_id:
        close_batch_run(uri, parent, outcomes, "FAILED" if result.failed else "FINISHED")
    return result


def summary(result: RunResult) -> str:
    """The table and notes `harness run` prints at the end."""
    lines = ["", summary_table(list(result.outcomes))]
    not_learned = [o.variant for o in result.outcomes if o.learned is False]
    if not_learned:
        lines.append(f"\nDid not learn (val top-1 near chance; see their loss curves): {', '.join(not_learned)}")
    if result.profile != "paper":
        lines.append(
            f"\nProfile {result.profile!r} on {result.dataset}: a proxy, not ImageNet. Its numbers "
            "say whether the pipeline and architectures learn, not whether a paper reproduces."
        )
    lines.append(
        f"\nMLflow store: {result.uri} (experiment {result.experiment!r}); browse it with `python -m harness ui`"
        + (f" at {tracking.ui_link(store.ui_url(result.uri), result.exp_id)}" if result.exp_id else "")
    )
    return "\n".join(lines)


# --- harness eval -------------------------------------------------------------------------------------------------

# TV: the file torchvision's IMAGENET1K_V1 weights are stored under in the torch hub cache.
TV_WEIGHTS = {"IMAGENET1K_V1": "alexnet-owt-7be5be79.pth"}


@dataclass(frozen=True)
class EvalOutcome:
    variant: str
    dataset: str
    split: str
    protocol: str
    result: evaluate.EvalResult
    is_main: bool

    def line(self) -> str:
        r = self.result
        return (
            f"{self.variant} on {self.dataset} {self.split} ({r.n} images, {self.protocol}): "
            f"top-1 {r.top1:.3f}  top-5 {r.top5:.3f}  loss {r.loss:.4f}"
        )


def resolve_weights(req: EvalRequest) -> Path:
    """The weights file: a finished run's final checkpoint, torchvision's from the hub cache, or a path."""
    if req.run_id:
        return tracking.download_artifact(req.uri, req.run_id, schema.ART_CHECKPOINT)
    assert req.weights is not None
    if req.weights in TV_WEIGHTS:
        if req.variant != "torchvision_alexnet":
            raise HarnessError(f"{req.weights} are torchvision's AlexNet weights: evaluate them as torchvision_alexnet")
        path = Path(torch.hub.get_dir()) / "checkpoints" / TV_WEIGHTS[req.weights]
        if not path.is_file():
            raise HarnessError(
                f"{req.weights} not found; no download is attempted: put {TV_WEIGHTS[req.weights]} at {path}"
            )
        return path
    return Path(req.weights)


def _state_width(variant: Variant, state: dict) -> float:
    """The width a state dict was trained at (`Recipe.width`): its first layer's channels over the paper's."""
    first = next((v for k, v in state.items() if k.endswith("weight") and v.dim() == 4), None)
    if first is None:
        return 1.0
    native = next(m for m in variant.build(1).modules() if isinstance(m, torch.nn.Conv2d)).out_channels
    return first.shape[0] / native


def run_input_scale(uri: str, run_id: str) -> float:
    """The input scale a run trained at: its logged `input_scale`, or 1 for runs logged before the field existed
    (all of them fed (x - mean) / std)."""
    return float(tracking.client(uri).get_run(run_id).data.params.get("input_scale", "1.0"))


def run_view(uri: str, run_id: str) -> dict[str, object]:
    """What a run's network saw and how it computed, to evaluate its checkpoint the same way whatever the recipe
    says now: its input scale, crop and resize, and its dropout scaling (from its logged params)."""
    params = tracking.client(uri).get_run(run_id).data.params
    view: dict[str, object] = {
        "input_scale": run_input_scale(uri, run_id),
        "dropout_scaling": run_dropout_scaling(params),
    }
    for key in ("crop", "resize"):
        if key in params:
            view[key] = int(params[key])
    if params.get("pool_to", "None") != "None":  # the positions fc6 read (absent: the network's own)
        view["pool_to"] = int(params["pool_to"])
    view["input_mean"] = params.get("input_mean", "channel")  # runs before mean images: the per-channel mean
    return view


def evaluate_weights(req: EvalRequest) -> EvalOutcome:
    """`harness eval`: load weights into the variant and evaluate them under a test protocol."""
    from variants import UnknownVariantError

    source_run = req.run_id
    if req.model:  # a registered model version: its weights, its name as the variant unless one is given
        registered = mlmodel.load_registered(req.uri, req.model)
        req = replace(req, variant=req.variant or registered.name)
        path, state, source_run = Path(req.model), registered.state, registered.run_id or None
    if not req.variant:
        raise HarnessError("name the variant to evaluate (see `python -m harness list`)")
    try:
        variant = get_variant(req.variant)
    except UnknownVariantError as e:
        raise HarnessError(str(e)) from None
    if not req.model:
        path = resolve_weights(req)
        state = checkpoint.load_state_dict(path)
    fc = [k for k in state if k.endswith("weight") and state[k].dim() == 2]
    if not fc:
        raise HarnessError(f"{path} is not a state dict for {variant.name}: it has no fully connected layer")
    num_classes = state[fc[-1]].shape[0]
    run_req = req.as_run()
    # a run's weights at the scale, size and dropout it was trained with; a file with the variant's own dropout (a
    # profile's override is for training); --set on top of either
    view = run_view(req.uri, source_run) if source_run else {"dropout_scaling": own_recipe(variant).dropout_scaling}
    mean = view.pop("input_mean", None)  # not a recipe field: the run's own mean, whatever the store holds now
    run_req = replace(run_req, sets={**view, **req.sets})
    cfg = resolve(variant, run_req)
    if mean is not None:
        cfg = replace(cfg, input_mean=str(mean))
    model = variant.build(num_classes, _state_width(variant, state), cfg.recipe.dropout_scaling, cfg.recipe.pool_to)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        lines = str(e).splitlines()
        raise HarnessError(
            f"{path} is not a state dict for {variant.name}: {(lines[1] if len(lines) > 1 else lines[0]).strip()}"
        ) from None
    protocol = req.tta or cfg.recipe.test_protocol
    data = load(replace(data_spec(cfg), batch_size=1), protocol)  # evaluation trains nothing: any training set
    if data.num_classes != num_classes:
        raise HarnessError(f"the weights have {num_classes} classes but {cfg.dataset} has {data.num_classes}")
    d = distributed.init(req.device)
    try:
        model.to(d.device)
        result = evaluate.evaluate(
            model, data.val, d, batch_size=req.batch_size, workers=req.workers, precision=req.precision
        )
    finally:
        distributed.shutdown()
    return EvalOutcome(variant.name, cfg.dataset, data.split_name, protocol, result, d.is_main)

"""`harness run`: for each variant, resolve its config, skip or resume, fit, evaluate, record in MLflow.

variant = get_variant(name) -> cfg = config.resolve(...) -> model = variant.build(C) -> engine.fit(...) ->
evaluate(...) under both test protocols -> tracking (params, tags, metrics, artifacts) -> summary -> report.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from harness import data as data_mod
from harness import distributed, engine, evaluate, memory, plots, schema, tracking
from harness.config import PROFILES, RunConfig, resolve
from harness.distributed import Dist
from harness.errors import HarnessError
from variants import Variant, get_variant


@dataclass
class RunOptions:
    names: list[str]
    all: bool = False
    profile: str | None = None
    data: str | None = None
    dataset: str | None = None
    dataset_name: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    sets: dict[str, object] = field(default_factory=dict)
    device: str = "auto"
    tracking_uri: str | None = None
    limit_train: int | None = None
    limit_val: int | None = None
    workers: int = 0
    checkpoint_dir: str | None = None
    report: bool = True
    tuned_from: str | None = None
    verbose: bool = True


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


def choose_profile(opts: RunOptions) -> tuple[str, str]:
    """(profile, dataset): `paper` when --data is given, `proxy` (mnist5k) otherwise."""
    profile = opts.profile or ("paper" if opts.data else "proxy")
    if profile not in PROFILES:
        raise HarnessError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    dataset = opts.dataset or PROFILES[profile].dataset or ("imagefolder" if opts.data else None)
    if dataset is None:
        raise HarnessError("the paper profile needs --data DIR (an ImageNet-style folder with train/ and val/)")
    if dataset in ("imagefolder", "cifar10") and not opts.data:
        raise HarnessError(f"dataset {dataset} needs --data DIR")
    return profile, dataset


def configs(opts: RunOptions, d: Dist) -> list[tuple[Variant, RunConfig]]:
    from variants import UnknownVariantError, list_variants

    if opts.all and opts.names:
        raise HarnessError("give either --all or variant names, not both")
    if not opts.all and not opts.names:
        raise HarnessError("name at least one variant, or --all (see `python -m harness list`)")
    try:
        chosen = list_variants() if opts.all else [get_variant(n) for n in opts.names]
    except UnknownVariantError as e:
        raise HarnessError(str(e)) from None
    profile_name, dataset = choose_profile(opts)
    changes = dict(opts.sets)
    if opts.epochs is not None:
        changes["epochs"] = opts.epochs
    if opts.batch_size is not None:
        changes["batch_size"] = opts.batch_size
    dataset_name = opts.dataset_name or (
        f"imagefolder:{Path(opts.data).name}" if dataset == "imagefolder" and opts.data else dataset
    )
    out = []
    for v in chosen:
        cfg = resolve(
            v, PROFILES[profile_name], dataset=dataset, dataset_name=dataset_name,
            data_dir=str(Path(opts.data).resolve()) if opts.data else None, seed=opts.seed, device=str(d.device),
            world_size=d.world_size, changes=changes, limit_train=opts.limit_train, limit_val=opts.limit_val,
            workers=opts.workers, tuned_from=opts.tuned_from,
        )
        out.append((v, cfg))
    return out


def data_spec(cfg: RunConfig) -> data_mod.DataSpec:
    r = cfg.recipe
    return data_mod.DataSpec(
        dataset=cfg.dataset, root=Path(cfg.data_dir) if cfg.data_dir else None, image_size=r.crop, resize=r.resize,
        train_aug=r.train_aug, flip=cfg.flip, pca_lighting=r.pca_lighting, pca_alpha_std=r.pca_alpha_std,
        limit_train=cfg.limit_train, limit_val=cfg.limit_val, input_scale=r.input_scale,
    )


@lru_cache(maxsize=8)
def load(spec: data_mod.DataSpec, protocol: str) -> data_mod.Datasets:
    return data_mod.load_datasets(spec, protocol)


def experiment_name(cfg: RunConfig) -> str:
    name = cfg.dataset_name if cfg.dataset == "imagefolder" else cfg.dataset
    return schema.EXPERIMENT_NAME.format(dataset=name, profile=cfg.profile)


def checkpoint_path(opts: RunOptions, cfg: RunConfig, uri: str) -> Path:
    root = Path(opts.checkpoint_dir) if opts.checkpoint_dir else (tracking.store_root(uri) or Path("mlruns"))
    return root / "checkpoints" / f"{cfg.variant}-{cfg.config_hash()}" / "last.pt"


def run_tags(cfg: RunConfig, variant: Variant, data: data_mod.Datasets) -> dict[str, str]:
    tags = {
        schema.TAG_KIND: "variant",
        schema.TAG_VARIANT: cfg.variant,
        schema.TAG_PAPER: cfg.paper,
        schema.TAG_PROFILE: cfg.profile,
        schema.TAG_DATASET: cfg.dataset,
        "dataset_name": cfg.dataset_name,
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
    return tags


def train_variant(
    variant: Variant,
    cfg: RunConfig,
    d: Dist,
    uri: str,
    exp_id: str,
    parent: str | None,
    ckpt: Path,
    verbose: bool = True,
    on_epoch_extra=None,  # noqa: ANN001 - callable(EpochStats) for sweeps (pruning)
    extra_tags: dict[str, str] | None = None,
    run_name: str | None = None,
    log_weights: bool = True,
) -> Outcome:
    """One variant, start to finish, on every rank. Rank 0 alone talks to MLflow.

    `log_weights=False` skips the final.pt artifact (~230 MB for AlexNet): sweep trials, whose best configuration is
    re-run in full with `run --from-sweep`.
    """
    t0 = time.perf_counter()
    decision = None
    if d.is_main:
        prev = tracking.find_previous(uri, exp_id, cfg.config_hash()) if extra_tags is None else None
        if prev and prev.status == "FINISHED":
            decision = ("skip", prev.run_id)
        elif prev and ckpt.is_file():
            decision = ("resume", prev.run_id)
        else:
            if prev:  # interrupted before its first checkpoint: start over in a fresh run
                tracking.client(uri).set_terminated(prev.run_id, status="KILLED")
            ckpt.unlink(missing_ok=True)
            decision = ("new", "")
    action, run_id = distributed.broadcast(decision, d)  # type: ignore[misc]
    if action == "skip":
        return _skipped(uri, run_id, variant, cfg) if d.is_main else Outcome(variant.name, "skipped", run_id)

    tracker: tracking.Tracker | tracking.NullTracker = tracking.NullTracker()
    try:
        spec = data_spec(cfg)
        data = load(spec, "center")
        if d.is_main:
            tags = run_tags(cfg, variant, data) | (extra_tags or {})
            if action == "resume":
                tracker = tracking.Tracker.reopen(uri, run_id)
                print(f"{variant.name}: resuming run {run_id} from {ckpt}", file=sys.stderr)
            else:
                tracker = tracking.Tracker.create(uri, exp_id, run_name or variant.name, tags, parent=parent)
            tracker.set_tags(tags)
            tracker.log_params(cfg.params() | {
                "dataset_fingerprint": data.fingerprint, "num_classes": str(data.num_classes),
                "train_size": str(len(data.train)), "val_size": str(len(data.val)),
            })
            tracker.log_text(_config_json(cfg, data), schema.ART_CONFIG)
            tracker.log_metrics({schema.SKIPPED_IMAGES: len(data.skipped)})
        model = engine.prepare_model(variant, data.num_classes, cfg.recipe, cfg.seed)

        def on_epoch(stats: engine.EpochStats) -> None:
            tracker.log_metrics(stats.metrics(), step=stats.epoch)
            if on_epoch_extra is not None:
                on_epoch_extra(stats)

        result = engine.fit(model, cfg, data.train, data.val, d, ckpt, on_epoch, verbose=verbose)
        outcome = finish(model, variant, cfg, data, d, tracker, result, log_weights=log_weights)
        outcome.seconds = time.perf_counter() - t0
        if d.is_main:
            ckpt.unlink(missing_ok=True)
        return outcome
    except engine.Pruned:
        tracker.set_tags({schema.TAG_TRIAL_STATE: "pruned"})
        tracker.finish("KILLED")
        ckpt.unlink(missing_ok=True)
        return Outcome(variant.name, "pruned", tracker.run_id, seconds=time.perf_counter() - t0)
    except (KeyboardInterrupt, SystemExit):
        tracker.finish("KILLED")
        raise
    except Exception as e:  # noqa: BLE001 - one variant's failure must not stop run --all
        if isinstance(e, HarnessError) and action == "new" and tracker.run_id == "" and d.is_main:
            raise  # bad input (e.g. a missing data folder) before anything was recorded: one line for the user
        tracker.log_text(traceback.format_exc(), schema.ART_ERROR)
        tracker.finish("FAILED")
        return Outcome(variant.name, "failed", tracker.run_id, error=f"{type(e).__name__}: {e}".splitlines()[0],
                       seconds=time.perf_counter() - t0)


def _config_json(cfg: RunConfig, data: data_mod.Datasets) -> str:
    d = json.loads(cfg.to_json())
    d["dataset_fingerprint"] = data.fingerprint
    d["classes"] = data.classes
    d["skipped_files"] = data.skipped
    d["profile_deviations"] = list(cfg.profile_deviations)
    return json.dumps(d, indent=2, sort_keys=True)


def finish(model, variant: Variant, cfg: RunConfig, data, d: Dist, tracker, result,  # noqa: ANN001
           log_weights: bool = True) -> Outcome:
    """Final evaluation under the profile's protocols (KSH12 s4.1 ten-crop and centre), artifacts, status.

    The centre crop is the last epoch's evaluation when this process trained it (`FitResult.last_val`).
    """
    spec = data_spec(cfg)
    finals: dict[str, evaluate.EvalResult] = {}
    for protocol in cfg.final_protocols:
        if protocol == "center" and result.last_val is not None and result.last_val.n == len(data.val):
            finals[protocol] = result.last_val
            continue
        val = load(spec, protocol).val
        finals[protocol] = evaluate.evaluate(model, val, d, batch_size=64, workers=cfg.workers,
                                             keep_probs=protocol == cfg.recipe.test_protocol)
    main = finals[cfg.recipe.test_protocol]
    did_learn = engine.learned(main.top1, data.num_classes)
    if d.is_main:
        metrics = {schema.FINAL_TOP1: main.top1, schema.FINAL_TOP5: main.top5, schema.FINAL_LOSS: main.loss,
                   schema.LEARNED: float(did_learn)}
        for protocol, r in finals.items():
            metrics[schema.PROTOCOL_METRIC.format(protocol=protocol, k="top1")] = r.top1
            metrics[schema.PROTOCOL_METRIC.format(protocol=protocol, k="top5")] = r.top5
        tracker.log_metrics(metrics, step=cfg.recipe.epochs)
        with tempfile.TemporaryDirectory() as tmp:
            tmpd = Path(tmp)
            classes, probs5 = evaluate.top5_table(main.probs)
            np.savez_compressed(tmpd / "val_predictions.npz", labels=main.labels, probs=main.probs,
                                top5_classes=classes, top5_probs=probs5, protocol=np.array(cfg.recipe.test_protocol))
            tracker.log_artifact(tmpd / "val_predictions.npz", "predictions")
            if log_weights:
                torch.save(model.state_dict(), tmpd / "final.pt")
                tracker.log_artifact(tmpd / "final.pt", "checkpoint")
        fig = plots.curves(variant.name, result.history, data.num_classes)
        tracker.log_figure(fig, schema.ART_CURVES)
        tracker.finish("FINISHED")
    return Outcome(variant.name, "finished", tracker.run_id, main.top1, main.top5, cfg.recipe.test_protocol,
                   did_learn, len(result.history))


def _skipped(uri: str, run_id: str, variant: Variant, cfg: RunConfig) -> Outcome:
    m = tracking.client(uri).get_run(run_id).data.metrics
    learned = m.get(schema.LEARNED)
    return Outcome(variant.name, "skipped", run_id, m.get(schema.FINAL_TOP1), m.get(schema.FINAL_TOP5),
                   cfg.recipe.test_protocol, None if learned is None else bool(learned), cfg.recipe.epochs)


def summary_table(outcomes: list[Outcome]) -> str:
    head = f"{'variant':36} {'status':9} {'protocol':9} {'top-1':>7} {'top-5':>7} {'learned':>7} {'min':>6}  run id"
    lines = [head, "-" * len(head)]
    for o in outcomes:
        t1 = "-" if o.top1 is None else f"{o.top1:.2f}"
        t5 = "-" if o.top5 is None else f"{o.top5:.2f}"
        learned = "-" if o.learned is None else ("yes" if o.learned else "NO")
        lines.append(f"{o.variant:36} {o.status:9} {o.protocol:9} {t1:>7} {t5:>7} {learned:>7} "
                     f"{o.seconds / 60:>6.1f}  {o.run_id}" + (f"\n    error: {o.error}" if o.error else ""))
    return "\n".join(lines)


def run_command(opts: RunOptions) -> int:
    memory.keep_freed_memory()  # a third faster on the CPU: see harness/memory.py
    d = distributed.init(opts.device)
    try:
        return _run(opts, d)
    finally:
        distributed.shutdown()


def _run(opts: RunOptions, d: Dist) -> int:
    uri = opts.tracking_uri or tracking.default_uri()
    pairs = configs(opts, d)
    load(data_spec(pairs[0][1]), "center")  # bad data paths fail here, before anything is recorded
    exp_name = experiment_name(pairs[0][1])
    exp_id = tracking.experiment_id(uri, exp_name) if d.is_main else ""
    parent = None
    if d.is_main and (opts.all or len(pairs) > 1):
        parent_tracker = tracking.Tracker.create(
            uri, exp_id, "run --all" if opts.all else "run " + " ".join(opts.names),
            {schema.TAG_KIND: "batch", schema.TAG_PROFILE: pairs[0][1].profile,
             schema.TAG_DATASET: pairs[0][1].dataset, schema.TAG_GIT: tracking.git_commit()},
        )
        parent = parent_tracker.run_id
    outcomes: list[Outcome] = []
    try:
        for variant, cfg in pairs:
            ckpt = checkpoint_path(opts, cfg, uri)
            outcomes.append(train_variant(variant, cfg, d, uri, exp_id, parent, ckpt, verbose=opts.verbose))
    except (KeyboardInterrupt, HarnessError) as e:
        if parent and d.is_main:
            tracking.Tracker(uri, parent).finish("KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        raise
    failed = [o for o in outcomes if o.status == "failed"]
    if not d.is_main:
        return 1 if failed else 0
    if parent:
        tracking.Tracker(uri, parent).finish("FAILED" if failed else "FINISHED")
    print()
    print(summary_table(outcomes))
    not_learned = [o.variant for o in outcomes if o.learned is False]
    if not_learned:
        print(f"\nDid not learn (val top-1 near chance; see their loss curves): {', '.join(not_learned)}")
    if pairs[0][1].profile != "paper":
        print(f"\nProfile {pairs[0][1].profile!r} on {pairs[0][1].dataset}: a proxy, not ImageNet. Its numbers "
              "say whether the pipeline and architectures learn, not whether a paper reproduces.")
    print(f"\nMLflow store: {uri} (experiment {exp_name!r}); browse it with `python -m harness ui`")
    code = 1 if failed else 0
    if opts.report:
        code = max(code, _report(uri, exp_name))
    return code


def _report(uri: str, exp_name: str) -> int:
    try:
        from harness.report import generate_report
    except ImportError:
        return 0
    try:
        path = generate_report(uri, [exp_name], Path("reports") / f"{exp_name}.md")
    except HarnessError as e:
        print(f"harness: report: {e}", file=sys.stderr)
        return 1
    print(f"Report: {path}")
    return 0

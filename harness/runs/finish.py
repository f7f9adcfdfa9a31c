"""Finishing a trained run, one step a function: the final evaluation under the profile's protocols (KSH12 s4.1
ten-crop and centre), its metrics, the per-image predictions and final weights, the Model Registry, the training
curves, the qualitative analyses (KSH12 s6.1), then the run's status. Rank 0 alone records; every rank evaluates."""

from __future__ import annotations

import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness import data as data_mod
from harness import engine, evaluate, mlmodel, schema
from harness.analysis import record
from harness.config import RunConfig
from harness.distributed import Dist
from harness.report import figures
from harness.runs.common import Outcome, data_spec, load
from variants import Variant


@dataclass(frozen=True)
class Trained:
    """A model `engine.fit` has trained, and what it was trained as and on: what finishing its run reads."""

    model: torch.nn.Module
    variant: Variant
    cfg: RunConfig
    data: data_mod.Datasets
    fit: engine.FitResult


@dataclass(frozen=True)
class Finishing:
    """What finishing records beyond the metrics: the final weights, the Model Registry (`uri`: the store the
    weights are registered in), the qualitative evaluation."""

    log_weights: bool = True
    qualitative: bool = False
    register: bool = False
    uri: str = ""


def finish(t: Trained, d: Dist, tracker, how: Finishing = Finishing()) -> Outcome:
    """Final evaluation, artifacts, the qualitative evaluation when asked (a failure there is recorded in
    qualitative/error.txt and does not fail the run), status. `tracker`: the run's (rank 0), else a NullTracker."""
    finals = final_evaluations(t, d)
    main = finals[t.cfg.recipe.test_protocol]
    did_learn = engine.learned(main.top1, t.data.num_classes)
    if d.is_main:
        log_final_metrics(tracker, t.cfg, finals, did_learn)
        log_predictions(tracker, t.cfg, main)
        if how.log_weights:
            log_weights(tracker, t.model)
        # a registered run's weights also as an MLflow model (pt2: what the Model Registry serves); an unregistered
        # run keeps one copy, final.pt (the readers: harness.report.read, harness.analysis.record, eval --run-id)
        if how.log_weights and how.register and how.uri:
            register_weights(how.uri, tracker.run_id, t, main)
        log_curves(tracker, t)
        if how.qualitative:
            analyse(tracker, t)
        tracker.finish("FINISHED")
    return Outcome(
        variant=t.variant.name,
        status="finished",
        run_id=tracker.run_id,
        top1=main.top1,
        top5=main.top5,
        protocol=t.cfg.recipe.test_protocol,
        learned=did_learn,
        epochs=len(t.fit.history),
    )


def final_evaluations(t: Trained, d: Dist) -> dict[str, evaluate.EvalResult]:
    """The model under each of the profile's final protocols. The centre crop is the last epoch's evaluation when
    this process trained it (`FitResult.last_val`); per-image probabilities are kept for the recipe's own."""
    cfg, spec = t.cfg, data_spec(t.cfg)
    finals: dict[str, evaluate.EvalResult] = {}
    for protocol in cfg.final_protocols:
        if protocol == "center" and t.fit.last_val is not None and t.fit.last_val.n == len(t.data.val):
            finals[protocol] = t.fit.last_val
            continue
        finals[protocol] = evaluate.evaluate(
            t.model,
            load(spec, protocol).val,
            d,
            batch_size=64,
            workers=cfg.workers,
            keep_probs=protocol == cfg.recipe.test_protocol,
            precision=cfg.precision,
        )
    return finals


def log_final_metrics(tracker, cfg: RunConfig, finals: dict[str, evaluate.EvalResult], did_learn: bool) -> None:
    """The headline numbers (the recipe's own protocol) and every protocol's top-1 and top-5, at the last epoch."""
    main = finals[cfg.recipe.test_protocol]
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


def log_predictions(tracker, cfg: RunConfig, main: evaluate.EvalResult) -> None:
    """Per-image labels, probabilities and top-5 of the recipe's own protocol (`schema.ART_PREDICTIONS`)."""
    classes, probs5 = evaluate.top5_table(main.probs)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "val_predictions.npz"
        np.savez_compressed(
            path,
            labels=main.labels,
            probs=main.probs,
            top5_classes=classes,
            top5_probs=probs5,
            protocol=np.array(cfg.recipe.test_protocol),
        )
        tracker.log_artifact(path, "predictions")


def log_weights(tracker, model: torch.nn.Module) -> None:
    """The final weights as checkpoint/final.pt (`schema.ART_CHECKPOINT`)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "final.pt"
        torch.save(model.state_dict(), path)
        tracker.log_artifact(path, "checkpoint")


def register_weights(uri: str, run_id: str, t: Trained, main: evaluate.EvalResult) -> None:
    """The final weights as the run's MLflow model, registered under the variant's name (`harness.mlmodel`)."""
    logged = mlmodel.log_model(
        uri,
        run_id,
        t.model,
        t.cfg.recipe.crop,
        t.variant.name,
        register=True,
        version_tags={
            schema.TAG_MODEL_DATASET: f"{t.cfg.dataset_name} {t.data.split_name}",
            schema.TAG_MODEL_TOP1: f"{main.top1:.2f}",
            schema.TAG_MODEL_RUN: run_id,
        },
    )
    if logged.registered:
        print(f"{t.variant.name}: registered as {logged.registered}", file=sys.stderr)


def log_curves(tracker, t: Trained) -> None:
    """Validation top-1 and training loss per epoch (`schema.ART_CURVES`)."""
    fig = figures.curves_figure(
        [
            figures.Curves(
                f"seed {t.cfg.seed}",
                tuple((h.epoch, h.val_top1) for h in t.fit.history if h.val_top1 is not None),
                tuple((h.epoch, h.train_loss) for h in t.fit.history),
            )
        ],
        t.variant.name,
        t.data.num_classes,
    )
    tracker.log_figure(fig, schema.ART_CURVES)


def analyse(tracker, t: Trained) -> None:
    """The qualitative evaluation (`harness.analysis.record`); a failure is recorded, not raised."""
    try:
        record.analyze(t.model, t.data, tracker, f"{t.variant.name} seed {t.cfg.seed}", t.cfg.seed)
    except Exception:  # noqa: BLE001 - the training result stands; the analyses can be rerun
        tracker.log_text(traceback.format_exc(), f"{schema.ART_QUAL}/error.txt")
        print(f"{t.variant.name}: qualitative evaluation failed (qualitative/error.txt)", file=sys.stderr)

"""Rank 0's choice for one configuration, under its lock: skip an identical finished run, resume an interrupted one,
start a new one, or refuse (another live process trains it). docs/tracking.md, "One run per configuration"."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness import checkpoint, distributed, engine, locks, tracking
from harness.config import RunConfig
from harness.errors import HarnessError


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


def decide_locked(cfg: RunConfig, rec: Recording, held: contextlib.ExitStack) -> Decision:
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

"""`harness run`: plan the (variant, seed) runs, then train and record them in this process, under one batch run
when there are several.

variant = get_variant(name) -> cfg = config.resolve(...) -> `runs.train.train_variant` (skip / resume / new under
the configuration's lock, `engine.fit`, `runs.finish`: evaluation under both test protocols, artifacts) -> the batch
closed (`runs.batch`) -> summary -> report. `harness eval` is `runs.weights.evaluate_weights`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace

from harness import distributed, memory, mlruns, plan, schema, tracking
from harness.config import RunConfig, choose_profile, resolve
from harness.distributed import Dist
from harness.errors import HarnessError
from harness.plan import PlannedRun
from harness.profiles import PROFILES
from harness.request import RunRequest
from harness.runs import batch
from harness.runs.batch import RunResult
from harness.runs.common import Outcome, checkpoint_path, experiment_name
from harness.runs.decide import Recording
from harness.runs.train import train_variant
from variants import Variant, get_variant


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
    runs = plan.shifted(runs, req.seed_offset)
    if req.only:
        only = set(req.only)
        runs = tuple(r for r in runs if (r.variant, r.seed) in only)
    return chosen, profile, runs


def two_stages(req: RunRequest) -> bool:
    """`run --all` on the paper profile: its plan has a second stage, sized by the first (harness/plan.py)."""
    return follows_plan(req) and not req.only and choose_profile(req)[0].name == "paper"


def second_stage(req: RunRequest, before: Sequence[PlannedRun]) -> RunRequest | None:
    """The request for the runs the plan holds now and did not hold `before` the first stage trained (the second
    stage its seed spread asks for, `harness.report.design`), or None when there are none."""
    seen = set(before)
    new = tuple((r.variant, r.seed) for r in planned(req)[2] if r not in seen)
    return replace(req, only=new) if new else None


def run_stages(req: RunRequest, carry_out: Callable[[RunRequest], RunResult]) -> RunResult:
    """`harness run`: `carry_out(req)` (in this process, worker processes or submitit jobs); on the paper profile's
    `run --all`, then its second stage in the same command, Stein's two stages one after the other: the first
    stage's runs measure each claim's seed spread, the second trains the seeds a side that spread asks for. Under
    torchrun (several ranks) the second stage is left to the same command run again."""
    if not two_stages(req):
        return carry_out(req)
    before = planned(req)[2]
    first = carry_out(req)
    if not first.is_main:
        return first
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        print("The plan's second stage: run the same command again once every rank has ended.", file=sys.stderr)
        return first
    more = second_stage(req, before)
    if more is None:
        return first
    print(
        f"\nSecond stage: {len(more.only)} more runs, the seeds a side that the first stage's spread asks for "
        "(`run --plan` lists them with their reasons)",
        file=sys.stderr,
        flush=True,
    )
    second = carry_out(more)
    return replace(second, outcomes=first.outcomes + second.outcomes)


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
            '"second stage" have it) and trains the runs it adds; run again, it trains only the runs the store '
            "does not hold."
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


def run_variants(req: RunRequest) -> RunResult:
    """`harness run`: train and record every requested variant (one batch run beside them when there are several)."""
    memory.keep_freed_memory()  # a third faster on the CPU: see harness/memory.py
    d = distributed.init(req.device, req.dist_timeout)
    try:
        return _run(req, d)
    finally:
        distributed.shutdown()


def open_batch(req: RunRequest, how: str) -> tuple[batch.Batch, tuple[PlannedRun, ...]]:
    """The batch of runs trained elsewhere (`run --jobs`: worker processes; `run --launcher`: submitit jobs): the
    planned runs' data checked, the experiment created, the batch run opened (`runs.batch.begin`), and the runs to
    hand out."""
    _, _, runs = planned(req)
    first = resolve(get_variant(runs[0].variant), req)
    return batch.begin(req, first, [(r.variant, r.seed) for r in runs], batch.title(req, how)), runs


def _run(req: RunRequest, d: Dist) -> RunResult:
    pairs = configs(req, d)
    first = pairs[0][1]
    several = req.all or len(pairs) > 1
    b = batch.begin(
        req, first, [(cfg.variant, cfg.seed) for _, cfg in pairs], batch.title(req) if several else None, d.is_main
    )
    profile = PROFILES[first.profile]
    register = profile.register if req.register is None else req.register
    system_metrics = profile.system_metrics if req.system_metrics is None else req.system_metrics
    keep = register or (profile.keep_weights if req.keep_weights is None else req.keep_weights)
    with batch.running(b):
        for variant, cfg in pairs:
            rec = Recording(
                uri=req.uri,
                exp_id=b.exp_id,
                parent=None,  # the batch run is the variant runs' sibling (schema.TAG_BATCH): the UI lists them all
                checkpoint=checkpoint_path(req, cfg),
                tags={schema.TAG_BATCH: b.parent} if b.parent else {},
                wait=req.wait,
                register=register,
                system_metrics=system_metrics,
                log_weights=keep,
                seed_offset=req.seed_offset,
            )
            b.outcomes.append(train_variant(variant, cfg, d, rec, verbose=req.verbose))
    return b.result()


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
        + (f" at {tracking.ui_link(mlruns.ui_url(result.uri), result.exp_id)}" if result.exp_id else "")
    )
    return "\n".join(lines)

"""Training: the recipe's optimiser, schedule and init, one epoch at a time, a checkpoint after every epoch.

`fit` is a plain loop: train_one_epoch -> evaluate (centre crop) -> scheduler -> log -> checkpoint. Resume restores
model, optimiser, scheduler, epoch and every RNG state; the shuffle and augmentation of epoch e are seeded from
(seed, e), so a resumed run repeats the uninterrupted one exactly on the CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from harness import checkpoint, distributed, flops
from harness import precision as precision_mod
from harness.augment import TrainView
from harness.config import RunConfig
from harness.distributed import Dist
from harness.evaluate import EvalResult, evaluate
from harness.loader import epoch_seed, eval_loader, train_loader
from harness.parallel import build as parallel
from harness.parallel.shard import Sharded
from harness.progress import Progress
from variants import LrGroup, LrTable, Recipe, Variant
from variants.convnet import count_macs, init_weights, renorm_filters


class Diverged(RuntimeError):
    pass


class Pruned(Exception):
    """Raised by an on-epoch callback (a sweep's pruner) to stop a run early; not a failure."""


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_top1: float
    val_loss: float | None  # None: an epoch the run did not evaluate (RunConfig.eval_epochs)
    val_top1: float | None
    val_top5: float | None
    lr: float
    images_per_sec: float
    epoch_seconds: float
    train_curve: tuple[tuple[int, float], ...] = ()  # EpochTraining.curve: logged as its own series
    tflops: float = 0.0  # achieved training TFLOP/s, all ranks (harness.flops: 6 x forward MACs per image)
    mfu: float | None = None  # tflops / (world size x the GPU's dense peak at this precision); None off known GPUs
    # multi-process runs only: seconds per optimiser step, and bytes one rank sent per step (harness.parallel.comm:
    # ring volumes counted from the shapes; plain DDP's is one all-reduce of every gradient)
    step_seconds: float | None = None
    comm_bytes_per_step: float | None = None
    # seconds of the epoch this rank's host spent waiting for the next batch (EpochTraining.data_wait), and their
    # share of the epoch's training seconds: near 0 when the device limits the run, near 1 when the input does
    # (None: an epoch of a checkpoint written before the metric)
    data_wait_s: float | None = None
    data_wait_fraction: float | None = None

    def metrics(self) -> dict[str, float]:
        return {k: v for k, v in self.__dict__.items() if k not in ("epoch", "train_curve") and v is not None}


@dataclass(frozen=True)
class EpochTraining:
    """What one pass over the training set measured, summed over ranks."""

    loss: float  # mean cross-entropy
    top1: float  # %
    images: int  # images seen across ranks
    seconds: float
    lr: float  # mean lr of the first param group over the epoch's steps
    # (training images seen since the run began, top-1 error % over the last `curve_every` batches) every
    # `curve_every` steps: what KSH12 Fig. 1's time-to-threshold is read from (harness.report.speedup)
    curve: tuple[tuple[int, float], ...] = ()
    data_wait: float = 0.0  # seconds in `next()` on the loader, mean over ranks (the input pipeline's share)


@dataclass
class FitResult:
    history: list[EpochStats] = field(default_factory=list)
    resumed_from: int = 0  # epochs already done when this process started
    last_val: EvalResult | None = None  # the last epoch's centre-crop evaluation, with probabilities


def build_optimizer(model: nn.Module, recipe: Recipe, lr: float) -> torch.optim.SGD:
    """SGD with momentum; biases get `bias_lr_mult` x lr and weight decay only when the recipe says so. Under a
    fixed table (schedule "table") each of the table's groups is a param group, in the table's order, starting at
    `lr`: the scheduler sets each group's own lr (`build_scheduler`)."""
    if recipe.schedule == "table":
        groups = table_groups(model, recipe, lr)
    else:
        weights = [p for n, p in model.named_parameters() if not n.endswith("bias")]
        biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
        groups = [
            {"params": weights, "lr": lr, "weight_decay": recipe.weight_decay},
            {
                "params": biases,
                "lr": lr * recipe.bias_lr_mult,
                "weight_decay": recipe.weight_decay if recipe.bias_weight_decay else 0.0,
            },
        ]
    # fused: one pass over the ~61M parameters per step instead of three (the step dominates small-image CPU runs)
    return torch.optim.SGD(groups, lr=lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay, fused=True)


def _table(recipe: Recipe) -> LrTable:
    if recipe.lr_table is None:
        raise ValueError("schedule 'table' needs a recipe with an lr_table")
    return recipe.lr_table


def table_groups(model: nn.Module, recipe: Recipe, lr: float) -> list[dict]:
    """One param group per group of the recipe's lr table that holds a parameter (named after it), each parameter in
    the group of its layer (`features.conv1.weight`: layer conv1, a weight; a Sharded scheme keeps these names).
    Each group starts at its epoch-1 lr; `initial_lr` (what LambdaLR scales) is the run's `lr` for every group."""
    table = _table(recipe)
    members: dict[str, list[nn.Parameter]] = {g.name: [] for g in table.groups}
    for name, p in model.named_parameters():
        *_, layer, attr = name.split(".")
        members[table.group_of(layer, "bias" if attr == "bias" else "weight").name].append(p)
    return [
        {
            "params": members[g.name],
            "lr": lr * table.lr(g, 1, recipe.epochs) / table.base_lr,
            "initial_lr": lr,
            "weight_decay": recipe.weight_decay if g.weight_decay else 0.0,
            "name": g.name,
        }
        for g in table.groups
        if members[g.name]
    ]


def table_factors(recipe: Recipe, names: list[str]) -> list[Callable[[int], float]]:
    """LambdaLR's factor per param group (`names`: the groups' table names) after k epoch steps: the table's lr in
    the run's epoch k + 1 over its base lr. Plain closures: LambdaLR's state dict then holds no table object."""
    table = _table(recipe)
    by_name = {g.name: g for g in table.groups}

    def factor(group: LrGroup) -> Callable[[int], float]:
        return lambda k: table.lr(group, k + 1, recipe.epochs) / table.base_lr

    return [factor(by_name[n]) for n in names]


def lighting_on(recipe: Recipe, epoch: int) -> bool:
    """Whether the recipe's PCA lighting is on in `epoch` (a table can end it: CHM layer-params-145.cfg l.178)."""
    if recipe.schedule != "table" or recipe.lr_table is None:
        return True
    return recipe.lr_table.lighting(epoch, recipe.epochs)


def epoch_view(view: Callable, recipe: Recipe, epoch: int) -> Callable:
    """The training view of `epoch`: the data set's, without PCA lighting where the schedule has switched it off."""
    if isinstance(view, TrainView) and view.eig is not None and not lighting_on(recipe, epoch):
        return replace(view, eig=None)
    return view


def milestones(recipe: Recipe) -> list[int]:
    # OWT14 s5: drops at fractions of training; round() gives the seed's epochs 22, 45, 68 of 90
    return sorted({max(1, round(f * recipe.epochs)) for f in recipe.milestones})


def warmup_linear(recipe: Recipe, steps_per_epoch: int) -> Callable[[int], float]:
    """lr factor at optimiser step s: linear rise over `warmup_epochs`, then linear fall to 0 at the last step.

    Not a paper schedule: the CPU proxy's (harness.profiles.PROXY), where a few hundred steps are all of training."""
    total = max(1, recipe.epochs * steps_per_epoch)
    warm = min(total - 1, round(recipe.warmup_epochs * steps_per_epoch))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, 1.0 - (step - warm) / (total - warm))

    return factor


def per_step(recipe: Recipe) -> bool:
    """Whether the schedule moves the lr every optimiser step (else once per epoch)."""
    return recipe.schedule == "warmup_linear"


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int = 1):
    if recipe.schedule == "warmup_linear":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_linear(recipe, steps_per_epoch))
    if recipe.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones(recipe), gamma=recipe.gamma)
    if recipe.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=recipe.step_size, gamma=recipe.gamma)
    if recipe.schedule == "table":
        names = [g["name"] for g in optimizer.param_groups]
        return torch.optim.lr_scheduler.LambdaLR(optimizer, table_factors(recipe, names))
    if recipe.schedule == "plateau":
        # KSH12 s5: divide by 10 when the validation error stops improving, at most three times
        floor = [g["lr"] * recipe.gamma**recipe.max_lr_drops * 0.999 for g in optimizer.param_groups]
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=recipe.gamma, patience=recipe.plateau_patience, min_lr=floor
        )
    raise ValueError(f"unknown schedule {recipe.schedule!r}")


def step_scheduler(scheduler: object, val_top1: float | None, recipe: Recipe) -> None:
    """The once-per-epoch step (per-step schedules move in `train_one_epoch`)."""
    if per_step(recipe):
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_top1)
    else:
        scheduler.step()  # type: ignore[attr-defined]


def prepare_model(variant: Variant, num_classes: int, recipe: Recipe, seed: int) -> nn.Module:
    """Build and initialise under `seed`: PyTorch's default init (kept by some recipes) draws at build time."""
    torch.manual_seed(seed)
    model = variant.build(num_classes, recipe.width, recipe.dropout_scaling, recipe.pool_to)
    init_weights(model, recipe.init)
    if recipe.filter_rms_max is not None:
        renorm_filters(model, recipe.filter_rms_max)
    return model


def curve_every(steps_per_epoch: int) -> int:
    """Steps per point of the training-error curve: 10, or 1/50 epoch when longer (ImageNet: ~250 steps)."""
    return max(10, steps_per_epoch // 50)


def _train_step(
    model: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor],
    view: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    g: torch.Generator,
    optimizer: torch.optim.Optimizer,
    scheduler: object,
    d: Dist,
    recipe: Recipe,
    precision: str,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One update from one uint8 batch: to the device, its view there (draws from `g`), forward under autocast,
    backward, the optimiser's step, ZF13's filter renormalisation and a per-step schedule. The batch's mean loss and
    hits stay on the device (no host sync)."""
    x, y = batch
    x, y = x.to(d.device, non_blocking=True), y.to(d.device, non_blocking=True)
    x = view(x, g).contiguous(memory_format=precision_mod.memory_format(d.device))
    with precision_mod.autocast(d.device, precision):
        logits = model(x)
    loss = F.cross_entropy(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if recipe.filter_rms_max is not None:
        renorm_filters(model, recipe.filter_rms_max)  # ZF13 s3: after every update
    if scheduler is not None and per_step(recipe):
        scheduler.step()  # type: ignore[attr-defined]
    return loss, (logits.argmax(1) == y).sum(), len(y)


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    view: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    d: Dist,
    recipe: Recipe,
    progress: Progress,
    scheduler: object = None,
    images_before: int = 0,
    every: int = 10,
    generator: torch.Generator | None = None,
    precision: str = "fp32",
    world: Dist | None = None,
) -> EpochTraining:
    """One pass over the training set; `scheduler` steps after every optimiser step when the schedule is per step.
    `d`: the ranks that read different images (the sums and the curve); `world` (default `d`): every rank of the
    run, which agree on a failure at each step (`distributed.check`; a parallel scheme's ranks share steps).

    Each uint8 batch goes to the device as it is and becomes the network's input there (`view`, its draws from
    `generator`). Loss and hits add up on the device; the host reads them once every `every` steps, when the error
    of those steps' batches (this rank's) joins `curve`, keyed by images seen so far across ranks (`images_before`:
    the earlier epochs'), and a loss that is no longer finite stops the run."""
    model.train()
    g = generator if generator is not None else torch.Generator()
    start = time.perf_counter()
    sums = torch.zeros(3, dtype=torch.float64, device=d.device)  # loss sum, hits, hits since the last curve point
    loss_sum = correct = seen = lr_sum = 0.0
    curve: list[tuple[int, float]] = []
    chunk_seen = steps = 0
    wait = 0.0  # seconds blocked on the loader: a device that waits for data waits for the host here

    def read() -> None:  # the one host sync per `every` steps
        nonlocal loss_sum, correct, chunk_seen
        loss_sum, correct, chunk_hits = sums.tolist()
        if not math.isfinite(loss_sum):
            raise Diverged(f"loss became {loss_sum} (diverged)")
        if chunk_seen:
            curve.append((images_before + int(seen) * d.world_size, 100.0 * (1 - chunk_hits / chunk_seen)))
            elapsed = time.perf_counter() - start
            ips = seen * d.world_size / elapsed
            progress.update(chunk_seen, loss=loss_sum / seen, acc=100 * correct / seen, ips=ips)
        sums[2] = 0
        chunk_seen = 0

    batches = iter(loader)
    pending: Exception | None = None  # this rank's failure, raised on every rank at the next step (`check`)
    while True:
        batch = None
        if pending is None:
            asked = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                pass
            except Exception as e:  # noqa: BLE001 - e.g. a file this rank cannot read: every rank stops with it
                pending = e
            wait += time.perf_counter() - asked
        if distributed.check(pending, world or d, done=batch is None):  # before any collective of this step
            break
        lr_sum += optimizer.param_groups[0]["lr"]
        loss, hits, n = _train_step(model, batch, view, g, optimizer, scheduler, d, recipe, precision)
        sums += torch.stack([loss.detach().double() * n, hits.double(), hits.double()])
        seen += n
        steps, chunk_seen = steps + 1, chunk_seen + n
        if steps % every == 0:
            try:
                read()
            except Diverged as e:  # one rank's loss: raised on every rank at the next step's check
                pending = e
    with distributed.together(world or d):
        read()  # the epoch's last steps (every epoch of a short run has at least this point)
    seconds = time.perf_counter() - start
    loss_sum, correct, seen, wait = distributed.all_reduce_sum([loss_sum, correct, seen, wait], d)
    if seen == 0:
        raise Diverged("no training batch: the training set is smaller than one batch")
    mean_lr = lr_sum / steps if steps else optimizer.param_groups[0]["lr"]
    return EpochTraining(
        loss_sum / seen, 100 * correct / seen, int(seen), seconds, mean_lr, tuple(curve), wait / d.world_size
    )


def _wrap(model: nn.Module, cfg: RunConfig, d: Dist) -> tuple[nn.Module, Sharded | None, Dist]:
    """What trains: the model itself, its DDP wrapper, or (--parallel towers / hybrid, harness.parallel) this rank's
    shard, which is gathered into `model` after every epoch to be evaluated and checkpointed as a plain run's; and
    the ranks that read different images."""
    precision_mod.configure(d.device, cfg.precision)
    model.to(d.device, memory_format=precision_mod.memory_format(d.device))
    net: nn.Module = model
    scheme = parallel.build(cfg.parallel, model, d, cfg.recipe.batch_size) if cfg.parallel != "none" else None
    data_d = scheme.data_dist(d) if scheme is not None else d
    if scheme is not None:
        net = scheme
    elif d.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[d.device] if d.device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    return net, scheme, data_d


def _resume(
    ckpt_path: Path,
    model: nn.Module,
    scheme: Sharded | None,
    optimizer: torch.optim.Optimizer,
    scheduler: object,
    d: Dist,
    on_resume: Callable[[list[EpochStats]], None] | None,
    result: FitResult,
) -> int:
    """The first epoch to train: 1, or the one after the checkpoint's (weights, optimizer, scheduler, RNG and
    history restored). Rank 0 decides whether to resume (runs.train.train_variant has checked that every rank sees
    its checkpoint): a stale file only one node sees never makes that node start at another epoch."""
    if not distributed.broadcast(ckpt_path.is_file(), d):
        return 1
    state = checkpoint.load(ckpt_path)
    model.load_state_dict(state["model"])
    if scheme is not None:
        scheme.load_from(model)
        optimizer.load_state_dict(scheme.shard_optimizer_state(state["optimizer"], optimizer))
    else:
        optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])  # type: ignore[attr-defined]
    checkpoint.set_rng_state(state["rng"])
    result.history = [EpochStats(**h) for h in state["history"]]
    result.resumed_from = int(state["epoch"])
    with distributed.together(d):
        if d.is_main and on_resume is not None:
            on_resume(list(result.history))
    return int(state["epoch"]) + 1


def _epoch_stats(
    epoch: int,
    trained: EpochTraining,
    val: EvalResult | None,
    cfg: RunConfig,
    d: Dist,
    model: nn.Module,
    scheme: Sharded | None,
    per_image: float,
    peak: float | None,
) -> EpochStats:
    """One epoch's record: training and validation numbers, speed, data wait, MFU and (several ranks) the bytes one
    rank sent per step."""
    stats = EpochStats(
        epoch,
        trained.loss,
        trained.top1,
        val.loss if val else None,
        val.top1 if val else None,
        val.top5 if val else None,
        trained.lr,
        trained.images / trained.seconds,
        trained.seconds,
        trained.curve,
    )
    stats.tflops = stats.images_per_sec * per_image / 1e12
    stats.data_wait_s, stats.data_wait_fraction = trained.data_wait, min(1.0, trained.data_wait / trained.seconds)
    stats.mfu = stats.tflops / (peak * d.world_size) if peak else None
    if d.enabled:
        step_count = max(1, trained.images // cfg.recipe.batch_size)
        stats.step_seconds = trained.seconds / step_count
        sent = scheme.meter.take() if scheme is not None else parallel.ddp_bytes_per_step(model, d.world_size)
        stats.comm_bytes_per_step = sent / step_count if scheme is not None else sent
    return stats


def fit(
    model: nn.Module,
    cfg: RunConfig,
    train_set: Dataset,
    val_set: Dataset,
    d: Dist,
    ckpt_path: Path,
    on_epoch: Callable[[EpochStats], None],
    verbose: bool = True,
    on_resume: Callable[[list[EpochStats]], None] | None = None,
) -> FitResult:
    """Train from the checkpoint at `ckpt_path` (if any) to the recipe's last epoch. After each epoch the main rank
    writes the checkpoint, then calls `on_epoch`; on resume `on_resume` gets the checkpoint's history first (to log
    what a process that died between the two did not)."""
    recipe = cfg.recipe
    net, scheme, data_d = _wrap(model, cfg, d)
    per_image = flops.training_flops_per_image(count_macs(model, recipe.crop))
    peak = flops.peak_tflops(torch.cuda.get_device_name(d.device), cfg.precision) if d.device.type == "cuda" else None
    optimizer = build_optimizer(scheme if scheme is not None else model, recipe, cfg.effective_lr)
    steps = len(train_set) // recipe.batch_size  # type: ignore[arg-type]
    scheduler = build_scheduler(optimizer, recipe, steps)
    every = curve_every(steps)
    result = FitResult()
    start_epoch = _resume(ckpt_path, model, scheme, optimizer, scheduler, d, on_resume, result)
    loader = train_loader(train_set, recipe.batch_size // data_d.world_size, cfg.seed, data_d, cfg.workers)
    val_batch = max(64, recipe.batch_size)
    val_loader = eval_loader(val_set, val_batch, d, cfg.workers)
    view = train_set.view  # type: ignore[attr-defined]
    for epoch in range(start_epoch, recipe.epochs + 1):
        torch.manual_seed(epoch_seed(cfg.seed, epoch, d.rank))  # dropout of this epoch
        g = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch, data_d.rank))  # this epoch's augmentation
        loader.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
        progress = Progress(
            f"{cfg.variant} epoch {epoch}/{recipe.epochs}",
            total=steps * recipe.batch_size,
            enabled=verbose and d.is_main,
        )
        trained = train_one_epoch(
            net, loader, epoch_view(view, recipe, epoch), optimizer, data_d, recipe, progress, scheduler,
            (epoch - 1) * steps * recipe.batch_size, every, g, cfg.precision, world=d,
        )  # fmt: skip
        if scheme is not None:
            scheme.sync_to(model)  # a collective (every rank): the one-device weights to evaluate and checkpoint
        last = epoch == recipe.epochs
        val = None
        if last or not cfg.eval_epochs or epoch in cfg.eval_epochs:
            val = evaluate(
                model, val_set, d, batch_size=val_batch, keep_probs=last, precision=cfg.precision, loader=val_loader
            )
        if last:
            result.last_val = val  # the final centre-crop numbers: `runs.finish` does not evaluate them again
        progress.close(f"val top-1 {val.top1:.2f} top-5 {val.top5:.2f} loss {val.loss:.4f}" if val else "not evaluated")
        stats = _epoch_stats(epoch, trained, val, cfg, d, model, scheme, per_image, peak)
        result.history.append(stats)
        step_scheduler(scheduler, val.top1 if val else None, recipe)
        # after the scheduler's step (it sets the lr the state holds); gathering the shards' is a collective
        optimizer_state = scheme.full_optimizer_state(optimizer) if scheme is not None else optimizer.state_dict()
        with distributed.together(d):  # rank 0's disk or MLflow error stops every rank here, not in a collective
            if d.is_main:
                # the checkpoint first, then the epoch's metrics: whenever the process dies, what the store holds is
                # at most what the checkpoint holds, and a resume logs only what the store lacks (runs.train)
                checkpoint.save(
                    ckpt_path,
                    model=model.state_dict(),
                    optimizer=optimizer_state,
                    scheduler=scheduler.state_dict(),
                    epoch=epoch,
                    rng=checkpoint.rng_state(),
                    history=[h.__dict__ for h in result.history],
                    config_hash=cfg.config_hash(),
                )
                on_epoch(stats)
    return result


def learned(top1: float, num_classes: int) -> bool:
    """Clearly above chance: the stalled paper init (flat loss at ln C) stays at chance."""
    return top1 > 100.0 / num_classes + 10.0

"""Process-group set-up for torchrun (NCCL on GPUs, gloo on the CPU) and the few collectives the harness uses.

Failure safety (docs/clusters.md): a rank that raises must not leave the others waiting in a collective. Code that
may fail on some ranks only (reading a batch, rank 0's checkpoint and MLflow writes) runs between `check` points:
every rank reports whether it failed, on a separate gloo group (a CPU all-reduce of two integers: no GPU sync, and never
mistaken for one of the training collectives on the default group), and if any did, every rank raises together
(the failing rank its own error, the others `PeerFailed` naming it). A failure inside a training collective (out of
memory between DDP's all-reduces) cannot be agreed on: the other ranks wait in the collective until `--dist-timeout`,
which then raises on them (gloo) or aborts them (NCCL's watchdog).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from harness.errors import HarnessError


@dataclass(frozen=True)
class Dist:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    # the process group of these `world_size` ranks (None: the whole world); a scheme's data-parallel ranks
    # (harness.parallel: the tower ranks of one replica read the same images and count them once)
    group: object = None
    control: object = field(default=None, compare=False, repr=False)  # the gloo group `check` reduces on

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(pref: str, local_rank: int = 0) -> torch.device:
    if pref == "auto":
        pref = "cuda" if torch.cuda.is_available() else "cpu"
    if pref == "cuda":
        if not torch.cuda.is_available():
            raise HarnessError("--device cuda was asked for but no CUDA device is available")
        return torch.device("cuda", local_rank)
    if pref != "cpu":
        raise HarnessError(f"unknown device {pref!r}; use cpu, cuda or auto")
    return torch.device("cpu")


def init(device_pref: str = "auto", timeout_s: float | None = None) -> Dist:
    """Single process unless launched by torchrun (WORLD_SIZE > 1). `timeout_s` (`--dist-timeout`): how long a
    collective waits for a rank that does not arrive before it raises (default: torch's, 10 min for NCCL and gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_pref, local)
    control = None
    if world > 1:
        timeout = datetime.timedelta(seconds=timeout_s) if timeout_s else None
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group(backend=backend, timeout=timeout)
        control = dist.new_group(backend="gloo", timeout=timeout)
    return Dist(rank, world, local, device, control)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], d: Dist) -> list[float]:
    if not d.enabled:
        return values
    backend_device = d.device if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor(values, dtype=torch.float64, device=backend_device)
    dist.all_reduce(t, group=d.group)
    return t.tolist()


def broadcast(obj: object, d: Dist) -> object:
    """Rank 0's value on every rank."""
    if not d.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: object, d: Dist) -> list[object]:
    """Every rank's value, in rank order, on every rank."""
    if not d.enabled:
        return [obj]
    out: list[object] = [None] * d.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


class PeerFailed(RuntimeError):
    """Another rank failed at a `check` point: this rank stops the variant with it."""


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0]


def check(error: BaseException | None, d: Dist, done: bool = False, uneven: bool = False) -> bool:
    """Called by every rank at the same point: raise on every rank if any rank brings an `error` (its own error on
    that rank, `PeerFailed` naming it on the others); else whether every rank is `done` (the end of its batches).
    Ranks that disagree on `done` (different numbers of batches) would wait in different collectives: an error,
    unless `uneven` (evaluation: a rank that is done keeps calling `check` until every rank is).

    Every check is the same collective on the same group, so a rank failing at one check point meets the others at
    whichever check point they are at."""
    if not d.enabled:
        if error is not None:
            raise error
        return done
    flags = torch.tensor([int(error is not None), int(done)], dtype=torch.int64)
    dist.all_reduce(flags, group=d.control)
    failed, finished = flags.tolist()
    if failed:
        said: list[object] = [None] * d.world_size
        dist.all_gather_object(said, None if error is None else describe(error), group=d.control)
        if error is not None:
            raise error
        raise PeerFailed("; ".join(f"rank {r} failed: {m}" for r, m in enumerate(said) if m is not None))
    if 0 < finished < d.world_size and not uneven:
        raise PeerFailed(f"{finished} of {d.world_size} ranks ran out of batches first: the ranks' data differ")
    return finished == d.world_size


@contextlib.contextmanager
def together(d: Dist) -> Iterator[None]:
    """`with together(d): ...` around code with no collectives that may fail on some ranks only (rank 0's MLflow or
    checkpoint writes, one rank's data): if it raises on any rank, it raises on every rank (`check`)."""
    error: Exception | None = None
    try:
        yield
    except Exception as e:  # noqa: BLE001 - any failure is reported to the other ranks, then raised again
        error = e
    check(error, d)


def collective_failed(error: BaseException) -> bool:
    """A collective itself failed (timed out, a peer died): the process group cannot be trusted for another
    variant, unlike an agreed failure (`check`)."""
    return isinstance(error, dist.DistError) or (
        isinstance(error, RuntimeError) and any(w in str(error) for w in ("Timed out", "Connection closed", "gloo"))
    )

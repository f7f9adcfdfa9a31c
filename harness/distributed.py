"""Process-group set-up for torchrun (NCCL on GPUs, gloo on the CPU) and the few collectives the harness uses."""

from __future__ import annotations

import os
from dataclasses import dataclass

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


def init(device_pref: str = "auto") -> Dist:
    """Single process unless launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_pref, local)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return Dist(rank, world, local, device)


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

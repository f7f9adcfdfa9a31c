"""Make the scheme a run asked for from its one-device model: the process groups, then the sharded module."""

from __future__ import annotations

import torch.nn as nn

from harness.distributed import Dist
from harness.parallel.checks import TOWERS, check
from harness.parallel.comm import Link, Meter, ring_all_reduce_bytes
from harness.parallel.hybrid import Hybrid
from harness.parallel.shard import Sharded
from harness.parallel.towers import Towers


def build(kind: str, model: nn.Module, d: Dist, batch_size: int) -> Sharded:
    """The `kind` scheme ("towers" or "hybrid") over all of `d`'s ranks, its parameters cut from `model`'s (every
    rank built the same `model` from the same seed). A collective: every rank calls it."""
    check(kind, model, d.world_size, batch_size)
    meter = Meter()
    if kind == "hybrid":
        return Hybrid(model, Link(None, d.world_size, d.rank, meter))
    from torch.distributed.device_mesh import init_device_mesh

    dp = d.world_size // TOWERS
    mesh = init_device_mesh(d.device.type, (dp, TOWERS), mesh_dim_names=("dp", "tower"))
    tower = Link(mesh.get_group("tower"), TOWERS, mesh.get_local_rank("tower"), meter)
    dp_group, dp_index = mesh.get_group("dp"), mesh.get_local_rank("dp")
    data = Dist(dp_index, dp, d.local_rank, d.device, group=dp_group)
    return Towers(model, tower, Link(dp_group, dp, dp_index, meter), data)


def ddp_bytes_per_step(model: nn.Module, world_size: int) -> int:
    """Plain DDP's gradient all-reduce per rank per step (ring volume of every parameter), to log beside a scheme's."""
    return ring_all_reduce_bytes(sum(p.numel() * p.element_size() for p in model.parameters()), world_size)

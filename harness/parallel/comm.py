"""Autograd-aware collectives over one process group, each counting the bytes this rank sends.

Every op is a `torch.autograd.Function` whose backward is the adjoint collective (all-gather <-> reduce-scatter,
identity <-> all-reduce), the pairs Megatron-LM calls f and g. The bytes are the ring algorithm's, per rank: an
all-gather of a b-byte chunk over n ranks sends (n - 1) b, a reduce-scatter of a B-byte tensor (n - 1) / n B, an
all-reduce 2 (n - 1) / n B (what NCCL's ring and gloo's ring send; counted from the shapes, not measured on the wire).
gloo has no reduce-scatter: there it is an all-reduce and a slice (the count stays the ring's reduce-scatter).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass
class Meter:
    """Bytes this rank sent since the last `take`, and the collectives that sent them."""

    sent: int = 0
    calls: int = 0

    def add(self, nbytes: float) -> None:
        self.sent += int(nbytes)
        self.calls += 1

    def take(self) -> int:
        sent, self.sent, self.calls = self.sent, 0, 0
        return sent


@dataclass(frozen=True)
class Link:
    """One process group (None: the world) of `size` ranks, this rank's `index` in it, and the meter it counts into."""

    group: object
    size: int
    index: int
    meter: Meter = field(default_factory=Meter)


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _gather(x: torch.Tensor, link: Link, dim: int) -> torch.Tensor:
    x = x.contiguous()
    parts = [torch.empty_like(x) for _ in range(link.size)]
    dist.all_gather(parts, x, group=link.group)
    link.meter.add((link.size - 1) * _nbytes(x))
    return torch.cat(parts, dim)


def _own(x: torch.Tensor, link: Link, dim: int) -> torch.Tensor:
    return x.chunk(link.size, dim)[link.index].contiguous()


def _reduce_scatter(x: torch.Tensor, link: Link, dim: int) -> torch.Tensor:
    link.meter.add((link.size - 1) / link.size * _nbytes(x))
    if dist.get_backend(link.group) == "gloo":  # gloo: no reduce_scatter
        x = x.clone()
        dist.all_reduce(x, group=link.group)
        return _own(x, link, dim)
    out = torch.empty_like(_own(x, link, dim))
    dist.reduce_scatter(out, [c.contiguous() for c in x.chunk(link.size, dim)], group=link.group)
    return out


def _all_reduce(x: torch.Tensor, link: Link) -> torch.Tensor:
    x = x.contiguous().clone()
    dist.all_reduce(x, group=link.group)
    link.meter.add(2 * (link.size - 1) / link.size * _nbytes(x))
    return x


class _GatherSplit(torch.autograd.Function):
    """All-gather along `dim` for a consumer that differs per rank; backward: reduce-scatter (sum) of the gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, link: Link, dim: int) -> torch.Tensor:  # type: ignore[override]
        ctx.link, ctx.dim = link, dim
        return _gather(x, link, dim)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return _reduce_scatter(grad, ctx.link, ctx.dim), None, None


class _GatherReplicated(torch.autograd.Function):
    """All-gather along `dim` for a consumer that every rank computes identically (the loss); backward: the rank's
    own chunk of the gradient, no communication (each rank's copy already holds the whole gradient)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, link: Link, dim: int) -> torch.Tensor:  # type: ignore[override]
        ctx.link, ctx.dim = link, dim
        return _gather(x, link, dim)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return _own(grad, ctx.link, ctx.dim), None, None


class _ReduceScatter(torch.autograd.Function):
    """Sum over ranks, keep this rank's chunk along `dim`; backward: all-gather of the gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, link: Link, dim: int) -> torch.Tensor:  # type: ignore[override]
        ctx.link, ctx.dim = link, dim
        return _reduce_scatter(x, link, dim)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return _gather(grad, ctx.link, ctx.dim), None, None


class _SyncGrad(torch.autograd.Function):
    """Identity forward; backward sums the gradient over ranks: a replicated parameter's data-parallel all-reduce."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, link: Link) -> torch.Tensor:  # type: ignore[override]
        ctx.link = link
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return _all_reduce(grad, ctx.link), None


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by `scale`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad * ctx.scale, None


def gather_split(x: torch.Tensor, link: Link, dim: int) -> torch.Tensor:
    return x if link.size == 1 else _GatherSplit.apply(x, link, dim)


def gather_replicated(x: torch.Tensor, link: Link, dim: int) -> torch.Tensor:
    return x if link.size == 1 else _GatherReplicated.apply(x, link, dim)


def reduce_scatter(x: torch.Tensor, link: Link, dim: int) -> torch.Tensor:
    return x if link.size == 1 else _ReduceScatter.apply(x, link, dim)


def sync_grad(x: torch.Tensor, link: Link) -> torch.Tensor:
    return x if link.size == 1 else _SyncGrad.apply(x, link)


def scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    return x if scale == 1 else _ScaleGrad.apply(x, scale)


def gather_tensor(x: torch.Tensor, link: Link, dim: int) -> torch.Tensor:
    """A plain (no autograd, not metered) all-gather along `dim`: for checkpoints and evaluation copies."""
    if link.size == 1:
        return x
    x = x.detach().contiguous()
    parts = [torch.empty_like(x) for _ in range(link.size)]
    dist.all_gather(parts, x, group=link.group)
    return torch.cat(parts, dim)


def ring_all_reduce_bytes(nbytes: int, size: int) -> int:
    """What plain DDP sends per rank per step: one ring all-reduce of every gradient (its buckets add up to this)."""
    return int(2 * (size - 1) / size * nbytes) if size > 1 else 0

"""What both schemes share: a copy of the network whose parameters are this rank's slices of the one-device model's,
gathered back into that model (for evaluation and checkpoints) and sliced out of it (on resume).

A sharded module keeps the one-device model's parameter names and order (`features.conv1.weight`, ...), so the
optimiser's state indexes the same parameters and a gathered checkpoint is the ordinary single-device checkpoint:
it resumes under any scheme and evaluates on one device.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from harness.distributed import Dist
from harness.parallel.comm import Link, Meter, gather_tensor


class Sharded(nn.Module):
    """`features` and `classifier` copied from a ConvNet with each parameter cut along `dims[name]` into `link.size`
    chunks, this rank keeping chunk `link.index` (None: the whole parameter, replicated)."""

    def __init__(self, model: nn.Module, link: Link, dims: dict[str, int | None]) -> None:
        super().__init__()
        self.link, self.dims = link, dims
        self.pool_to = model.spec.pool_to  # type: ignore[attr-defined]
        self.avgpool = nn.AdaptiveAvgPool2d((self.pool_to, self.pool_to))
        self.features = copy.deepcopy(model.features)  # type: ignore[attr-defined]
        self.classifier = copy.deepcopy(model.classifier)  # type: ignore[attr-defined]
        self.load_from(model, fresh=True)

    @property
    def meter(self) -> Meter:
        return self.link.meter

    def _slice(self, name: str, full: torch.Tensor) -> torch.Tensor:
        dim = self.dims[name]
        return full if dim is None else full.chunk(self.link.size, dim)[self.link.index]

    def load_from(self, model: nn.Module, fresh: bool = False) -> None:
        """This rank's slices of `model`'s parameters (no communication)."""
        full = dict(model.named_parameters())
        with torch.no_grad():
            for name, p in list(self.named_parameters()):
                part = self._slice(name, full[name].detach())
                if fresh:
                    module_name, _, attr = name.rpartition(".")
                    setattr(self.get_submodule(module_name), attr, nn.Parameter(part.clone().contiguous()))
                else:
                    p.copy_(part)

    def sync_to(self, model: nn.Module) -> None:
        """Gather every parameter into `model` on every rank (a collective: all ranks call it)."""
        full = dict(model.named_parameters())
        with torch.no_grad():
            for name, p in self.named_parameters():
                dim = self.dims[name]
                full[name].copy_(p if dim is None else gather_tensor(p, self.link, dim))

    def _order(self, optimizer: torch.optim.Optimizer) -> list[str]:
        names = {id(p): n for n, p in self.named_parameters()}
        return [names[id(p)] for g in optimizer.param_groups for p in g["params"]]

    def full_optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict:
        """The optimiser's state dict with every per-parameter tensor gathered to the one-device shape (collective)."""
        state = optimizer.state_dict()
        order = self._order(optimizer)
        out = {}
        for idx in sorted(state["state"]):
            dim = self.dims[order[idx]]
            out[idx] = {
                k: gather_tensor(v, self.link, dim)
                if isinstance(v, torch.Tensor) and v.dim() and dim is not None
                else v
                for k, v in state["state"][idx].items()
            }
        return {"state": out, "param_groups": state["param_groups"]}

    def shard_optimizer_state(self, state: dict, optimizer: torch.optim.Optimizer) -> dict:
        """A one-device optimiser state dict cut to this rank's slices (the inverse of `full_optimizer_state`)."""
        order = self._order(optimizer)
        out = {
            idx: {
                k: self._slice(order[idx], v).clone() if isinstance(v, torch.Tensor) and v.dim() else v
                for k, v in st.items()
            }
            for idx, st in state["state"].items()
        }
        return {"state": out, "param_groups": state["param_groups"]}

    def data_dist(self, d: Dist) -> Dist:
        """The ranks that read different images (the sampler's and the statistics' view): all of them here."""
        return d

    def replicas(self, d: Dist) -> int:
        return self.data_dist(d).world_size

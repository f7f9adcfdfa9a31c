"""Sweep search spaces as typed data: which recipe fields a sweep samples, and over what range.

Separate from `harness.sweep` (which runs Optuna) so that the command line can list the spaces without importing
torch or Optuna.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import HarnessError

if TYPE_CHECKING:
    from variants import Recipe


@dataclass(frozen=True)
class FloatRange:
    """A float recipe field sampled in [low, high]; `relative` bounds multiply the base recipe's own value."""

    key: str
    low: float
    high: float
    log: bool = False
    relative: bool = False  # e.g. low 0.1, high 10: lr/10 .. lr*10 around whatever the recipe (or --set) says

    def bounds(self, recipe: Recipe) -> tuple[float, float]:
        base = float(getattr(recipe, self.key)) if self.relative else 1.0
        return self.low * base, self.high * base


@dataclass(frozen=True)
class IntChoice:
    key: str
    choices: tuple[int, ...]


@dataclass(frozen=True)
class Categorical:
    key: str
    choices: tuple[str, ...]


Dim = FloatRange | IntChoice | Categorical


@dataclass(frozen=True)
class Space:
    name: str
    about: str
    dims: tuple[Dim, ...]
    scale_lr_with_batch: bool = False  # OWT14 s5: effective lr = lr x batch / the base batch (recorded lr_scale_batch)


SPACES: dict[str, Space] = {
    s.name: s
    for s in (
        Space(
            "default",
            "lr and weight decay within 10x of the recipe's (log), momentum 0.8-0.95",
            (
                FloatRange("lr", 0.1, 10.0, log=True, relative=True),
                FloatRange("weight_decay", 0.1, 10.0, log=True, relative=True),
                FloatRange("momentum", 0.8, 0.95),
            ),
        ),
        Space(
            "lr", "lr only, within 10x of the recipe's (log)", (FloatRange("lr", 0.1, 10.0, log=True, relative=True),)
        ),
        Space(
            "schedule",
            "lr schedule (plateau, multistep, step) and its decay factor gamma",
            (
                Categorical("schedule", ("plateau", "multistep", "step")),
                FloatRange("gamma", 0.05, 0.5, log=True),
            ),
        ),
        Space(
            "batch",
            "batch size 16/32/64, lr scaled linearly with it from the profile's batch (OWT14 s5)",
            (IntChoice("batch_size", (16, 32, 64)),),
            scale_lr_with_batch=True,
        ),
    )
}


def get_space(name: str) -> Space:
    try:
        return SPACES[name]
    except KeyError:
        raise HarnessError(f"unknown search space {name!r}; known: {', '.join(SPACES)}") from None


def describe() -> str:
    """Every space's name and what it searches, for `harness sweep --help`."""
    return "; ".join(f"{s.name}: {s.about}" for s in SPACES.values())

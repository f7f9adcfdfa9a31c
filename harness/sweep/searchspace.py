"""A search space around one recipe: each dimension's range checked against the recipe (`check_space`), and a
trial's sampled changes with what they imply (`sample`). The spaces themselves are data in `harness.spaces`."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from harness.config import parse_set, settable_keys, validate_recipe
from harness.errors import HarnessError
from harness.spaces import FloatRange, Space
from variants import MIN_INPUT_SIZE, Recipe

if TYPE_CHECKING:
    import optuna

# A multistep schedule picked for a recipe that has no milestones would never drop: give it these (fractions of the
# epochs), recorded in the trial's params like every other change.
DEFAULT_MILESTONES = (0.5, 0.75)


def fmt(v: object) -> str:
    """A value as the sweep prints and records it: floats to 4 significant digits, tuples comma-separated."""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, tuple):
        return ",".join(fmt(x) for x in v)
    return str(v)


def check_space(
    space: Space, recipe: Recipe, sets: dict[str, object] | None = None, min_size: int = MIN_INPUT_SIZE
) -> dict[str, str]:
    """Each dimension's resolved range as text (for the parent run's params); empty or invalid -> HarnessError.
    `min_size`: the variant's smallest input (`Variant.min_input_size`)."""
    sets = sets or {}
    out: dict[str, str] = {}
    for dim in space.dims:
        where = f"search space {space.name!r}: {dim.key}"
        if dim.key in sets and not (isinstance(dim, FloatRange) and dim.relative):
            raise HarnessError(
                f"{where} is tuned by the space, so --set {dim.key} would be overridden; drop it "
                "or choose another --space"
            )
        if isinstance(dim, FloatRange):
            low, high = dim.bounds(recipe)
            base = f" (the recipe's {dim.key} is {fmt(getattr(recipe, dim.key))})" if dim.relative else ""
            if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
                raise HarnessError(f"{where} range [{fmt(low)}, {fmt(high)}] is empty{base}")
            if dim.log and low <= 0:
                raise HarnessError(f"{where} log range [{fmt(low)}, {fmt(high)}] needs a positive low end{base}")
            for value in (low, high):
                _check_value(where, recipe, dim.key, value, min_size)
            out[dim.key] = f"[{fmt(low)}, {fmt(high)}]" + (" log" if dim.log else "")
        else:
            if not dim.choices:
                raise HarnessError(f"{where} has no choices")
            for value in dim.choices:
                _check_value(where, recipe, dim.key, value, min_size)
            out[dim.key] = "{" + ", ".join(map(str, dim.choices)) + "}"
    if space.scale_lr_with_batch:
        out["lr_scale_batch"] = f"lr scales linearly from batch {recipe.lr_scale_batch or recipe.batch_size}"
    return out


def _check_value(where: str, recipe: Recipe, key: str, value: object, min_size: int) -> None:
    if key not in settable_keys():
        raise HarnessError(f"{where} is not a settable recipe field")
    try:
        parse_set([f"{key}={value}"])  # the field's own type and Literal choices
        validate_recipe(replace(recipe, **{key: value}), min_size)
    except HarnessError as e:
        raise HarnessError(f"{where} = {fmt(value)} is invalid: {e}") from None


def sample(trial: optuna.Trial, space: Space, recipe: Recipe) -> dict[str, object]:
    """The trial's recipe changes: sampled values plus what they imply (milestones, lr scaling)."""
    changes: dict[str, object] = {}
    for dim in space.dims:
        if isinstance(dim, FloatRange):
            low, high = dim.bounds(recipe)
            changes[dim.key] = trial.suggest_float(dim.key, low, high, log=dim.log)
        else:
            changes[dim.key] = trial.suggest_categorical(dim.key, list(dim.choices))
    if changes.get("schedule") == "multistep" and not recipe.milestones:
        changes["milestones"] = DEFAULT_MILESTONES
    if space.scale_lr_with_batch and recipe.lr_scale_batch is None:
        changes["lr_scale_batch"] = recipe.batch_size
    return changes

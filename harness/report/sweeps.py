"""Section 6 of the report: a sweep is compared with the mean final top-1 of finished, unmodified runs of its
variant on the same data set (tag `dataset_name` or loader) and profile; difference = best trial minus that mean,
never a status. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from harness.report.runs import order, plain_runs
from harness.report.types import RunRow


def sweep_baseline(variant: str, data: Iterable[str], profile: str, rows: Iterable[RunRow]) -> list[RunRow]:
    """Finished paper-recipe runs of `variant` whose data set is one of `data` (a sweep's dataset_name and loader)
    and, when the sweep names one, whose profile is the sweep's: what the sweep's best is compared against."""
    names = {d for d in data if d}
    return order(
        r
        for r in plain_runs(rows)
        if r.variant == variant and r.data in names and (not profile or r.profile == profile)
    )


def sweep_note(epochs: int | None, paper_epochs: Iterable[int]) -> str:
    """Why the sweep's best and the paper recipe's runs may not compare: they trained for different epochs."""
    others = sorted(set(paper_epochs) - {epochs}) if epochs is not None else []
    if not others:
        return ""
    return (
        f"trials trained {epochs} epoch(s), the paper-recipe runs {', '.join(map(str, others))}: "
        "the difference mixes tuning with training length"
    )

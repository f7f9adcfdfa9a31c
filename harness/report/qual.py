"""Pure rules of the report's qualitative section (harness.analysis; KSH12 s6.1): which runs were analysed, and the
tower colour claim's verdict across seeds. No I/O: fixed inputs, fixed answers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.report.types import RunRow

# KSH12 s6.1 (Fig. 3): one GPU's conv1 kernels are "largely color-agnostic", the other's "largely color-specific",
# "independent of any particular random weight initialization". Per seed, with colour indices in [0, 1] (an i.i.d.
# random kernel has 2/3, harness.analysis.colour):
GREY_MAX = 1 / 3  # the greyer tower is near grey: its mean index is at most half a random kernel's
SPREAD_MIN = 0.2  # the towers differ: their mean indices are at least this far apart
NEAR_RANDOM = 0.05  # a tower mean this close to 2/3 is what untrained (random) kernels give
MIN_SEEDS = 3  # seeds before any verdict (as the claim rule, harness.report.verdicts.MIN_SEEDS)
TOWER_RULE = (
    f"Per seed, the towers are **specialised** when the greyer tower's mean colour index is at most {GREY_MAX:.2f} "
    f"(half a random kernel's 2/3) and the other tower's is at least {SPREAD_MIN:.2f} higher. The claim **holds** "
    f"when every seed is specialised, **does not hold** when none is, is **mixed** otherwise, and is "
    f"**inconclusive** with fewer than {MIN_SEEDS} seeds. Which tower is the grey one may change with the seed "
    "(KSH12: whatever the initialisation)."
)


def analysed(rows: Iterable[RunRow]) -> list[RunRow]:
    """Finished, unmodified variant runs with a qualitative evaluation, by variant, data, seed and run id."""
    keep = [
        r for r in rows if r.kind == "variant" and r.finished and not r.recipe_modified and r.qualitative is not None
    ]
    return sorted(keep, key=lambda r: (r.variant, r.data, r.split, r.seed if r.seed is not None else -1, r.run_id))


@dataclass(frozen=True)
class TowerSeed:
    run_id: str
    seed: int | None
    means: tuple[float, ...]  # per tower, tower 1 first
    spread: float  # highest minus lowest tower mean
    greyer: int  # 1-based tower with the lowest mean
    specialised: bool


@dataclass(frozen=True)
class TowerVerdict:
    variant: str
    data: str
    split: str
    seeds: tuple[TowerSeed, ...]
    verdict: str  # holds, does not hold, mixed, inconclusive

    @property
    def n_specialised(self) -> int:
        return sum(s.specialised for s in self.seeds)

    @property
    def near_random(self) -> bool:
        """Every tower of every seed within NEAR_RANDOM of a random kernel's index: conv1 barely left its init."""
        return all(abs(m - 2 / 3) <= NEAR_RANDOM for s in self.seeds for m in s.means)


def tower_seed(row: RunRow) -> TowerSeed | None:
    q = row.qualitative
    if q is None or len(q.tower_means) < 2:
        return None
    means = q.tower_means
    lo = min(means)
    spread = max(means) - lo
    return TowerSeed(row.run_id, row.seed, means, spread, means.index(lo) + 1, lo <= GREY_MAX and spread >= SPREAD_MIN)


def verdict(seeds: Sequence[TowerSeed]) -> str:
    if len(seeds) < MIN_SEEDS:
        return "inconclusive"
    n = sum(s.specialised for s in seeds)
    return "holds" if n == len(seeds) else "does not hold" if n == 0 else "mixed"


def tower_verdicts(rows: Iterable[RunRow]) -> list[TowerVerdict]:
    """One verdict per (variant, data, split) of multi-tower nets; one seed counts once (its newest run)."""
    groups: dict[tuple[str, str, str], dict[int | None, TowerSeed]] = {}
    for r in analysed(rows):
        s = tower_seed(r)
        if s is not None:
            groups.setdefault((r.variant, r.data, r.split), {})[r.seed] = s  # sorted by run id: the last one wins
    return [
        TowerVerdict(v, d, sp, tuple(seeds.values()), verdict(tuple(seeds.values())))
        for (v, d, sp), seeds in sorted(groups.items())
    ]


def fc7_wins(rows: Iterable[RunRow], k: str = "p10") -> tuple[int, int]:
    """(runs where fc7 retrieval beats raw pixels at precision@10, analysed runs with both)."""
    pairs = []
    for r in analysed(rows):
        q = r.qualitative
        assert q is not None
        a, b = q.stat("fc7"), q.stat("pixels")
        if a is not None and b is not None and getattr(a, k) is not None and getattr(b, k) is not None:
            pairs.append(getattr(a, k) > getattr(b, k))
    return sum(pairs), len(pairs)

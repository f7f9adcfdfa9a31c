"""Which (variant, seed) runs `harness run` trains: the budget goes where the claims are.

On the proxy profile `run --all` follows a plan: seed 0 of every registered variant first (so an interrupted run
still covers each variant once), then the extra seeds of the variants that a claim in `PROXY_SEEDS` compares, each
(variant, seed) once, the most that any claim asks of it. Every other profile, and `--seeds N` / `--seed S`
anywhere, gives the same seeds to every named variant. Pure: no torch, MLflow or files; the registry comes in as
arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from variants import Claim, Variant

MIN_SEEDS = 3  # values per side before the claim rule gives any verdict (harness.report.compute.MIN_SEEDS)


@dataclass(frozen=True)
class PlannedRun:
    """One training run of the plan: a variant and its seed (a separate MLflow run)."""

    variant: str
    seed: int


@dataclass(frozen=True)
class ClaimSeeds:
    """How many seeds each side of one claim (`Claim.name`) gets on the proxy, and why (the report prints it).

    For an ensemble claim (`Claim.ensemble` > 1) `variant` counts the single runs the ensembles are built from."""

    claim: str
    variant: int
    baseline: int
    why: str


# The proxy's seeded claims, in the order issue 11 ranks them (effects expected to be large on a data set where
# capacity and augmentation matter first). Counts are runs per side; the base network gets the most any claim asks
# of it. The effects each claim measured are in the committed report (reports/mnist-clutter-proxy.md, section 4).
PROXY_SEEDS: tuple[ClaimSeeds, ...] = (
    ClaimSeeds(
        "zf_no_conv3_conv4_fc6_fc7",
        3,
        3,
        "the largest effect in ZF13 Table 3 (-30.8 top-1); 3 a side, the fewest the claim rule takes. Measured "
        "here (2 epochs): +21.9 points, seed spread 0.4 / 2.3, so 3 a side decide it",
    ),
    ClaimSeeds(
        "zf_no_fc6_fc7",
        3,
        3,
        "removing both hidden fc layers (ZF13 Table 3: -4.3 top-1); 3 a side, sharing the base runs above. "
        "Measured here: +20.1 points, seed spread 1.0 / 2.3",
    ),
    ClaimSeeds(
        "two_towers",
        3,
        3,
        "capacity: the half-width one-tower net has about half the MACs (0.39 vs 0.72 GMACs at 224 px; KSH12 "
        "s3.5: -1.7 top-1); 3 a side. Measured here: -6.1 points, but one of the 3 one-tower seeds stalled "
        "(spread 13.5), so 3 a side do not decide it",
    ),
    ClaimSeeds(
        "dropout",
        3,
        3,
        "KSH12 s4.2: without dropout the net overfits; 3 a side, sharing alexnet2012's runs. Measured here: "
        "+17.8 points without dropout (spread 3.5 / 3.1)",
    ),
    ClaimSeeds(
        "augmentation",
        3,
        3,
        "KSH12 s4.1: without random crops the net overfits; 3 a side, sharing alexnet2012's runs. Measured "
        "here: +4.9 points without crops (spread 3.4 / 3.1): more seeds would be needed for a verdict",
    ),
    ClaimSeeds(
        "ensemble5",
        6,
        6,
        "6 seeds of alexnet2012 give 3 disjoint ensembles of 2 (the proxy's ensemble size), each against the mean "
        "of its own members: the fewest the claim rule takes; 3 ensembles of 5 would need 15 runs",
    ),
)


def check_table(table: Sequence[ClaimSeeds], claims: Sequence[Claim], variants: Sequence[Variant]) -> None:
    """ValueError for a table entry naming no registered claim, a claim of unregistered variants, a duplicate or
    too few seeds for a verdict."""
    by_name = {c.name: c for c in claims}
    known = {v.name for v in variants}
    seen: set[str] = set()
    for e in table:
        if e.claim not in by_name:
            raise ValueError(f"seed table: unknown claim {e.claim!r}")
        if e.claim in seen:
            raise ValueError(f"seed table: claim {e.claim!r} listed twice")
        seen.add(e.claim)
        c = by_name[e.claim]
        for name in (c.variant, c.baseline):
            if name not in known:
                raise ValueError(f"seed table: claim {e.claim!r} compares unknown variant {name!r}")
        if min(e.variant, e.baseline) < MIN_SEEDS:
            raise ValueError(f"seed table: claim {e.claim!r} needs at least {MIN_SEEDS} seeds a side")
        if not e.why.strip():
            raise ValueError(f"seed table: claim {e.claim!r} has no reason")


def seeds_per_variant(table: Sequence[ClaimSeeds], claims: Sequence[Claim]) -> dict[str, int]:
    """Variant -> the most seeds any claim in `table` asks of it (a variant no claim names is absent)."""
    by_name = {c.name: c for c in claims}
    out: dict[str, int] = {}
    for e in table:
        c = by_name[e.claim]
        for name, n in ((c.variant, e.variant), (c.baseline, e.baseline)):
            out[name] = max(out.get(name, 0), n)
    return out


def fixed_seeds(names: Sequence[str], seeds: Iterable[int]) -> tuple[PlannedRun, ...]:
    """The same seeds for every variant, seed-major: every variant's first seed before anyone's second."""
    return tuple(PlannedRun(n, s) for s in seeds for n in names)


def plan(
    variants: Sequence[Variant], claims: Sequence[Claim], seeds_table: Sequence[ClaimSeeds], profile_name: str
) -> tuple[PlannedRun, ...]:
    """`run --all`: on the proxy, seed 0 of every variant, then seeds 1, 2, ... of the seeded ones (seed-major, in
    registry order); on any other profile one seed (0) per variant."""
    names = [v.name for v in variants]
    if profile_name != "proxy":
        return fixed_seeds(names, [0])
    check_table(seeds_table, claims, variants)
    wanted = seeds_per_variant(seeds_table, claims)
    extra = tuple(
        PlannedRun(n, s) for s in range(1, max(wanted.values(), default=1)) for n in names if s < wanted.get(n, 1)
    )
    return fixed_seeds(names, [0]) + extra


def reasons(variant: str, claims: Sequence[Claim], seeds_table: Sequence[ClaimSeeds]) -> list[ClaimSeeds]:
    """The table entries that give `variant` more than one seed."""
    by_name = {c.name: c for c in claims}
    return [e for e in seeds_table if variant in (by_name[e.claim].variant, by_name[e.claim].baseline)]


def _seed_list(seeds: Sequence[int]) -> str:
    if len(seeds) > 2 and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def describe(
    runs: Sequence[PlannedRun], claims: Sequence[Claim], seeds_table: Sequence[ClaimSeeds], heading: str
) -> str:
    """`harness run --plan`: each variant's seeds and why, then the table's reasons."""
    names = list(dict.fromkeys(r.variant for r in runs))
    lines = [f"{heading}: {len(runs)} runs of {len(names)} variant(s), each variant's first seed before any second", ""]
    width = max((len(n) for n in names), default=7) + 2
    lines.append(f"{'variant':{width}} {'seeds':8} why")
    for n in names:
        seeds = [r.seed for r in runs if r.variant == n]
        why = ", ".join(e.claim for e in reasons(n, claims, seeds_table)) if len(seeds) > 1 else ""
        lines.append(f"{n:{width}} {_seed_list(seeds):8} {why or '-'}".rstrip())
    used = {e.claim for n in names for e in reasons(n, claims, seeds_table)}
    entries = [e for e in seeds_table if e.claim in used]
    if entries and any(sum(r.variant == n for r in runs) > 1 for n in names):
        lines += ["", "Seeded claims (seeds variant / baseline side):"]
        lines += [f"  {e.claim}: {e.variant} / {e.baseline}: {e.why}" for e in entries]
    return "\n".join(lines)

"""Which (variant, seed) runs `harness run` trains: the budget goes where the claims are.

On the proxy profile `run --all` follows a plan: the seeds of the variants that the claims in `PROXY_SEEDS` (the
proxy's claim family, fixed in advance) compare, seed-major (so an interrupted run still holds pairs), each
(variant, seed) once, the most that any claim asks of it; then, when `PIPELINE_CHECK`, seed 0 of every other
variant. `PROXY_UNTESTABLE` names the claims the proxy cannot test, with why.

On the paper profile `run --all` follows a two-stage plan (Stein's two-stage design, Stein 1945): the first stage
gives every claim between two registered variants `MIN_SEEDS` seeds a side (an ensemble claim `MIN_SEEDS` ensembles),
the fewest the claim rule reads and enough to measure each claim's seed spread; the second stage, planned from the
store once the first has finished (by the same command, `runner.run_stages`, or by that command run again), gives
each claim the seeds a side that its first-stage spread says would decide it (`harness.report.design`), at most
`--max-seeds`; every other variant gets seed 0.

`--seed-offset K` shifts every seed by K. Every other profile, and `--seeds N` / `--seed S` anywhere, gives the same
seeds to every named variant. Pure: no torch, MLflow or files; the registry and the store's measurements come in
as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from variants import Claim, Variant

MIN_SEEDS = 3  # values per side before the claim rule gives any verdict (harness.report.verdicts.MIN_SEEDS)
# `--max-seeds`'s default: the most runs of one variant the paper plan trains: 3 ensembles of KSH12 Table 2's 5 CNNs
# (the ensemble claims' first stage). On one H100-class GPU a 90-epoch ImageNet run takes hours
# (README, "Expect per epoch"): the cap is the user's budget.
MAX_SEEDS = 15


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


# The proxy's claim family, fixed before any run: the claims whose mechanism the proxy's data can exercise
# (regularisers in an overfitting regime, test-time crops, averaging, capacity, the first layer's resolution, the
# speed of ReLU against tanh), each with the runs a side it gets. Counts are runs per side; a variant shared by
# several claims gets the most any of them asks. They come from a pilot of the same plan with 5 runs a side (6 of
# alexnet2012; seeds 0-5, 46 runs, 23 min 48 s on this 2-core machine; docs/proxy.md "The pilot"): the effect, the
# seed sd and the pairs that would decide it at power 0.8, quoted in each reason.
PILOT = "the pilot (seeds 0-5, 5 pairs)"
PROXY_SEEDS: tuple[ClaimSeeds, ...] = (
    ClaimSeeds(
        "augmentation",
        5,
        5,
        f"random crops against the centre crop, both nets with dropout; {PILOT}: -3.54 points [-5.01, -2.07] "
        "without crops (99.5 % training top-1 against 76.6 %), decided at 5 pairs",
    ),
    ClaimSeeds(
        "two_towers",
        10,
        10,
        f"capacity: the half-width one-tower net against the two towers, both with dropout; {PILOT}: -7.12 points "
        "[-12.86, -1.38], seed sd 4.6: 10 pairs would decide it",
    ),
    ClaimSeeds(
        "ensemble5",
        10,
        10,
        "the base network's 10 runs give 3 disjoint ensembles of 3 (the proxy's ensemble size), each against the "
        f"mean of its own members; {PILOT}: +4.67 points [+3.46, +5.87] from 3 ensembles of 2",
    ),
    ClaimSeeds(
        "ten_crop",
        10,
        10,
        "5 crops without mirrors against the centre crop of the same run (paired per run), on the base network's "
        f"runs; {PILOT}: +2.83 points [+2.06, +3.60] over 6 runs",
    ),
    ClaimSeeds(
        "ten_crop_cc2",
        5,
        5,
        f"as ten_crop, on the 2014 one-tower net; {PILOT}: +2.20 points [+1.12, +3.28] over 5 runs",
    ),
    ClaimSeeds(
        "zfnet_over_replication",
        10,
        10,
        "ZF13's 7 x 7 / 2 first layer against the replication's 11 x 11 / 4, both with dropout; "
        f"{PILOT}: +4.42 points [+0.74, +8.10], seed sd 3.0: 10 pairs would decide it",
    ),
    ClaimSeeds(
        "relu_speedup",
        5,
        5,
        "KSH12 Fig. 1's small nets (no dropout, native 32 px and width), each at the lr a pilot grid chose for speed "
        f"(0.03); training images to 25 % training error; {PILOT}: 1.11x [0.98x, 1.26x]: 16 pairs would decide it, "
        "more than the budget holds (Fig. 1's runs cost as much as the others: 40 epochs of logging), so 5",
    ),
)

# After the family's seeds, seed 0 of every other registered variant (a check that each one trains on the proxy):
# off, the 30-minute budget goes to the family's seeds (docs/proxy.md, "The claim family").
PIPELINE_CHECK = False

# The papers' top-1 claims the proxy cannot test, and why (the report prints the reason as `not testable here`,
# and they stay out of the proxy's claim family): effects of 0.4-2 points of a mechanism that the proxy's 64 px
# canvases and quarter-width nets lack, and claims whose comparison the proxy's epoch budget confounds (a net with
# dropout against one without: the pilot's dropout nets had not converged); an inconclusive row would invite
# reading its sign. Top-5 claims need no entry: on 10 classes the rule says so itself.
PROXY_UNTESTABLE: dict[str, str] = {
    "lrn": "LRN's 1.4 points (KSH12 s3.3) come from normalising across 96-384 maps of 224 px ImageNet features; "
    "the proxy's quarter-width nets normalise across a quarter of them on 64 px canvases, and 1.4 points is far "
    "below the smallest difference the proxy's seeds detect",
    "overlap_pool": "overlapping pooling's 0.4 points (KSH12 s3.4) are measured on 55 x 55 to 13 x 13 maps; at "
    "64 px the pools see 15 x 15 to 3 x 3 maps, where the two poolings differ by a pixel or two",
    "pca_lighting": "colour noise on canvases whose colours are drawn at random: the pilot (seeds 0-5) measured "
    "+1.70 points [-3.04, +6.44] without it, seed sd 3.8: about 69 pairs would decide it, beyond the proxy's "
    "30-minute budget",
    "dropout": "the pilot's net with dropout had not converged when the budget ended (seed 10, 500 canvases, 40 "
    "epochs: 76.5 % training top-1 in training mode, 67.4 % validation) where the net without it had (97.5 %, "
    "78.7 %): KSH12 s4.2 says dropout roughly doubles the iterations to converge, so within the proxy's budget a "
    "verdict would measure learning speed, not overfitting",
    "zf_no_fc6_fc7": "removing fc6 and fc7 also removes their dropout, and within the proxy's budget the nets with "
    "dropout have not converged (the pilot's replication: 82.9 % training top-1, 72.7 % validation; without fc6 "
    "and fc7: 91.3 %, 76.4 %): a verdict would measure learning speed, not the fc layers' capacity",
    "zf_no_conv3_conv4_fc6_fc7": "removing fc6 and fc7 also removes their dropout, and within the proxy's budget "
    "the nets with dropout have not converged (see zf_no_fc6_fc7): a verdict would measure learning speed, not "
    "the layers' capacity",
    "tower_exchange": "1.16 points (CHM run #150) from the maps the towers exchange at conv3 and the fc layers: "
    "far below the smallest difference the proxy's seeds detect",
    "no_conv2": "removing one middle conv layer costs about 2 points on ImageNet (KSH12 s7), a depth effect of "
    "ImageNet-scale capacity; at 64 px conv3-conv5 see 3 x 3 maps",
    "no_conv3": "removing one middle conv layer costs about 2 points on ImageNet (KSH12 s7), a depth effect of "
    "ImageNet-scale capacity; at 64 px conv3-conv5 see 3 x 3 maps",
    "no_conv4": "removing one middle conv layer costs about 2 points on ImageNet (KSH12 s7), a depth effect of "
    "ImageNet-scale capacity; at 64 px conv3-conv5 see 3 x 3 maps",
    "zf_no_conv3_conv4": "removing two middle conv layers (ZF13 Table 3: 4.9 points) at 64 px, where they see "
    "3 x 3 maps: a depth effect of ImageNet-scale capacity",
    "zf_fc2048": "fc width (4096 against 2048 units, ZF13 Table 3: 1.2 points): at quarter width the fc layers "
    "have 1,024 and 512 units and read pool5's 1 x 1 maps",
    "zfnet_wide": "wider conv3-conv5 (ZF13 Table 3: 0.9 points) on 224 px inputs: at quarter width and 64 px far "
    "below the smallest difference the proxy's seeds detect",
    "zf_no_fc7": "an equivalence claim (within 1 point, ZF13 Table 3): the proxy tests directions, not the papers' "
    "sizes, so nothing on it could show that the change is small; and removing fc7 also removes one of the two "
    "dropout layers, which the proxy's budget confounds (see zf_no_fc6_fc7)",
}


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


def shifted(runs: Sequence[PlannedRun], offset: int) -> tuple[PlannedRun, ...]:
    """`--seed-offset K`: the same runs with every seed + K, an independent draw of the same plan (the claims and
    their seed counts stay; the seeds pair as before: seed s + K of a variant with seed s + K of its baseline)."""
    if offset < 0:
        raise ValueError(f"a seed offset is 0 or positive, got {offset}")
    return tuple(PlannedRun(r.variant, r.seed + offset) for r in runs)


def first_stage(claims: Sequence[Claim], variants: Sequence[Variant]) -> tuple[ClaimSeeds, ...]:
    """The paper plan's first stage: `MIN_SEEDS` seeds a side of every claim whose two variants are both in
    `variants` (an ensemble claim of k: `MIN_SEEDS` disjoint ensembles, `MIN_SEEDS` x k runs of its variant)."""
    names = {v.name for v in variants}
    out = []
    for c in claims:
        if c.variant not in names or c.baseline not in names or any(e.claim == c.name for e in out):
            continue
        if c.ensemble > 1:
            n = MIN_SEEDS * c.ensemble
            why = f"first stage: {MIN_SEEDS} disjoint ensembles of {c.ensemble} runs, the fewest the claim rule reads"
            out.append(ClaimSeeds(c.name, n, n if c.baseline == c.variant else MIN_SEEDS, why))
        else:
            why = (
                f"first stage: {MIN_SEEDS} seeds a side, the fewest the claim rule reads; their spread sizes the "
                "second stage"
            )
            out.append(ClaimSeeds(c.name, MIN_SEEDS, MIN_SEEDS, why))
    return tuple(out)


def paper_table(
    first: Sequence[ClaimSeeds], second: Mapping[str, ClaimSeeds], max_seeds: int = MAX_SEEDS
) -> tuple[ClaimSeeds, ...]:
    """Each first-stage claim with its second-stage seeds where the store measured them (never fewer than the
    first stage's), every count at most `max_seeds` (the reason says when the cap cut it)."""
    if max_seeds < MIN_SEEDS:
        raise ValueError(f"--max-seeds must be at least {MIN_SEEDS} (the fewest a verdict reads), got {max_seeds}")
    out = []
    for e in first:
        s = second.get(e.claim)
        chosen = e if s is None else ClaimSeeds(e.claim, max(s.variant, e.variant), max(s.baseline, e.baseline), s.why)
        want = max(chosen.variant, chosen.baseline)
        if want > max_seeds:
            chosen = ClaimSeeds(
                e.claim,
                min(chosen.variant, max_seeds),
                min(chosen.baseline, max_seeds),
                f"{chosen.why}; capped at --max-seeds {max_seeds} of the {want} it asks for",
            )
        out.append(chosen)
    return tuple(out)


def plan(
    variants: Sequence[Variant],
    claims: Sequence[Claim],
    seeds_table: Sequence[ClaimSeeds],
    profile_name: str,
    every_variant: bool | None = None,
) -> tuple[PlannedRun, ...]:
    """`run --all`: on the proxy and paper profiles, the seeded claims' variants first, seed-major (seed s of every
    one of them before any seed s + 1: an interrupted run still holds pairs), and seed 0 of every other variant
    (proxy: after them, when `every_variant`, default `PIPELINE_CHECK`; paper: always, with the other seeds 0, since
    every variant's reported numbers are compared); on any other profile one seed (0) per variant. `seeds_table`:
    the proxy's `PROXY_SEEDS`, the paper's `paper_table`."""
    names = [v.name for v in variants]
    if profile_name not in ("proxy", "paper"):
        return fixed_seeds(names, [0])
    check_table(seeds_table, claims, variants)
    wanted = seeds_per_variant(seeds_table, claims)
    family = tuple(
        PlannedRun(n, s) for s in range(max(wanted.values(), default=0)) for n in names if s < wanted.get(n, 0)
    )
    if profile_name == "paper":  # every variant's seed 0 first: an interrupted batch still compares each one
        rest = fixed_seeds([n for n in names if n not in wanted], [0])
        return tuple(sorted(family + rest, key=lambda r: r.seed))
    check = PIPELINE_CHECK if every_variant is None else every_variant
    return family + (fixed_seeds([n for n in names if n not in wanted], [0]) if check else ())


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

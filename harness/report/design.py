"""The paper plan's second stage: how many seeds a side each claim needs, sized by its first stage's seed spread.

Stein's two-stage design (Stein 1945, "A two-sample test for a linear hypothesis whose power is independent of the
variance"): a first stage of `MIN_SEEDS` seeds a side measures each claim's seed spread; the second stage's size is
the count at which the claim rule decides the claim at power 0.8 (`verdicts.seeds_to_decide`), computed from that
spread and the claim's size, not from the measured difference, so that looking at the first stage does not choose
the verdict (a direction claim has no size: its count reads the first stage's difference, which its reason says).
The level is the family's first rank (two-sided alpha / m, m = the registry's claims: Holm's strictest step).
Ensemble claims keep their first stage (their spread is over ensembles whose predictions only the report reads).
`paper_seeds` reads the store; the rest is pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness import mlruns, plan
from harness.plan import MIN_SEEDS, ClaimSeeds
from harness.report import read
from harness.report.claims import measure
from harness.report.speedup import speedup_variants
from harness.report.stats import ALPHA, POWER
from harness.report.types import RunRow
from harness.report.verdicts import ClaimTest, seeds_to_decide
from variants import Claim, Variant


def first_stage_rows(rows: Sequence[RunRow], first: Mapping[str, int], offset: int) -> list[RunRow]:
    """The finished runs of the first stage: seeds offset .. offset + n - 1 of each variant (n = `first[variant]`)."""
    return [
        r for r in rows if r.variant in first and r.seed is not None and offset <= r.seed < offset + first[r.variant]
    ]


def _count(n: int | None) -> str:
    return "more than 1000" if n is None else str(n)


def second_stage(
    claims: Sequence[Claim],
    rows: Sequence[RunRow],
    variants: Sequence[Variant],
    first: Sequence[ClaimSeeds],
    offset: int,
    where: str,
    family: int | None = None,
) -> dict[str, ClaimSeeds]:
    """Claim name -> its second stage's seeds a side, for every first-stage claim (not an ensemble one) that the
    store holds `MIN_SEEDS` finished first-stage seeds a side of, on the papers' data. `where` names the store and
    experiment for the reasons; `family` is Holm's m (default: the number of `claims`). A count the design cannot
    reach (more than 1000 seeds) asks for 1000: `plan.paper_table` caps it and says so."""
    by_name = {c.name: c for c in claims}
    m = family or len({c.name for c in claims})
    alpha = ALPHA / m
    out: dict[str, ClaimSeeds] = {}
    for e in first:
        c = by_name[e.claim]
        if c.ensemble > 1:
            continue
        seeds = {c.baseline: e.baseline}
        seeds[c.variant] = max(seeds.get(c.variant, 0), e.variant)  # a protocol claim: one variant, both sides
        stage = first_stage_rows(rows, seeds, offset)
        for meas in measure(c, stage, variants, ()):
            d = meas.diff
            if meas.proxy or d is None or min(d.n_variant, d.n_baseline) < MIN_SEEDS:
                continue
            t = ClaimTest(c.kind, c.delta, False, d, c.metric, meas.classes)
            if t.uninformative:
                continue
            n = seeds_to_decide(t, alpha)
            if n is None:
                continue
            wanted = [n.hold, n.fail] if n.fail_applies else [n.hold]
            target = max(1000 if x is None else x for x in wanted)  # either verdict, whichever is true
            sd = d.spread()
            unit = "pairs" if d.paired else "seeds a side"
            hold = "the measured difference" if c.kind == "direction" else "the claim"
            why = (
                f"second stage, sized by the first stage's seeds {offset}-{offset + MIN_SEEDS - 1} in {where}: seed "
                f"sd {sd:.2g} ({'paired' if d.paired else 'unpaired'}); {_count(n.hold)} {unit} would "
                + ("hold it if the true change is 0" if c.kind == "equivalence" else f"hold it if the change is {hold}")
                + (f", {_count(n.fail)} would fail it by size if it is 0" if n.fail_applies else "")
                + f" (power {POWER:g}, two-sided alpha {ALPHA:g}/{m})"
            )
            if c.kind == "direction":
                why += f"; a direction claim has no size: the count reads the first stage's {d.measured:+.2g}"
            previous = out.get(c.name)
            if previous is None or target > previous.variant:
                out[c.name] = ClaimSeeds(c.name, max(target, MIN_SEEDS), max(target, MIN_SEEDS), why)
    return out


def paper_seeds(
    tracking_uri: str,
    experiment: str,
    claims: Sequence[Claim],
    variants: Sequence[Variant],
    offset: int,
    max_seeds: int,
) -> tuple[ClaimSeeds, ...]:
    """The paper plan's seed table for `run --all`: the first stage, each claim's second stage where the store's
    `experiment` holds its first stage, every count capped at `max_seeds` (`plan.paper_table`)."""
    first = plan.first_stage(claims, variants)
    path = mlruns.sqlite_path(tracking_uri)
    fresh = path is not None and not path.is_file()
    if fresh or experiment not in read.known_experiments(tracking_uri):
        return plan.paper_table(first, {}, max_seeds)
    rows = read.read_runs(tracking_uri, [experiment], speedup_variants(claims))
    where = f"the store's experiment {experiment!r}"
    return plan.paper_table(first, second_stage(claims, rows, variants, first, offset, where), max_seeds)

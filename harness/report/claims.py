"""The papers' claims measured on runs (section 4 of the report), then judged by `harness.report.verdicts`. Pure.

A claim is measured on each data set, split, profile and pretraining that holds finished runs with the paper's
recipe of both sides (never pooling profiles); `not run` when none does. Two variants: paired by seed (`by_seed`:
seed s of both sides shares init and data order) where the sides share their seeds, else Welch. A protocol claim on
one variant (10-crop vs centre): paired, one difference per run. An ensemble claim (Claim.ensemble = k): the variant
side is disjoint ensembles of k runs (lowest seeds first), each the averaged softmax of its saved predictions;
against the same variant each ensemble is paired with the mean of its own members, against another variant Welch.
On proxy data (direction only) the ensembles have k' = max(2, n // 3) of the n finished runs instead (at most k;
6 runs: 3 disjoint pairs), and the reason says so. A speedup claim (KSH12 Fig. 1): per run the training images seen
until the running training error first falls to the claim's threshold (`images_to_threshold`), paired by seed or
Welch over the logs of those counts (variant - baseline), so the difference is a log ratio. Its verdict is
`verdicts`' rule: Holm over the claim families fixed in advance (`families`), the statistics in
`harness.report.stats`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from harness import schema
from harness.report import fmt
from harness.report.ensembles import claim_ensemble_size
from harness.report.runs import groups, order, other_protocol, plain_runs, proxy_groups, run_metric
from harness.report.speedup import SPEEDUP_WINDOW, images_to_threshold, speedup_threshold
from harness.report.stats import Difference, paired, paired_sides, summarize, welch
from harness.report.types import EnsembleResult, RunRow
from harness.report.verdicts import FEW_CLASSES, MIN_SEEDS, ClaimTest, Families, Verdict, verdicts
from variants import Claim, Variant


@dataclass(frozen=True)
class ClaimResult:
    """One claim on one data set, split, profile and pretraining (data None: `not run` anywhere)."""

    claim: Claim
    data: str | None
    split: str | None
    proxy: bool
    diff: Difference | None
    interval: tuple[float, float] | None  # 95 % interval of the difference
    verdict: Verdict
    reason: str
    run_ids: tuple[str, ...]
    profile: str | None = None
    pretrained: str | None = None

    @property
    def measured(self) -> float | None:
        return None if self.diff is None else self.diff.measured

    @property
    def se(self) -> float | None:
        return None if self.diff is None else self.diff.se

    @property
    def n_variant(self) -> int:
        return 0 if self.diff is None else self.diff.n_variant

    @property
    def n_baseline(self) -> int:
        return 0 if self.diff is None else self.diff.n_baseline


@dataclass(frozen=True)
class Measurement:
    """One claim's difference on one data set, split, profile and pretraining (`check_claims` judges it)."""

    data: str
    split: str
    profile: str
    pretrained: str | None
    proxy: bool
    diff: Difference | None  # None: nothing measured here (`not run`, with `note` saying why)
    note: str
    run_ids: tuple[str, ...]
    classes: int | None = None  # the runs' num_classes (the most any of them logged); None: none logged


Found = tuple[Difference | None, str, tuple[str, ...]]  # the difference, its note, the run ids behind it


def measure(
    claim: Claim, rows: Sequence[RunRow], variants: Sequence[Variant], ensembles: Sequence[EnsembleResult]
) -> list[Measurement]:
    """`claim` measured wherever runs of both sides share a data set, split, profile and pretraining; where none
    do, one Measurement without a difference whose note says what is missing."""
    proxies = {g[0] for g in proxy_groups(rows, variants)}
    plain = order(plain_runs(rows))
    a_runs = [x for x in plain if x.variant == claim.variant]
    b_runs = [x for x in plain if x.variant == claim.baseline]
    pa, pb = claim_protocols(claim, variants)
    out = []
    for g in sorted({_group(x) for x in a_runs} & {_group(x) for x in b_runs}):
        a = [x for x in a_runs if _group(x) == g]
        b = [x for x in b_runs if _group(x) == g]
        found = _measure_group(claim, a, b, (pa, pb), ensembles, g[0] in proxies)
        if found is None:
            continue
        diff, note, ids = found
        data, split, profile, pretrained = g
        classes = max((x.num_classes for x in a + b if x.num_classes), default=None)
        out.append(Measurement(data, split, profile, pretrained or None, data in proxies, diff, note, ids, classes))
    return out or [_unmeasured(claim, a_runs, b_runs, (pa, pb))]


def claim_protocols(claim: Claim, variants: Sequence[Variant]) -> tuple[str, str]:
    """The protocols of the variant and the baseline side: a protocol claim's and the other one, else the
    baseline's test protocol for both."""
    if claim.protocol:
        return claim.protocol, other_protocol(claim.protocol)
    base = {v.name: v for v in variants}.get(claim.baseline)
    protocol = base.recipe.test_protocol if base else "center"
    return protocol, protocol


def _measure_group(
    claim: Claim,
    a: Sequence[RunRow],
    b: Sequence[RunRow],
    protocols: tuple[str, str],
    ensembles: Sequence[EnsembleResult],
    proxy: bool,
) -> Found | None:
    """`claim` on the variant runs `a` and baseline runs `b` of one group, by the claim's shape; None: nothing to
    measure here (no Measurement), a Found without a difference: a Measurement that says why."""
    if claim.kind == "speedup":
        found = _measure_speedup(claim, a, b, proxy)
        return None if found[0] is None else found
    if claim.ensemble > 1:
        return _measure_ensemble(claim, a, b, protocols[0], ensembles, proxy)
    if claim.protocol and claim.variant == claim.baseline:
        return _measure_protocols(claim, a, protocols, proxy)
    return _measure_variants(claim, a, b, protocols)


def _measure_protocols(claim: Claim, a: Sequence[RunRow], protocols: tuple[str, str], proxy: bool) -> Found | None:
    """Paired: both protocols of the same runs (10-crop vs centre), one difference per run."""
    pa, pb = protocols
    proto = proxy_protocol(pa, a) if proxy else pa
    pairs = [(x.run_id, run_metric(x, proto, claim.metric), run_metric(x, pb, claim.metric)) for x in a]
    pairs = [(i, u, v) for i, u, v in pairs if u is not None and v is not None]
    if not pairs:
        return None
    diff, ids = paired(u - v for _, u, v in pairs), tuple(i for i, _, _ in pairs)
    note = "paired: both protocols of each run"
    if proto != pa:
        note += (
            f"; proxy: the {fmt.protocol(proto)} stands for the {fmt.protocol(pa)} (a mirrored digit is another symbol)"
        )
    return diff, note, ids


def _measure_variants(
    claim: Claim, a: Sequence[RunRow], b: Sequence[RunRow], protocols: tuple[str, str]
) -> Found | None:
    """Two variants: paired by seed or Welch (`by_seed`), on the protocol both sides have where the claim names
    none."""
    pa, pb = protocols
    note = ""
    if claim.protocol:
        proto_a, proto_b = pa, pb
    else:
        proto_a = proto_b = shared_protocol([*a, *b], pa, claim.metric)
        if proto_a != pa:  # e.g. the proxy evaluates the centre crop only: compare on what both sides have
            note = f"compared on the {fmt.protocol(proto_a)} (the runs have no {fmt.protocol(pa)})"
    xs = [(x, run_metric(x, proto_a, claim.metric)) for x in a]
    ys = [(x, run_metric(x, proto_b, claim.metric)) for x in b]
    xs, ys = [(x, v) for x, v in xs if v is not None], [(x, v) for x, v in ys if v is not None]
    if not xs or not ys:
        return None
    diff, pairing, ids = by_seed(xs, ys)  # type: ignore[arg-type]  # None values were dropped above
    return diff, fmt.join(pairing, note), ids


def _unmeasured(
    claim: Claim, a_runs: Sequence[RunRow], b_runs: Sequence[RunRow], protocols: tuple[str, str]
) -> Measurement:
    """The one Measurement of a claim measured nowhere: its note says what is missing."""
    missing = [n for n, runs in ((claim.variant, a_runs), (claim.baseline, b_runs)) if not runs]
    shared = {_group(x) for x in a_runs} & {_group(x) for x in b_runs}
    if missing:
        reason = f"needs finished runs of {' and '.join(dict.fromkeys(missing))} with the paper's recipe"
    elif shared and claim.kind == "speedup":
        reason = f"the runs lack a {schema.TRAIN_ERR} curve (or the claim a threshold for their data)"
    elif shared:
        reason = f"the runs lack {' / '.join(dict.fromkeys(fmt.protocol(p) for p in protocols))} {claim.metric} metrics"
    else:
        reason = "the runs of the two sides share no data set, split and profile"
    return Measurement("", "", "", None, False, None, reason, ())


def proxy_protocol(protocol: str, runs: Sequence[RunRow]) -> str:
    """On proxy data a 10-crop claim is tested with 5 crops without mirrors where the runs have no 10-crop (the
    proxy profile evaluates `five_crop`: a mirrored digit is another symbol)."""
    if protocol == "ten_crop" and all(x.ten_crop_top1 is None for x in runs):
        return "five_crop"
    return protocol


def shared_protocol(runs: Sequence[RunRow], preferred: str, metric: str) -> str:
    """`preferred` when every run has it, else the first protocol that every run has (else `preferred`)."""
    for protocol in (preferred, "center", "ten_crop"):
        if all(run_metric(x, protocol, metric) is not None for x in runs):
            return protocol
    return preferred


def _group(x: RunRow) -> tuple[str, str, str, str]:
    """Runs a claim may compare: one data set, split, profile and pretraining."""
    return x.data, x.split, x.profile, x.pretrained or ""


def by_seed(
    xs: Sequence[tuple[RunRow, float]], ys: Sequence[tuple[RunRow, float]]
) -> tuple[Difference, str, tuple[str, ...]]:
    """Variant values `xs` against baseline values `ys`, one per run. Seed s of both sides shares its data order and,
    where shapes allow, its init (harness/engine.py: `prepare_model` and the epoch seeds derive from the run's seed),
    so the sides are compared as pairs (paired t on the per-seed differences) when they have at least 2 seeds in
    common, no seed twice on a side, and pairing keeps as many values a side as the verdict needs (min(3, n_a, n_b));
    Welch over all values otherwise. Returns the difference, a note saying which, and the run ids it used."""
    seeds_a, seeds_b = [x.seed for x, _ in xs], [x.seed for x, _ in ys]
    common = sorted({s for s in seeds_a if s is not None} & {s for s in seeds_b if s is not None})
    repeats = len(set(seeds_a)) < len(seeds_a) or len(set(seeds_b)) < len(seeds_b)
    if not repeats and len(common) >= max(2, min(MIN_SEEDS, len(xs), len(ys))):
        va, vb = {x.seed: (x, v) for x, v in xs}, {x.seed: (x, v) for x, v in ys}
        diff = paired_sides([(va[s][1], vb[s][1]) for s in common])
        left = len(xs) + len(ys) - 2 * len(common)
        note = f"paired by seed ({len(common)} common seeds" + (f"; {left} unpaired run(s) left out)" if left else ")")
        ids = tuple(dict.fromkeys([*(va[s][0].run_id for s in common), *(vb[s][0].run_id for s in common)]))
        return diff, note, ids
    why = "a seed repeats on a side" if repeats else f"the sides share {len(common)} seed(s)"
    diff = welch([v for _, v in xs], [v for _, v in ys])
    return diff, f"Welch: {why}", tuple(dict.fromkeys(x.run_id for x, _ in (*xs, *ys)))


def _measure_speedup(
    claim: Claim, a: Sequence[RunRow], b: Sequence[RunRow], proxy: bool
) -> tuple[Difference | None, str, tuple[str, ...]]:
    """log(images to the threshold) of variant runs `a` against baseline runs `b`: paired by seed or Welch
    (`by_seed`); every run that has a curve is counted in the medians."""
    threshold = speedup_threshold(claim, proxy)
    if threshold is None:
        return None, f"the claim gives no {'proxy ' if proxy else ''}threshold", ()
    sides = []
    for runs in (a, b):
        found = [(x.run_id, images_to_threshold(x.train_err, threshold)) for x in runs]
        sides.append([(i, r) for i, r in found if r is not None])
    (xs, ys) = sides
    if not xs or not ys:
        return None, "", ()
    by_id = {x.run_id: x for x in (*a, *b)}
    diff, pairing, _ = by_seed([(by_id[i], math.log(r[0])) for i, r in xs], [(by_id[i], math.log(r[0])) for i, r in ys])
    median = [statistics.median(r[0] for _, r in side) for side in (xs, ys)]
    note = (
        f"threshold {threshold:g} % training error ({'proxy: the harness' if proxy else 'the paper'}'s), running mean "
        f"of {SPEEDUP_WINDOW} logged error points; median training images to it {median[0]:,.0f} (variant) / "
        f"{median[1]:,.0f} (baseline); measured: mean log(images) variant - baseline; {pairing}"
    )
    censored = [sum(not r[1] for _, r in side) for side in (xs, ys)]
    if any(censored):
        note += (
            f"; {censored[0]} / {censored[1]} runs never reached it (counted as all the images they saw, a lower "
            "bound: this shrinks the difference)"
        )
    return diff, note, tuple(dict.fromkeys(i for i, _ in xs + ys))


def _measure_ensemble(
    claim: Claim,
    a: Sequence[RunRow],
    b: Sequence[RunRow],
    preferred: str,
    ensembles: Sequence[EnsembleResult],
    proxy: bool = False,
) -> tuple[Difference | None, str, tuple[str, ...]]:
    """Variant side: disjoint ensembles of `claim.ensemble` runs of `a` (proxy data: `claim_ensemble_size`'s k');
    against `b`'s single runs (Welch), or, when both sides are the same variant, each ensemble minus the mean of its
    own members (paired)."""
    k, ids = claim_ensemble_size(claim.ensemble, len(a), proxy), {x.run_id: x for x in a}
    mine = [e for e in ensembles if e.variant == claim.variant and e.k == k and set(e.run_ids) <= set(ids)]
    protocols = sorted({e.protocol for e in mine}, key=lambda p: (p != preferred, p))
    needed = (
        f"{MIN_SEEDS} disjoint ensembles of {k} need {MIN_SEEDS * k} finished runs of `{claim.variant}` with "
        f"saved predictions here; {len(a)} found"
    )
    chosen: list[EnsembleResult] = []
    for e in sorted(
        (e for e in mine if protocols and e.protocol == protocols[0]),
        key=lambda e: [list(ids).index(i) for i in e.run_ids],
    ):
        if not any(set(e.run_ids) & set(f.run_ids) for f in chosen):
            chosen.append(e)
    if not chosen:
        return None, f"no ensemble of {k} runs: {needed}", ()
    protocol = protocols[0]
    note = f"variant side: {len(chosen)} disjoint ensemble(s) of {k} runs (softmax averaged)"
    if k != claim.ensemble:
        note = (
            f"proxy: {len(chosen)} disjoint ensemble(s) of {k} instead of {claim.ensemble} (of {len(a)} runs; the "
            f"direction only), softmax averaged"
        )
    if protocol != preferred:
        note += f", compared on the {fmt.protocol(protocol)} (the ensembles have no {fmt.protocol(preferred)})"
    values = [getattr(e, claim.metric) for e in chosen]
    if claim.variant == claim.baseline:
        kept, member_means = [], []
        for e, v in zip(chosen, values):
            members = [run_metric(ids[i], protocol, claim.metric) for i in e.run_ids]
            if all(m is not None for m in members):
                kept.append(v)
                member_means.append(statistics.fmean(m for m in members if m is not None))
        if not kept:
            return None, f"the members lack {fmt.protocol(protocol)} {claim.metric} metrics", ()
        diff = replace(
            paired(v - m for v, m in zip(kept, member_means)),
            variant_side=summarize(kept),
            baseline_side=summarize(member_means),
        )
        note += ", each minus the mean of its own members"
        used = tuple(i for e in chosen for i in e.run_ids)
    else:
        base = [(x.run_id, run_metric(x, protocol, claim.metric)) for x in b]
        base = [(i, v) for i, v in base if v is not None]
        if not base:
            return None, f"the baseline runs lack {fmt.protocol(protocol)} {claim.metric} metrics", ()
        diff = welch(values, [v for _, v in base])
        used = tuple(dict.fromkeys([*(i for e in chosen for i in e.run_ids), *(i for i, _ in base)]))
    if len(chosen) < MIN_SEEDS:
        note += f"; {needed}"
    return diff, note, used


def proxy_family(
    claims: Sequence[Claim], named: Collection[str] | None = None, untestable: Collection[str] = ()
) -> set[str]:
    """The claims proxy data tests, fixed in advance: those in `named` (the proxy's seed plan), else every claim of
    `claims` but the equivalence ones (a size) and those in `untestable`."""
    names = {c.name for c in claims if c.kind != "equivalence" and c.name not in untestable}
    return names if named is None else names & set(named)


def families(
    claims: Sequence[Claim], named: Collection[str] | None = None, untestable: Collection[str] = ()
) -> Families:
    """Holm's family sizes of a report: every claim of `claims` (the registry's) on the papers' data, the
    `proxy_family` on proxy data."""
    return Families(len({c.name for c in claims}), len(proxy_family(claims, named, untestable)))


def check_claims(
    claims: Sequence[Claim],
    rows: Sequence[RunRow],
    variants: Sequence[Variant],
    ensembles: Sequence[EnsembleResult] = (),
    proxy_claims: Collection[str] | None = None,
    untestable: Mapping[str, str] | None = None,
) -> list[ClaimResult]:
    """Every claim on every data set, split, profile and pretraining holding runs of both sides (one `not run`
    result for a claim measured nowhere), judged together by `verdicts` in two families fixed by the claims, not by
    the runs (`families`): on the papers' data all of `claims`, on proxy data the `proxy_family` of `proxy_claims`.
    `untestable` maps a claim's name to why proxy data cannot test it (`not testable here` there)."""
    untestable = dict(untestable or {})
    family = proxy_family(claims, proxy_claims, untestable)
    measured = [(c, m) for c in claims for m in measure(c, rows, variants, ensembles)]
    tested = [i for i, (_, m) in enumerate(measured) if m.diff is not None]
    tests = [
        ClaimTest(
            c.kind,
            c.delta,
            m.proxy,
            m.diff,  # type: ignore[arg-type]  # tested: measured
            c.metric,
            m.classes,
            untestable.get(c.name, "") if m.proxy else "",
            c.name in family or not m.proxy,
        )
        for c, m in (measured[i] for i in tested)
    ]
    decided = dict(zip(tested, verdicts(tests, families=families(claims, proxy_claims, untestable))))
    out = []
    proxy_data = proxy_groups(rows, variants)
    on_proxy, only_proxy = bool(proxy_data), bool(proxy_data) and len(proxy_data) == len(groups(rows))
    few = few_proxy_classes(rows, variants)
    for i, (c, m) in enumerate(measured):
        why_not = ""  # why the proxy data cannot test an unmeasured claim: its own reason, or top-5 of few classes
        if m.diff is None and on_proxy:
            why_not = untestable.get(c.name) or (
                f"top-5 of {few} classes carries no information" if few is not None and c.metric == "top5" else ""
            )
        if why_not and only_proxy:  # not trained on the proxy: why, not "not run"
            v: Verdict = "not testable here"
            reason = why_not
        elif m.diff is None:  # the papers' data in the store could test it: it needs runs
            v = "not run"
            reason = "; ".join(x for x in (m.note, why_not and f"not testable on the proxy data: {why_not}") if x)
        else:
            v, reason = decided[i]
            reason = "; ".join(x for x in (reason, m.note) if x)
        where = (None, None, None) if not m.data else (m.data, m.split, m.profile)
        out.append(
            ClaimResult(
                c,
                where[0],
                where[1],
                m.proxy,
                m.diff,
                None if m.diff is None else m.diff.interval(),
                v,
                reason,
                m.run_ids,
                where[2],
                m.pretrained,
            )
        )
    return out


def few_proxy_classes(rows: Sequence[RunRow], variants: Sequence[Variant]) -> int | None:
    """The classes of the proxy data in `rows` when every proxy run logged at most `FEW_CLASSES` of them (top-5
    carries no information there, measured or not); else None (no proxy runs, or one with more classes)."""
    proxies = {g[0] for g in proxy_groups(rows, variants)}
    classes = [x.num_classes for x in rows if x.kind == "variant" and x.data in proxies]
    if not classes or any(n is None or n > FEW_CLASSES for n in classes):
        return None
    return max(classes)  # type: ignore[type-var]  # none is None here


def check_claim(
    claim: Claim, rows: Sequence[RunRow], variants: Sequence[Variant], ensembles: Sequence[EnsembleResult] = ()
) -> list[ClaimResult]:
    """One claim alone (a family of one): one result per data set, split and profile holding both sides."""
    return check_claims([claim], rows, variants, ensembles)

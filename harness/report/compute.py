"""Pure computations behind the report: statistics over seeds, each reported number's status, claim verdicts,
ensembles. No MLflow, no files: tested on fixed rows.

Status of a reported number (section 1), first rule that applies:
  not run         no run of the variant at all, or none finished, or (ensembles) fewer finished runs on the
                  reported data than the ensemble has networks;
  not comparable  finished runs exist, but none on the reported data set (tag `dataset_name`), split, pretraining
                  and protocol (a `<protocol>_val_top1` metric, or `final_val_top1` of a run whose
                  `test_protocol` is that protocol); no difference is computed;
  modified recipe the only matching runs changed the paper's recipe (tag `recipe_modified`): never a reproduction;
  reproduced      |mean top-1 over seeds - reported top-1| <= Reported.tolerance (top-5 when no top-1 is reported);
  not reproduced  otherwise.

Verdict of a claim (section 4), measured = mean(variant runs) - mean(baseline runs) on one data set and split
(for protocol claims on one variant: the mean over runs of ten_crop minus center of the same run), first rule
that applies:
  not run         no data set holds finished, unmodified runs of both sides;
  inconclusive    a side has fewer than 2 seeds, or the standard error of the difference
                  sqrt(s_a^2/n_a + s_b^2/n_b) (paired: s/sqrt(n)) is at least |measured|;
  holds           same sign as the claim and |measured| >= |claimed| / 2; for approximate claims ("about 2 %")
                  also |measured| <= 2 |claimed|;
  does not hold   otherwise.

A sweep (section 6) is compared with the mean final top-1 of finished, unmodified runs of its variant on the same
data set (tag `dataset_name` or loader) and profile; difference = best trial minus that mean, never a status.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.report import fmt
from harness.report.types import EnsembleResult, RunRow, Stat
from variants import Claim, Reported, Variant

Status = Literal["reproduced", "not reproduced", "not comparable", "modified recipe", "not run"]
Verdict = Literal["holds", "does not hold", "inconclusive", "not run"]
STATUSES: tuple[Status, ...] = ("reproduced", "not reproduced", "not comparable", "modified recipe", "not run")
VERDICTS: tuple[Verdict, ...] = ("holds", "does not hold", "inconclusive", "not run")


# --- statistics -------------------------------------------------------------------------------------------------


def summarize(values: Iterable[float | None]) -> Stat | None:
    """Mean and sample std (ddof=1) of the values that are not None; sorted first so row order never matters."""
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return None
    return Stat(statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else None, len(xs))


def run_metric(row: RunRow, protocol: str, metric: str) -> float | None:
    """A run's accuracy under `protocol`: its `<protocol>_val_<metric>`, else its final metric if that protocol."""
    value = getattr(row, f"{protocol}_{metric}", None)
    if value is None and row.protocol == protocol:
        value = getattr(row, f"final_{metric}")
    return value


def plain_runs(rows: Iterable[RunRow]) -> list[RunRow]:
    """Finished variant runs with the paper's recipe: the only runs that count as reproductions."""
    return [r for r in rows if r.kind == "variant" and r.finished and not r.recipe_modified]


def order(rows: Iterable[RunRow]) -> list[RunRow]:
    return sorted(rows, key=lambda r: (r.data, r.split, r.variant, r.seed is None, r.seed or 0, r.run_id))


def paper_datasets(variants: Iterable[Variant]) -> set[str]:
    return {r.dataset for v in variants for r in v.reported}


def groups(rows: Iterable[RunRow]) -> list[tuple[str, str]]:
    """(data, split) pairs the variant runs used, sorted."""
    return sorted({(r.data, r.split) for r in rows if r.kind == "variant"})


def proxy_groups(rows: Iterable[RunRow], variants: Iterable[Variant]) -> list[tuple[str, str]]:
    """Data sets no paper reports on (e.g. the mnist5k proxy)."""
    known = paper_datasets(variants)
    return [g for g in groups(rows) if g[0] not in known]


def data_label(data: str, split: str, proxy: bool) -> str:
    return f"{data} (proxy) {split}" if proxy else f"{data} {split}"


# --- section 1: reproduced versus reported ----------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    variant: str
    reported: Reported
    status: Status
    top1: Stat | None  # reproduced, over seeds (an ensemble: one value, n = 1)
    top5: Stat | None
    diff: float | None  # reproduced - reported, on `diff_metric`; None unless reproduced / not reproduced
    diff_metric: str
    run_ids: tuple[str, ...]
    note: str


def needs(r: Reported) -> str:
    """What a run must have to test this reported number."""
    data = f"ImageNet ({r.dataset} {r.split})" if r.dataset.startswith("ILSVRC") else f"{r.dataset} ({r.split})"
    if r.dataset == "ILSVRC-2012" and r.split == "test":
        data += " whose labels only the ILSVRC evaluation server holds"
    parts = [data, f"{fmt.protocol(r.protocol)} evaluation"]
    if r.ensemble > 1:
        parts.append(f"an ensemble of {r.ensemble} runs")
    if r.pretrained:
        parts.append(f"pretraining on {r.pretrained}")
    return "needs " + ", ".join(parts)


def describe_data(runs: Sequence[RunRow]) -> str:
    """Which data finished runs used, with their accuracy (own protocol), for information only."""
    keys = sorted({(r.data, r.split, r.protocol) for r in runs})
    parts = []
    for data, split, protocol in keys:
        s = summarize(r.final_top1 for r in runs if (r.data, r.split, r.protocol) == (data, split, protocol))
        parts.append(f"{data} {split} ({fmt.protocol(protocol)}): top-1 {fmt.stat(s)}")
    return "runs used " + "; ".join(parts)


def _matches(row: RunRow, r: Reported, metric: str) -> bool:
    return (
        row.dataset_name == r.dataset
        and row.split == r.split
        and row.pretrained == r.pretrained
        and run_metric(row, r.protocol, metric) is not None
    )


def _status(mean: float, reference: float, tolerance: float) -> Status:
    return "reproduced" if abs(mean - reference) <= tolerance else "not reproduced"


def compare(variant: Variant, r: Reported, rows: Sequence[RunRow], ensembles: Sequence[EnsembleResult]) -> Comparison:
    metric = "top1" if r.top1 is not None else "top5"
    reference = r.top1 if r.top1 is not None else r.top5

    def result(status: Status, note: str, top1: Stat | None = None, top5: Stat | None = None,
               ids: Iterable[str] = (), diff: float | None = None) -> Comparison:
        return Comparison(variant.name, r, status, top1, top5, diff, metric, tuple(ids), note)

    runs = [x for x in rows if x.kind == "variant" and x.variant == variant.name]
    finished = [x for x in runs if x.finished]
    if not finished:
        failed = f"; {len(runs)} run(s) did not finish" if runs else ""
        return result("not run", needs(r) + failed)
    matching = order(x for x in finished if _matches(x, r, metric))
    if not matching:
        return result("not comparable", describe_data(order(finished)) + "; no difference computed")
    plain = [x for x in matching if not x.recipe_modified]
    if r.ensemble > 1:
        return _compare_ensemble(variant, r, plain, ensembles)
    top1 = summarize(run_metric(x, r.protocol, "top1") for x in (plain or matching))
    top5 = summarize(run_metric(x, r.protocol, "top5") for x in (plain or matching))
    if not plain:
        keys = sorted({k for x in matching for k in x.modified_keys.split(",") if k})
        return result("modified recipe", f"only runs with a modified recipe ({', '.join(keys) or 'unknown keys'}); "
                      "not a reproduction", top1, top5, (x.run_id for x in matching))
    s = top1 if metric == "top1" else top5
    assert s is not None and reference is not None  # _matches guarantees the metric
    diff = s.mean - reference
    note = "" if metric == "top1" else "compared on top-5 (no top-1 reported)"
    return result(_status(s.mean, reference, r.tolerance), note, top1, top5, (x.run_id for x in plain), diff)


def _compare_ensemble(variant: Variant, r: Reported, plain: Sequence[RunRow],
                      ensembles: Sequence[EnsembleResult]) -> Comparison:
    metric = "top1" if r.top1 is not None else "top5"
    key = (variant.name, r.dataset, r.split, r.protocol, r.pretrained, r.ensemble)
    found = [e for e in ensembles if (e.variant, e.data, e.split, e.protocol, e.pretrained, e.k) == key]
    if not found:
        have = len([x for x in plain if x.protocol == r.protocol])
        note = f"{needs(r)}; {have} finished run(s) with the paper's recipe on this data"
        return Comparison(variant.name, r, "not run", None, None, None, metric, (), note)
    e = found[0]
    value, reference = (e.top1, r.top1) if r.top1 is not None else (e.top5, r.top5)
    assert reference is not None
    return Comparison(variant.name, r, _status(value, reference, r.tolerance), Stat(e.top1, None, 1),
                      Stat(e.top5, None, 1), value - reference, metric, e.run_ids, f"softmax of {e.k} runs averaged")


def compare_all(variants: Sequence[Variant], rows: Sequence[RunRow],
                ensembles: Sequence[EnsembleResult]) -> list[Comparison]:
    return [compare(v, r, rows, ensembles) for v in variants for r in v.reported]


# --- section 2: ensembles ---------------------------------------------------------------------------------------


def ensemble_accuracy(probs: Sequence[np.ndarray], labels: np.ndarray) -> tuple[float, float]:
    """Top-1 and top-5 accuracy (percent) of the mean of several networks' softmax outputs (KSH12 s6)."""
    if not probs:
        raise ValueError("an ensemble needs at least one network")
    mean = np.mean([np.asarray(p, dtype=np.float64) for p in probs], axis=0)
    labels = np.asarray(labels)
    ranked = np.argsort(-mean, axis=1, kind="stable")
    top1 = float(np.mean(ranked[:, 0] == labels)) * 100
    top5 = float(np.mean((ranked[:, : min(5, mean.shape[1])] == labels[:, None]).any(axis=1))) * 100
    return top1, top5


@dataclass(frozen=True)
class EnsembleCandidate:
    variant: str
    data: str
    split: str
    protocol: str
    pretrained: str | None
    run_ids: tuple[str, ...]


def ensemble_sizes(variant: Variant) -> list[int]:
    return sorted({r.ensemble for r in variant.reported if r.ensemble > 1})


def ensemble_candidates(variants: Sequence[Variant], rows: Sequence[RunRow]) -> list[EnsembleCandidate]:
    """For every ensemble size a variant reports: the first k plain runs (by seed) of each data set holding k."""
    out = []
    plain = order(plain_runs(rows))
    for v in variants:
        mine = [x for x in plain if x.variant == v.name]
        keys = sorted({(x.data, x.split, x.protocol, x.pretrained or "") for x in mine})
        for k in ensemble_sizes(v):
            for data, split, protocol, pretrained in keys:
                members = [x.run_id for x in mine if (x.data, x.split, x.protocol, x.pretrained or "")
                           == (data, split, protocol, pretrained)]
                if len(members) >= k:
                    out.append(EnsembleCandidate(v.name, data, split, protocol, pretrained or None,
                                                 tuple(members[:k])))
    return out


# --- section 4: claims ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    data: str | None
    split: str | None
    proxy: bool
    measured: float | None
    se: float | None  # standard error of `measured`
    n_variant: int
    n_baseline: int
    verdict: Verdict
    reason: str
    run_ids: tuple[str, ...]


def verdict(measured: float, se: float | None, n_a: int, n_b: int, claimed: float, approx: bool) -> tuple[Verdict, str]:
    if n_a < 2 or n_b < 2 or se is None:
        return "inconclusive", f"fewer than 2 seeds on a side (n = {n_a} / {n_b})"
    if se >= abs(measured):
        return "inconclusive", f"the seed spread (standard error {se:.2f}) is at least the effect"
    if measured * claimed <= 0:
        return "does not hold", "opposite sign to the claim" if measured else "no change"
    if abs(measured) < abs(claimed) / 2:
        return "does not hold", "less than half the claimed size"
    if approx and abs(measured) > 2 * abs(claimed):
        return "does not hold", "more than twice the claimed size"
    return "holds", "same sign, within a factor of two of the claim" if approx else "same sign, at least half the claim"


def _other(protocol: str) -> str:
    return "center" if protocol == "ten_crop" else "ten_crop"


def shared_protocol(runs: Sequence[RunRow], preferred: str, metric: str) -> str:
    """`preferred` when every run has it, else the first protocol that every run has (else `preferred`)."""
    for protocol in (preferred, "center", "ten_crop"):
        if all(run_metric(x, protocol, metric) is not None for x in runs):
            return protocol
    return preferred


def check_claim(claim: Claim, rows: Sequence[RunRow], variants: Sequence[Variant]) -> list[ClaimResult]:
    """One result per data set that holds runs of both sides; a single `not run` result when none does."""
    by_name = {v.name: v for v in variants}
    proxies = {g[0] for g in proxy_groups(rows, variants)}
    plain = order(plain_runs(rows))
    a_runs = [x for x in plain if x.variant == claim.variant]
    b_runs = [x for x in plain if x.variant == claim.baseline]
    if claim.protocol:
        pa, pb = claim.protocol, _other(claim.protocol)
    else:
        base = by_name.get(claim.baseline)
        pa = pb = base.recipe.test_protocol if base else "center"
    results = []
    for data, split in sorted({(x.data, x.split) for x in a_runs} & {(x.data, x.split) for x in b_runs}):
        a = [x for x in a_runs if (x.data, x.split) == (data, split)]
        b = [x for x in b_runs if (x.data, x.split) == (data, split)]
        if claim.variant == claim.baseline:  # paired: both protocols of the same runs
            pairs = [(run_metric(x, pa, claim.metric), run_metric(x, pb, claim.metric)) for x in a]
            s = summarize(u - v for u, v in pairs if u is not None and v is not None)
            if s is None:
                continue
            measured, se, na, nb = s.mean, None if s.std is None else s.std / math.sqrt(s.n), s.n, s.n
        else:
            protocol, note = shared_protocol(a + b, pa, claim.metric), ""
            if protocol != pa:  # e.g. the proxy evaluates the centre crop only: compare on what both sides have
                note = f"; compared on the {fmt.protocol(protocol)} (the runs have no {fmt.protocol(pa)})"
            sa = summarize(run_metric(x, protocol, claim.metric) for x in a)
            sb = summarize(run_metric(x, protocol, claim.metric) for x in b)
            if sa is None or sb is None:
                continue
            measured, na, nb = sa.mean - sb.mean, sa.n, sb.n
            se = None if sa.std is None or sb.std is None else math.sqrt(sa.std**2 / na + sb.std**2 / nb)
        v, reason = verdict(measured, se, na, nb, claim.delta, claim.kind == "difference")
        reason += note if claim.variant != claim.baseline else ""
        ids = tuple(dict.fromkeys(x.run_id for x in a + b))
        results.append(ClaimResult(claim, data, split, data in proxies, measured, se, na, nb, v, reason, ids))
    if results:
        return results
    missing = [n for n, runs in ((claim.variant, a_runs), (claim.baseline, b_runs)) if not runs]
    shared = {(x.data, x.split) for x in a_runs} & {(x.data, x.split) for x in b_runs}
    if missing:
        reason = f"needs finished runs of {' and '.join(dict.fromkeys(missing))} with the paper's recipe"
    elif shared:
        reason = f"the runs lack {' / '.join(dict.fromkeys(fmt.protocol(p) for p in (pa, pb)))} {claim.metric} metrics"
    else:
        reason = "the runs of the two sides are on different data sets"
    return [ClaimResult(claim, None, None, False, None, None, len(a_runs), len(b_runs), "not run", reason, ())]


# --- section 5: proxy results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyRow:
    variant: str
    protocol: str
    top1: Stat | None  # under the variant's own test protocol (final_val_top1)
    top5: Stat | None
    center_top1: Stat | None  # every variant under one protocol
    runs: int
    unfinished: int
    not_learned: int
    base: str | None
    change: float | None  # top-1 change against `base`, both under the base's protocol
    run_ids: tuple[str, ...]


def proxy_table(rows: Sequence[RunRow], variants: Sequence[Variant], data: str, split: str) -> list[ProxyRow]:
    """Variants run on one data set, best top-1 first (variants with no finished run last, registry order)."""
    by_name = {v.name: v for v in variants}
    here = [x for x in order(rows) if x.kind == "variant" and (x.data, x.split) == (data, split)
            and not x.recipe_modified]  # tuned runs are listed under Deviations, not ranked
    plain = plain_runs(here)
    names = sorted({x.variant for x in here}, key=lambda n: (n not in by_name, list(by_name).index(n)
                                                              if n in by_name else 0, n))

    def mean_under(name: str, protocol: str) -> float | None:
        s = summarize(run_metric(x, protocol, "top1") for x in plain if x.variant == name)
        return None if s is None else s.mean

    def change_against(name: str, base: str) -> float | None:
        """Under the base's protocol, else the other one if only that was logged for both."""
        first = by_name[base].recipe.test_protocol if base in by_name else "center"
        for protocol in (first, _other(first)):
            a, b = mean_under(name, protocol), mean_under(base, protocol)
            if a is not None and b is not None:
                return a - b
        return None

    out = []
    for name in names:
        mine = [x for x in plain if x.variant == name]
        all_mine = [x for x in here if x.variant == name]
        base = by_name[name].ablation_of if name in by_name else None
        change = change_against(name, base) if base else None
        out.append(ProxyRow(
            variant=name,
            protocol=", ".join(sorted({x.protocol for x in mine})) or "-",
            top1=summarize(x.final_top1 for x in mine),
            top5=summarize(x.final_top5 for x in mine),
            center_top1=summarize(x.center_top1 for x in mine),
            runs=len(all_mine),
            unfinished=len([x for x in all_mine if not x.finished]),
            not_learned=len([x for x in mine if x.learned == 0.0]),
            base=base,
            change=change,
            run_ids=tuple(x.run_id for x in mine),
        ))
    return sorted(out, key=lambda p: (p.top1 is None, -(p.top1.mean if p.top1 else 0.0), names.index(p.variant)))


# --- section 6: sweeps -----------------------------------------------------------------------------------------


def sweep_baseline(variant: str, data: Iterable[str], profile: str, rows: Iterable[RunRow]) -> list[RunRow]:
    """Finished paper-recipe runs of `variant` whose data set is one of `data` (a sweep's dataset_name and loader)
    and, when the sweep names one, whose profile is the sweep's: what the sweep's best is compared against."""
    names = {d for d in data if d}
    return order(r for r in plain_runs(rows)
                 if r.variant == variant and r.data in names and (not profile or r.profile == profile))


def sweep_note(epochs: int | None, paper_epochs: Iterable[int]) -> str:
    """Why the sweep's best and the paper recipe's runs may not compare: they trained for different epochs."""
    others = sorted(set(paper_epochs) - {epochs}) if epochs is not None else []
    if not others:
        return ""
    return (f"trials trained {epochs} epoch(s), the paper-recipe runs {', '.join(map(str, others))}: "
            "the difference mixes tuning with training length")


# --- section 3: architecture fidelity ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Approximate:
    """A rounded figure a paper gives in prose, e.g. KSH12's "60 million parameters"."""

    variant: str
    params: float
    rel_tol: float
    source: str


APPROXIMATE = (Approximate("alexnet2012", 60e6, 0.05, "KSH12 s1/abstract: \"60 million parameters\""),)
MACS_TOL_G = 0.0005  # reported GMACs are given to 3 decimals
SIZE_TOL_MB = 0.05  # torchvision's file size includes serialisation overhead beyond the float32 weights


@dataclass(frozen=True)
class Fidelity:
    variant: str
    params: int
    gmacs: float
    size_mb: float
    reported_params: int | None
    reported_gmacs: float | None
    reported_size_mb: float | None

    @property
    def params_match(self) -> bool | None:
        return None if self.reported_params is None else self.params == self.reported_params

    @property
    def gmacs_match(self) -> bool | None:
        return None if self.reported_gmacs is None else abs(self.gmacs - self.reported_gmacs) <= MACS_TOL_G

    @property
    def size_match(self) -> bool | None:
        return None if self.reported_size_mb is None else abs(self.size_mb - self.reported_size_mb) <= SIZE_TOL_MB


def fidelity(variant: Variant, params: int, macs: int, size_mb: float) -> Fidelity:
    return Fidelity(variant.name, params, macs / 1e9, size_mb, variant.reported_params, variant.reported_macs,
                    variant.reported_size_mb)


def approx_match(a: Approximate, params: int) -> tuple[bool, float]:
    rel = (params - a.params) / a.params
    return abs(rel) <= a.rel_tol, rel

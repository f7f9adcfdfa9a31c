"""Ensembles (KSH12 s6: the softmax of several networks averaged): which runs form one, and its accuracy. Pure.

For a reported ensemble of k networks, the first k plain runs (lowest seeds) of each data set holding k. For an
ensemble claim (Claim.ensemble = k), disjoint ensembles of k runs (lowest seeds first); on proxy data of
k' = max(2, n // 3) of the n finished runs instead (at most k; 6 runs: 3 disjoint pairs).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.report.runs import order, plain_runs
from harness.report.types import RunRow
from harness.report.verdicts import MIN_SEEDS
from variants import Claim, Variant


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
    profile: str = ""  # the members' profile; "" when they mix profiles


def ensemble_sizes(variant: Variant) -> list[int]:
    return sorted({r.ensemble for r in variant.reported if r.ensemble > 1})


def _profile(runs: Iterable[RunRow]) -> str:
    profiles = {x.profile for x in runs}
    return profiles.pop() if len(profiles) == 1 else ""


def ensemble_candidates(variants: Sequence[Variant], rows: Sequence[RunRow]) -> list[EnsembleCandidate]:
    """For every ensemble size a variant reports: the first k plain runs (by seed) of each data set holding k."""
    out = []
    plain = order(plain_runs(rows))
    for v in variants:
        mine = [x for x in plain if x.variant == v.name]
        keys = sorted({(x.data, x.split, x.protocol, x.pretrained or "") for x in mine})
        for k in ensemble_sizes(v):
            for data, split, protocol, pretrained in keys:
                members = [
                    x
                    for x in mine
                    if (x.data, x.split, x.protocol, x.pretrained or "") == (data, split, protocol, pretrained)
                ]
                if len(members) >= k:
                    out.append(
                        EnsembleCandidate(
                            v.name,
                            data,
                            split,
                            protocol,
                            pretrained or None,
                            tuple(x.run_id for x in members[:k]),
                            _profile(members[:k]),
                        )
                    )
    return out


def claim_ensemble_size(k: int, n: int, proxy: bool) -> int:
    """The ensemble size a claim of ensembles of `k` is measured with, from `n` finished runs: `k` on paper data;
    on proxy data (direction only) k' = max(2, n // 3), at most k, so that 6 runs give 3 disjoint pairs (3 disjoint
    ensembles of 5 would need 15 runs)."""
    return min(k, max(2, n // MIN_SEEDS)) if proxy else k


def claim_ensemble_candidates(
    claims: Sequence[Claim], rows: Sequence[RunRow], proxies: Collection[str] = ()
) -> list[EnsembleCandidate]:
    """For every claim whose variant side is an ensemble of k runs: disjoint ensembles of k plain runs of each data
    set, split, protocol, pretraining and profile (never pooling profiles): lowest seeds first, then the next k...
    On a data set in `proxies` the size is `claim_ensemble_size`'s k' instead of k."""
    out = []
    plain = order(plain_runs(rows))
    for variant, claim_k in sorted({(c.variant, c.ensemble) for c in claims if c.ensemble > 1}):
        mine = [x for x in plain if x.variant == variant]
        for key in sorted({(x.data, x.split, x.protocol, x.pretrained or "", x.profile) for x in mine}):
            data, split, protocol, pretrained, profile = key
            members = [x.run_id for x in mine if (x.data, x.split, x.protocol, x.pretrained or "", x.profile) == key]
            k = claim_ensemble_size(claim_k, len(members), data in proxies)
            out += [
                EnsembleCandidate(
                    variant, data, split, protocol, pretrained or None, tuple(members[i * k : (i + 1) * k]), profile
                )
                for i in range(len(members) // k)
            ]
    return out

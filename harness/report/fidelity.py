"""Section 3 of the report: each variant's parameters, MACs and weights size as built, against the figures its paper
or torchvision reports. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from variants import Variant


@dataclass(frozen=True)
class Approximate:
    """A rounded figure a paper gives in prose, e.g. KSH12's "60 million parameters"."""

    variant: str
    params: float
    rel_tol: float
    source: str


APPROXIMATE = (Approximate("alexnet2012", 60e6, 0.05, 'KSH12 s1/abstract: "60 million parameters"'),)
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
    return Fidelity(
        variant.name,
        params,
        macs / 1e9,
        size_mb,
        variant.reported_params,
        variant.reported_macs,
        variant.reported_size_mb,
    )


def approx_match(a: Approximate, params: int) -> tuple[bool, float]:
    rel = (params - a.params) / a.params
    return abs(rel) <= a.rel_tol, rel

"""The registry: every paper module contributes its variants here. A new paper is one module plus one line below."""

from __future__ import annotations

import difflib

from variants import krizhevsky2012, krizhevsky2014, torchvision_ref, zeiler2013
from variants.types import Claim, Variant

_REGISTRY: dict[str, Variant] = {}


class UnknownVariantError(KeyError):
    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.name, self.suggestions = name, suggestions
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown variant {name!r}{hint}")

    def __str__(self) -> str:
        return self.args[0]


def register(variant: Variant) -> Variant:
    if variant.name in _REGISTRY:
        raise ValueError(f"variant {variant.name!r} is already registered")
    _REGISTRY[variant.name] = variant
    return variant


def get_variant(name: str) -> Variant:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownVariantError(name, closest(name)) from None


def closest(name: str, n: int = 3) -> list[str]:
    return difflib.get_close_matches(name, list(_REGISTRY), n=n, cutoff=0.4)


def list_variants() -> list[Variant]:
    return list(_REGISTRY.values())


def claims() -> list[Claim]:
    return list(krizhevsky2012.CLAIMS)


for _v in (
    *krizhevsky2012.VARIANTS,
    krizhevsky2014.VARIANT,
    torchvision_ref.VARIANT,
    *zeiler2013.VARIANTS,
):
    register(_v)

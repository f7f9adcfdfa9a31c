"""The registry: every paper module contributes its `PAPER`, `VARIANTS` and `CLAIMS` here.

A new paper is one module exporting those three names plus one entry in `MODULES` below.
"""

from __future__ import annotations

import difflib

from variants import krizhevsky2012, krizhevsky2012_fig1, krizhevsky2014, torchvision_ref, zeiler2013
from variants.types import Claim, Variant

# krizhevsky2012_fig1 shares krizhevsky2012's PAPER (KSH12): one key, one citation
MODULES = (krizhevsky2012, krizhevsky2012_fig1, krizhevsky2014, torchvision_ref, zeiler2013)

# key -> citation, e.g. "KSH12" -> "Krizhevsky, Sutskever, Hinton. ..."; `Variant.paper` must be one of the keys
PAPERS: dict[str, str] = {m.PAPER.key: m.PAPER.citation for m in MODULES}

_REGISTRY: dict[str, Variant] = {}


class UnknownVariantError(KeyError):
    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.name, self.suggestions = name, suggestions
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown variant {name!r}{hint}")

    def __str__(self) -> str:
        return self.args[0]


def register(variant: Variant) -> Variant:
    """Add a variant. Refuses a taken name, a paper key no module defines, and an `ablation_of` not yet registered."""
    if variant.name in _REGISTRY:
        raise ValueError(f"variant {variant.name!r} is already registered")
    if variant.paper not in PAPERS:
        raise ValueError(
            f"variant {variant.name!r} names unknown paper {variant.paper!r}; known papers: {', '.join(PAPERS)}"
        )
    if variant.ablation_of is not None and variant.ablation_of not in _REGISTRY:
        raise ValueError(
            f"variant {variant.name!r} is an ablation of {variant.ablation_of!r}, which is not registered "
            "(register the base variant first)"
        )
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
    """Every paper module's claims, in module order."""
    return [c for m in MODULES for c in m.CLAIMS]


for _module in MODULES:
    for _v in _module.VARIANTS:
        register(_v)

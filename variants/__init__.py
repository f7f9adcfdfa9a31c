"""AlexNet-family paper variants: architectures, recipes and reported numbers as typed data (depends on torch only)."""

from variants.registry import PAPERS, UnknownVariantError, claims, closest, get_variant, list_variants, register
from variants.types import (
    INPUT_SCALES,
    MIN_INPUT_SIZE,
    Claim,
    DropoutScaling,
    InitScheme,
    LayerInit,
    LrGroup,
    LrTable,
    Paper,
    Recipe,
    Reported,
    Variant,
)

__all__ = [
    "INPUT_SCALES",
    "MIN_INPUT_SIZE",
    "PAPERS",
    "Claim",
    "DropoutScaling",
    "InitScheme",
    "LayerInit",
    "LrGroup",
    "LrTable",
    "Paper",
    "Recipe",
    "Reported",
    "UnknownVariantError",
    "Variant",
    "claims",
    "closest",
    "get_variant",
    "list_variants",
    "register",
]

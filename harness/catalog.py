"""`harness list` and `harness show`: what the registry holds, with computed parameter counts and MACs.

Torch is imported only to count (a variant not in the cache, see `measure`) and for `show`'s architecture: a `list`
whose counts are cached loads no torch (the registry is torch-free data, `variants.spec`)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import typing
from dataclasses import asdict, fields
from importlib import metadata
from pathlib import Path

import variants
from harness.report.types import Measured
from variants import PAPERS, Variant

if typing.TYPE_CHECKING:
    import torch.nn as nn


def measure(variant: Variant, num_classes: int | None = None) -> Measured:
    """Parameters, MACs and size, counted on the meta device (shapes only: no weights allocated or initialised),
    and cached (see `_cache_key`): the meta forward of LRN alone costs ~2 s of imports. `num_classes` defaults to
    the variant's own (`Variant.num_classes`: the data its reported numbers are for)."""
    num_classes = variant.num_classes if num_classes is None else num_classes
    key = _cache_key(variant, num_classes)
    cache = _read_cache()
    if key is not None and key in cache:
        return Measured(**cache[key])
    import torch

    try:
        with torch.device("meta"):
            m = _measure(variant, num_classes)
    except (NotImplementedError, RuntimeError):  # an op without a meta kernel: build it for real (~0.3 s)
        m = _measure(variant, num_classes)
    if key is not None:
        _write_cache(cache | {key: asdict(m)})
    return m


def cache_path() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "alexnet-harness" / "measured.json"


@functools.cache
def _source_digest() -> str:
    """The variants package's source and the torch / torchvision versions: what a registered network is built from."""
    h = hashlib.sha256()
    for f in sorted(Path(variants.__file__).parent.glob("*.py")):
        h.update(f.name.encode() + f.read_bytes())
    for dist in ("torch", "torchvision"):
        h.update(metadata.version(dist).encode())
    return h.hexdigest()[:16]


def _cache_key(variant: Variant, num_classes: int) -> str | None:
    """Only variants built by the `variants` package are cached (not ones a caller registered at run time)."""
    builder = getattr(variant.builder, "func", variant.builder)
    if not getattr(builder, "__module__", "").startswith("variants."):
        return None
    return f"{_source_digest()}:{variant.name}:{num_classes}:{variant.input_size}"


def _read_cache() -> dict[str, dict[str, float]]:
    try:
        data = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache: dict[str, dict[str, float]]) -> None:
    """Best effort, atomic: a read-only home or a concurrent writer only costs the next command a recount."""
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass


def _measure(variant: Variant, num_classes: int) -> Measured:
    from variants.convnet import count_macs

    model = variant.build(num_classes)
    params = sum(p.numel() for p in model.parameters())
    return Measured(params, count_macs(model, variant.input_size), params * 4 / 2**20)


def params_match(variant: Variant, m: Measured) -> bool | None:
    return None if variant.reported_params is None else m.params == variant.reported_params


def variant_record(variant: Variant) -> dict[str, object]:
    from harness.config import own_recipe, recipe_params  # (imports torch, through harness.prepared)

    m = measure(variant)
    return {
        "name": variant.name,
        "paper": variant.paper,
        "summary": variant.summary,
        "params": m.params,
        "macs": m.macs,
        "size_mb": round(m.size_mb, 3),
        "reported_params": variant.reported_params,
        "params_match": params_match(variant, m),
        "reported_macs_g": variant.reported_macs,
        "ablation_of": variant.ablation_of,
        "input_size": variant.input_size,
        # as `harness run` logs it to MLflow (before any profile; the dropout scaling named: the network's own)
        "recipe": recipe_params(own_recipe(variant)),
        "reported": [asdict(r) for r in variant.reported],
        "deviations": list(variant.deviations),
    }


def list_json(variants: list[Variant]) -> str:
    return json.dumps([variant_record(v) for v in variants], indent=2)


def _mark(match: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[match]


def list_table(variants: list[Variant]) -> str:
    header = f"{'name':36} {'paper':6} {'params':>12} {'GMACs':>7} {'reported':>12} {'match':>5}  reported top-1"
    lines = [header, "-" * len(header)]
    for v in variants:
        m = measure(v)
        rep = f"{v.reported_params:,}" if v.reported_params else "-"
        top1 = "; ".join(
            f"{r.top1:g} {r.dataset} {r.split} {r.protocol}" + (f" x{r.ensemble}" if r.ensemble > 1 else "")
            for r in v.reported
            if r.top1 is not None
        )
        lines.append(
            f"{v.name:36} {v.paper:6} {m.params:>12,} {m.macs / 1e9:>7.3f} {rep:>12} {_mark(params_match(v, m)):>5}  "
            f"{top1 or '-'}"
        )
    return "\n".join(lines)


def architecture(model: nn.Module, size: int) -> list[tuple[str, str, str, int]]:
    """(name, module repr, output shape, params) for every leaf module, from one forward pass at `size`."""
    from variants.convnet import trace

    return [
        (t.name, repr(t.module), "x".join(str(d) for d in t.shape), sum(p.numel() for p in t.module.parameters()))
        for t in trace(model, size)
    ]


def show(variant: Variant) -> str:
    import torch

    from harness.config import own_recipe

    m = measure(variant)
    out = [f"{variant.name}: {variant.summary}", f"paper: {variant.paper} - {PAPERS[variant.paper]}"]
    if variant.ablation_of:
        out.append(f"ablation of: {variant.ablation_of}")
    out.append(
        f"parameters: {m.params:,} (reported: {variant.reported_params or '-'}; match: "
        f"{_mark(params_match(variant, m))}), forward GMACs at {variant.input_size} px: {m.macs / 1e9:.3f}"
    )
    out += ["", f"Architecture at {variant.input_size}x{variant.input_size} (output shape C x H x W):"]
    with torch.device("meta"):  # shapes only
        model = variant.build(variant.num_classes)
    for name, mod, shape, n in architecture(model, variant.input_size):
        out.append(f"  {name:24} {shape:>12} {n:>12,}  {mod}")
    out += ["", "Recipe:"]
    recipe = own_recipe(variant)  # the dropout scaling named: the network's own
    for f in fields(recipe):
        value = getattr(recipe, f.name)
        if f.name == "init":
            value = value.name + (
                f" (std {value.default_std}, bias {value.default_bias}; "
                + ", ".join(f"{o.layer}: std {o.std} bias {o.bias}" for o in value.overrides)
                + ")"
                if value.default_std is not None
                else " (PyTorch defaults)"
            )
        if f.name == "lr_table" and value is not None:
            value = f"{value.name} ({value.source}): " + "; ".join(
                f"{g.name} " + ", ".join(f"{lr:g} from epoch {e}" for e, lr in g.steps) for g in value.groups
            )
        out.append(f"  {f.name:20} {value}")
    out += ["", "Reported:"]
    for r in variant.reported or ():
        t1 = "-" if r.top1 is None else f"{r.top1:g}"
        t5 = "-" if r.top5 is None else f"{r.top5:g}"
        extra = (f" ensemble of {r.ensemble}" if r.ensemble > 1 else "") + (
            f" pretrained on {r.pretrained}" if r.pretrained else ""
        )
        out.append(
            f"  {r.dataset} {r.split} {r.protocol}: top-1 {t1} top-5 {t5} [{r.source}]{extra}"
            + (f" ({r.note})" if r.note else "")
        )
    if not variant.reported:
        out.append("  (none: this variant is compared through its claims against its base variant)")
    out += ["", "Deviations from the paper:"]
    out += [f"  - {d}" for d in variant.deviations] or ["  (none)"]
    out += [
        "",
        "Run it:",
        f"  python -m harness run {variant.name}                 # proxy profile (mnist5k)",
        f"  python -m harness run {variant.name} --data /path/to/imagenet   # paper profile",
    ]
    return "\n".join(out)

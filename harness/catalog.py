"""`harness list` and `harness show`: what the registry holds, with computed parameter counts and MACs."""

from __future__ import annotations

import json
from dataclasses import asdict, fields

import torch
import torch.nn as nn

from harness.report.types import Measured
from variants import PAPERS, Variant
from variants.convnet import count_macs


def measure(variant: Variant, num_classes: int = 1000) -> Measured:
    """Parameters, MACs and size, counted on the meta device (shapes only: no weights allocated or initialised)."""
    try:
        with torch.device("meta"):
            return _measure(variant, num_classes)
    except (NotImplementedError, RuntimeError):  # an op without a meta kernel: build it for real (~0.3 s)
        return _measure(variant, num_classes)


def _measure(variant: Variant, num_classes: int) -> Measured:
    model = variant.build(num_classes)
    params = sum(p.numel() for p in model.parameters())
    return Measured(params, count_macs(model, variant.input_size), params * 4 / 2**20)


def params_match(variant: Variant, m: Measured) -> bool | None:
    return None if variant.reported_params is None else m.params == variant.reported_params


def variant_record(variant: Variant) -> dict[str, object]:
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
    rows: list[tuple[str, str, str, int]] = []
    hooks = []
    for name, module in model.named_modules():
        if len(list(module.children())) == 0:
            def hook(mod: nn.Module, inp: object, out: torch.Tensor, name: str = name) -> None:
                n = sum(p.numel() for p in mod.parameters())
                rows.append((name, repr(mod), "x".join(str(d) for d in out.shape[1:]), n))
            hooks.append(module.register_forward_hook(hook))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return rows


def show(variant: Variant) -> str:
    m = measure(variant)
    out = [f"{variant.name}: {variant.summary}", f"paper: {variant.paper} - {PAPERS[variant.paper]}"]
    if variant.ablation_of:
        out.append(f"ablation of: {variant.ablation_of}")
    out.append(
        f"parameters: {m.params:,} (reported: {variant.reported_params or '-'}; match: "
        f"{_mark(params_match(variant, m))}), forward GMACs at {variant.input_size} px: {m.macs / 1e9:.3f}"
    )
    out += ["", f"Architecture at {variant.input_size}x{variant.input_size} (output shape C x H x W):"]
    for name, mod, shape, n in architecture(variant.build(1000), variant.input_size):
        out.append(f"  {name:24} {shape:>12} {n:>12,}  {mod}")
    out += ["", "Recipe:"]
    recipe = variant.recipe
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
        out.append(f"  {f.name:20} {value}")
    out += ["", "Reported:"]
    for r in variant.reported or ():
        t1 = "-" if r.top1 is None else f"{r.top1:g}"
        t5 = "-" if r.top5 is None else f"{r.top5:g}"
        extra = (f" ensemble of {r.ensemble}" if r.ensemble > 1 else "") + (
            f" pretrained on {r.pretrained}" if r.pretrained else ""
        )
        out.append(f"  {r.dataset} {r.split} {r.protocol}: top-1 {t1} top-5 {t5} [{r.source}]{extra}"
                   + (f" ({r.note})" if r.note else ""))
    if not variant.reported:
        out.append("  (none: this variant is compared through its claims against its base variant)")
    out += ["", "Deviations from the paper:"]
    out += [f"  - {d}" for d in variant.deviations] or ["  (none)"]
    out += ["", "Run it:", f"  python -m harness run {variant.name}                 # proxy profile (mnist5k)",
            f"  python -m harness run {variant.name} --data /path/to/imagenet   # paper profile"]
    return "\n".join(out)

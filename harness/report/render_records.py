"""The report's record of what was run: figures, every deviation from the papers (variants, profiles, tuned runs)
and the list of runs. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from harness.report import fmt
from harness.report.runs import data_label, proxy_groups
from harness.report.types import ReportInputs, RunRow

KERNELS = (
    "conv1 filters of one trained run per variant (lowest seed), each filter scaled to its own range; "
    "two-tower nets show one grid per tower."
)


def section_figures(inputs: ReportInputs) -> list[str]:
    f = inputs.figures
    out = ["## Figures", ""]
    if f.reproduced_vs_reported:
        out += [
            "### Reproduced versus reported",
            "",
            f"![reproduced versus reported top-1]({f.reproduced_vs_reported})",
            "",
        ]
    proxies = {d for d, _ in proxy_groups(inputs.rows, inputs.variants)}
    for data, split in sorted(f.val_top1):
        label = data_label(data, split, data in proxies)
        out += [
            f"### Validation top-1 per epoch, {label}",
            "",
            f"![validation top-1, {label}]({f.val_top1[data, split]})",
            "",
        ]
        curves = sorted((v, p) for (d, s, v), p in f.curves.items() if (d, s) == (data, split))
        if curves:
            out += [
                "Per variant (validation top-1 and training loss): " + ", ".join(f"[{v}]({p})" for v, p in curves),
                "",
            ]
    if f.kernels:
        out += ["### First-layer kernels", "", KERNELS, ""]
        for (data, split, variant), paths in sorted(f.kernels.items()):
            label = data_label(data, split, data in proxies)
            images = " ".join(
                f"![{variant} conv1{f' tower {i}' if len(paths) > 1 else ''}]({p})" for i, p in enumerate(paths, 1)
            )
            out += [f"`{variant}`, {label}:", "", images, ""]
    if len(out) == 2:
        out += ["No figures: no run has a training history or checkpoint.", ""]
    return out


TUNED = (
    "Runs whose recipe was changed (`--set`, flags, `--from-sweep`) and sweep trials. Shown as tuned, never "
    "as reproductions."
)


def section_deviations(inputs: ReportInputs, rows: Sequence[RunRow]) -> list[str]:
    out = [
        "## Deviations",
        "",
        "### Variants",
        "",
        "Every recorded difference from the papers, with the variants it applies to.",
        "",
    ]
    applies: dict[str, list[str]] = {}
    for v in inputs.variants:
        for d in v.deviations:
            applies.setdefault(d, []).append(v.name)
    papers: dict[str, list[str]] = {}
    for v in inputs.variants:
        papers.setdefault(v.paper, []).append(v.name)
    for d, names in applies.items():
        out.append(f"- {d} ({_who(names, papers, len(inputs.variants))})")
    out += ["", "### Profiles", ""]
    if not inputs.profile_deviations:
        out.append("No run names a profile.")
    for profile, devs in sorted(inputs.profile_deviations.items()):
        if devs is None:
            out.append(f"- `{profile}`: its runs logged no `config.json` with `profile_deviations`.")
        elif not devs:
            out.append(f"- `{profile}`: none (the papers' recipes as recorded).")
        else:
            out.append(f"- `{profile}`:")
            out += [f"  - {d}" for d in devs]
    out += ["", "### Tuned runs", "", TUNED, ""]
    tuned = [r for r in rows if r.recipe_modified or r.kind == "trial"]
    if not tuned:
        return out + ["None.", ""]
    out += fmt.table(
        ["run", "kind", "variant", "data set, split", "modified", "sweep", "status", "top-1"],
        (
            [
                f"`{fmt.short_id(r.run_id)}`",
                r.kind,
                f"`{r.variant}`",
                f"{r.data} {r.split}",
                r.modified_keys or fmt.DASH,
                r.tuned_from or r.sweep or fmt.DASH,
                r.status,
                fmt.num(r.final_top1),
            ]
            for r in tuned
        ),
    )
    return out + [""]


def _who(names: list[str], papers: dict[str, list[str]], total: int) -> str:
    if len(names) == total:
        return "all variants"
    for paper, members in sorted(papers.items()):
        if names == members and len(names) > 1:
            return f"all {len(names)} {paper} variants"
    return ", ".join(f"`{n}`" for n in names)


def section_runs(rows: Sequence[RunRow], ui_url: str | None = None) -> list[str]:
    out = ["## Runs", ""]
    if ui_url:
        out += [f"Each run id opens the run in the MLflow UI at {ui_url} (start it with `python -m harness ui`).", ""]
    out += fmt.table(
        [
            "run id",
            "experiment",
            "kind",
            "variant",
            "data set, split",
            "protocol",
            "seed",
            "status",
            "top-1",
            "top-5",
            "recipe",
        ],
        (
            [
                fmt.run_link(r.run_id, r.experiment_id, ui_url),
                r.experiment,
                r.kind,
                f"`{r.variant}`",
                f"{r.data} {r.split}",
                fmt.protocol(r.protocol),
                fmt.DASH if r.seed is None else str(r.seed),
                r.status,
                fmt.num(r.final_top1),
                fmt.num(r.final_top5),
                "modified" if r.recipe_modified else "paper",
            ]
            for r in rows
        ),
    )
    return out

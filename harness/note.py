"""A run's description (MLflow's `mlflow.note.content`, the UI's Description): what the variant is, which paper, on
which data, and every way the run differs from the paper. Pure: same inputs, same markdown."""

from __future__ import annotations

from harness.config import RunConfig
from variants import PAPERS, Variant


def run_note(variant: Variant, cfg: RunConfig, data: str, split: str) -> str:
    """Markdown for one variant run: summary, paper, data, recipe status, deviations (the variant's own, the
    profile's, the user's changes, non-fp32 arithmetic)."""
    lines = [
        f"**{variant.name}**: {variant.summary}",
        "",
        f"- Paper: {variant.paper}, {PAPERS[variant.paper]}",
        f"- Data: {data} (evaluated on {split}, protocol {cfg.recipe.test_protocol}); profile `{cfg.profile}`"
        + (" (a proxy: not the paper's data)" if cfg.profile != "paper" else ""),
        f"- Seed {cfg.seed}, {cfg.recipe.epochs} epochs, global batch {cfg.recipe.batch_size}",
    ]
    if variant.ablation_of:
        lines.append(f"- Ablation of `{variant.ablation_of}`")
    if cfg.tuned_from:
        lines.append(f"- Recipe tuned by sweep `{cfg.tuned_from}`")
    devs = [f"implementation: {d}" for d in variant.deviations]
    devs += [f"profile `{cfg.profile}`: {d}" for d in cfg.profile_deviations]
    if cfg.modified_keys:
        devs.append("recipe changed by the user: " + ", ".join(f"`{k}`" for k in cfg.modified_keys))
    if cfg.precision != "fp32":
        devs.append(f"arithmetic: {cfg.precision} (the papers trained in fp32)")
    lines += ["", "**Deviations from the paper**" + (":" if devs else ": none recorded.")]
    lines += [f"- {d}" for d in devs]
    status = "modified (not a reproduction)" if cfg.recipe_modified else "the paper's, as recorded"
    lines += ["", f"Recipe: {status}."]
    return "\n".join(lines)


def batch_note(title: str, profile: str, data: str, labels: list[str]) -> str:
    """Markdown for a batch's run: what it trained and where the comparison lives."""
    return "\n".join(
        [
            f"**{title}** on {data}, profile `{profile}`"
            + (" (a proxy: not the paper's data)" if profile != "paper" else "")
            + f": {len(labels)} runs ({', '.join(labels)}).",
            "",
            "The variant runs are this run's siblings in the runs table (tag `harness.batch` names this run), so that "
            "the table and the chart view compare them without expanding a row; `runs_*` count them by status. "
            "The report is in this run's artifacts, under `report/`.",
        ]
    )

"""Number and label formatting shared by the report's notes and tables (one spelling everywhere)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote

from harness import schema
from harness.report.types import Stat

PROTOCOL_LABEL = {"center": "center crop", "ten_crop": "10-crop", "five_crop": "5-crop (no mirrors)"}
DASH = "-"


def num(x: float | None, digits: int = 2) -> str:
    return DASH if x is None else f"{x:.{digits}f}"


def signed(x: float | None, digits: int = 2) -> str:
    return DASH if x is None else f"{x:+.{digits}f}"


def reported(x: float | None) -> str:
    return DASH if x is None else f"{x:g}"


def stat(s: Stat | None) -> str:
    """`59.31 ± 0.42 (n=3)`; a single seed has no spread: `59.31 (n=1)`."""
    if s is None:
        return DASH
    spread = "" if s.std is None else f" ± {s.std:.2f}"
    return f"{s.mean:.2f}{spread} (n={s.n})"


def protocol(p: str) -> str:
    return PROTOCOL_LABEL.get(p, p or "unknown protocol")


def short_id(run_id: str) -> str:
    return run_id[:8]


def run_link(run_id: str, experiment_id: str, ui_url: str | None) -> str:
    """A run id, as a link to its page in the MLflow UI when the UI's address and the run's experiment are known."""
    if not ui_url or not experiment_id:
        return f"`{run_id}`"
    page = schema.UI_RUN_PAGE.format(ui=ui_url.rstrip("/"), experiment_id=experiment_id, run_id=run_id)
    return f"[`{run_id}`]({page})"


def compare_url(run_ids: Sequence[str], experiment_ids: Sequence[str], ui_url: str) -> str:
    """MLflow's compare-runs page of these runs (schema.UI_COMPARE_PAGE); the JSON arrays percent-encoded so that the
    URL is one markdown link destination."""

    def arr(xs: Sequence[str]) -> str:
        return quote(json.dumps(list(xs), separators=(",", ":")), safe="")

    return schema.UI_COMPARE_PAGE.format(ui=ui_url.rstrip("/"), runs=arr(run_ids), experiments=arr(experiment_ids))


def compare_link(run_ids: Sequence[str], experiment_of: Mapping[str, str], ui_url: str | None) -> str:
    """` ([compare N runs](url))` after a verdict: MLflow's compare view of exactly `run_ids`; empty without runs, a
    UI address or the runs' experiments."""
    experiments = list(dict.fromkeys(experiment_of.get(i, "") for i in run_ids))
    if not run_ids or not ui_url or "" in experiments:
        return ""
    return f" ([compare {len(run_ids)} runs]({compare_url(run_ids, experiments, ui_url)}))"


def run_ids(ids: tuple[str, ...] | list[str], limit: int = 8) -> str:
    if not ids:
        return DASH
    shown = ", ".join(f"`{short_id(i)}`" for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def cell(text: str) -> str:
    """Markdown table cells cannot hold `|` or newlines."""
    return text.replace("|", "\\|").replace("\n", " ")


def join(*parts: str) -> str:
    """Notes joined with "; ", the empty ones left out."""
    return "; ".join(p for p in parts if p)


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A markdown table: the header, its rule, one line per row (cells escaped)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines

"""One run as MLflow's columns (`Record`: run_id, status, tags.X, params.X, metrics.X, as `mlflow.search_runs`' frame
has them) to a typed report row. No MLflow: `harness.report.read` fetches the records, this reads them."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

from harness import schema
from harness.report.types import History, Qualitative, RetrievalStat, RunRow

Record = dict[str, object]  # one run as mlflow.search_runs' pandas columns: run_id, status, tags.X, params.X, metrics.X


def get(rec: Record, column: str) -> object | None:
    value = rec.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def get_str(rec: Record, column: str) -> str | None:
    value = get(rec, column)
    return None if value is None else str(value)


def get_float(rec: Record, column: str) -> float | None:
    value = get(rec, column)
    return None if value is None else float(value)  # type: ignore[arg-type]


def get_int(rec: Record, column: str) -> int | None:
    value = get(rec, column)
    try:
        return None if value is None else int(float(value))  # type: ignore[arg-type]
    except ValueError:
        return None


def latest(points: Iterable[tuple[int, int, float]]) -> History:
    """(epoch, value) per epoch from (step, timestamp, value) in logging order (MLflow's: timestamp, step, value); a
    resumed run that logged an epoch twice keeps the latest value."""
    last: dict[int, tuple[int, float]] = {}
    for step, ts, value in points:
        if step not in last or ts >= last[step][0]:
            last[step] = (ts, value)
    return tuple((step, value) for step, (_, value) in sorted(last.items()))


def qual_table(path: Path | None) -> dict[str, float]:
    """schema.ART_QUAL_TABLE (columns metric, value) as {key: value}; empty when absent or unreadable."""
    if path is None:
        return {}
    try:
        table = json.loads(path.read_text())
        cols = table["columns"]
        return {str(r[cols.index("metric")]): float(r[cols.index("value")]) for r in table["data"]}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return {}


def qualitative(metric) -> Qualitative | None:
    """The run's qual.* numbers (harness.schema) as typed data; None when it has none. `metric` looks a key up in
    the run's qualitative table (schema.ART_QUAL_TABLE), else in its metrics (runs analysed before the table)."""
    if all(metric(k) is None for k in (schema.QUAL_SECONDS, *schema.QUAL_HEADLINE)):
        return None
    towers = metric(schema.QUAL_COLOUR_TOWERS)
    means = [metric(schema.QUAL_COLOUR_TOWER.format(tower=t)) for t in range(1, int(towers or 1) + 1)]
    bits = metric(schema.QUAL_CODE_BITS)
    return Qualitative(
        towers=None if towers is None else int(towers),
        colour_mean=metric(schema.QUAL_COLOUR_MEAN),
        tower_means=tuple(m for m in means if m is not None) if towers and towers > 1 else (),
        retrieval=tuple(
            RetrievalStat(
                rep,
                *(metric(schema.QUAL_PRECISION.format(rep=rep, k=k)) for k in schema.QUAL_KS),
                metric(schema.QUAL_QUERY_MS.format(rep=rep)),
            )
            for rep in schema.QUAL_REPS
        ),
        code_bits=None if bits is None else int(bits),
        shift_top1=tuple(
            (s, v) for s in schema.QUAL_SHIFT_STEPS if (v := metric(schema.QUAL_SHIFT_TOP1.format(step=s))) is not None
        ),
        seconds=metric(schema.QUAL_SECONDS),
    )


def to_row(
    rec: Record, experiment: str, curves: dict[str, History] | None = None, qual: dict[str, float] | None = None
) -> RunRow:
    """One run as a report row; `curves` maps "val_top1", "train_loss" and "train_err" to the run's histories (none
    given: the row has no curves); `qual` is its qualitative table (`qual_tables`), read before its metrics."""

    def tag(name: str) -> str | None:
        return get_str(rec, f"tags.{name}")

    def metric(name: str) -> float | None:
        return get_float(rec, f"metrics.{name}")

    curves = curves or {}
    run_id = str(rec["run_id"])
    kind = tag(schema.TAG_KIND) or "variant"
    return RunRow(
        run_id=run_id,
        experiment=experiment,
        experiment_id=str(rec.get("experiment_id") or ""),
        kind=kind,
        variant=tag(schema.TAG_VARIANT) or "",
        paper=tag(schema.TAG_PAPER) or "",
        profile=tag(schema.TAG_PROFILE) or get_str(rec, "params.profile") or "",
        dataset=tag(schema.TAG_DATASET) or "",
        dataset_name=tag(schema.TAG_DATASET_NAME),
        split=tag(schema.TAG_SPLIT) or "",
        protocol=tag(schema.TAG_PROTOCOL) or "",
        seed=get_int(rec, "params.seed"),
        epochs=get_int(rec, "params.epochs"),
        status=str(rec.get("status") or "UNKNOWN"),
        recipe_modified=(tag(schema.TAG_RECIPE_MODIFIED) or "false").lower() == "true",
        modified_keys=tag(schema.TAG_MODIFIED_KEYS) or "",
        tuned_from=tag(schema.TAG_TUNED_FROM),
        sweep=tag(schema.TAG_SWEEP),
        pretrained=tag(schema.TAG_PRETRAINED),
        num_classes=get_int(rec, "params.num_classes"),
        final_top1=metric(schema.FINAL_TOP1),
        final_top5=metric(schema.FINAL_TOP5),
        center_top1=metric(schema.PROTOCOL_METRIC.format(protocol="center", k="top1")),
        center_top5=metric(schema.PROTOCOL_METRIC.format(protocol="center", k="top5")),
        ten_crop_top1=metric(schema.PROTOCOL_METRIC.format(protocol="ten_crop", k="top1")),
        ten_crop_top5=metric(schema.PROTOCOL_METRIC.format(protocol="ten_crop", k="top5")),
        five_crop_top1=metric(schema.PROTOCOL_METRIC.format(protocol="five_crop", k="top1")),
        five_crop_top5=metric(schema.PROTOCOL_METRIC.format(protocol="five_crop", k="top5")),
        learned=metric(schema.LEARNED),
        val_top1=curves.get("val_top1", ()),
        train_loss=curves.get("train_loss", ()),
        train_top1=curves.get("train_top1", ()),
        train_err=curves.get(schema.TRAIN_ERR, ()),
        qualitative=qualitative(lambda k: (qual or {}).get(k, metric(k))),
        parallel=get_str(rec, "params.parallel") or "none",
        world_size=get_int(rec, "params.world_size"),
        batch_size=get_int(rec, "params.batch_size"),
        effective_lr=get_float(rec, "params.effective_lr"),
        images_per_sec=metric("images_per_sec"),
        step_seconds=metric("step_seconds"),
        comm_bytes_per_step=metric("comm_bytes_per_step"),
        hours=_hours(rec),
    )


def _hours(rec: Record) -> float | None:
    start, end = rec.get("start_time"), rec.get("end_time")
    if start is None or end is None:
        return None  # a run still going (or killed without an end)
    return (int(end) - int(start)) / 1000 / 3600  # type: ignore[call-overload]

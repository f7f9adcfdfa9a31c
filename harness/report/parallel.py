"""The report's "Parallel schemes" section (harness.parallel): pure rules on fixed inputs, then its markdown.

Per variant, scheme and world size: images/s, seconds per step and bytes one rank sent per step (the last epoch of
each finished multi-process run, mean over runs), beside plain DDP's at the same variant and world size. For OWT14's
net, the batch-scaling table: final top-1 and wall-clock hours against ranks and global batch (lr scaled linearly
with the batch, OWT14 s5: `effective_lr`), beside the variant's reported rows that name their GPUs and batch size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import mean

from harness.report import fmt
from harness.report.types import RunRow
from variants import Reported, Variant

SCALING_VARIANT = "alexnet2014"  # OWT14's one-tower net: the scheme whose scaling OWT14 Table 1 measures
INTRO = (
    "Multi-process runs (torchrun) by scheme: `none` is plain DDP, `towers` KSH12's two towers (2 ranks per replica), "
    "`hybrid` OWT14's data-parallel convolutions with model-parallel fc6/fc7. Images/s and seconds per step are the "
    "last epoch's; bytes per step are what one rank sends per optimiser step, counted from the tensor shapes as a ring "
    "algorithm sends them (DDP: one all-reduce of every gradient), not measured on the wire. Numbers from different "
    "machines or devices do not compare."
)
SCALING_INTRO = (
    "Batch scaling of OWT14's net (any scheme): final top-1 and wall-clock hours (training and evaluation) against "
    "ranks and global batch; lr is the recipe's scaled linearly with the batch (OWT14 s5), as logged. Reported rows "
    "are the variant's rows that name their GPUs and batch size. OWT14 Table 1's own rows are not among them: they "
    "are not yet checked into the reference facts."
)


@dataclass(frozen=True)
class SchemeRow:
    variant: str
    parallel: str
    world_size: int
    runs: int
    images_per_sec: float | None
    step_seconds: float | None
    comm_bytes_per_step: float | None
    ddp_bytes_per_step: float | None  # plain DDP's at the same variant and world size, where such runs exist

    @property
    def bytes_vs_ddp(self) -> float | None:
        if self.comm_bytes_per_step is None or not self.ddp_bytes_per_step:
            return None
        return self.comm_bytes_per_step / self.ddp_bytes_per_step


@dataclass(frozen=True)
class ScalingRow:
    world_size: int
    batch_size: int
    parallel: str
    lr: float | None
    top1: float | None
    hours: float | None
    runs: int


def _mean(values: Iterable[float | None]) -> float | None:
    vs = [v for v in values if v is not None]
    return mean(vs) if vs else None


def multi_process(rows: Iterable[RunRow]) -> list[RunRow]:
    """Finished variant runs on more than one rank."""
    return [r for r in rows if r.kind == "variant" and r.finished and (r.world_size or 1) > 1]


def scheme_rows(rows: Iterable[RunRow]) -> list[SchemeRow]:
    runs = multi_process(rows)
    keys = sorted({(r.variant, r.parallel, r.world_size or 1) for r in runs})
    by_key = {k: [r for r in runs if (r.variant, r.parallel, r.world_size or 1) == k] for k in keys}
    out = []
    for variant, scheme, world in keys:
        mine = by_key[variant, scheme, world]
        ddp = by_key.get((variant, "none", world), [])
        out.append(
            SchemeRow(
                variant,
                scheme,
                world,
                len(mine),
                _mean(r.images_per_sec for r in mine),
                _mean(r.step_seconds for r in mine),
                _mean(r.comm_bytes_per_step for r in mine),
                _mean(r.comm_bytes_per_step for r in ddp),
            )
        )
    return out


def scaling_rows(rows: Iterable[RunRow], variant: str = SCALING_VARIANT) -> list[ScalingRow]:
    """Finished runs of `variant` (one rank or many) by ranks, global batch and scheme."""
    runs = [r for r in rows if r.kind == "variant" and r.finished and r.variant == variant and r.batch_size]
    keys = sorted({(r.world_size or 1, r.batch_size or 0, r.parallel) for r in runs})
    out = []
    for world, batch, scheme in keys:
        mine = [r for r in runs if (r.world_size or 1, r.batch_size, r.parallel) == (world, batch, scheme)]
        out.append(
            ScalingRow(
                world,
                batch,
                scheme,
                _mean(r.effective_lr for r in mine),
                _mean(r.final_top1 for r in mine),
                _mean(r.hours for r in mine),
                len(mine),
            )
        )
    return out


def scaling_reported(variants: Sequence[Variant], variant: str = SCALING_VARIANT) -> list[Reported]:
    """The variant's reported rows that say on how many GPUs and at what batch they were trained."""
    v = next((x for x in variants if x.name == variant), None)
    return [r for r in (v.reported if v else ()) if r.gpus is not None and r.batch_size is not None]


def _mib(x: float | None) -> str:
    return fmt.DASH if x is None else f"{x / 2**20:.2f}"


def _table(header: Sequence[str], body: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(fmt.cell(c) for c in row) + " |" for row in body]


def section(rows: Sequence[RunRow], variants: Sequence[Variant]) -> list[str]:
    """The section's markdown lines from its heading (numbered by `render`); none when no run used more than one
    rank."""
    schemes = scheme_rows(rows)
    if not schemes:
        return []
    out = ["## Parallel schemes", "", INTRO, ""]
    out += _table(
        ("variant", "scheme", "ranks", "runs", "images/s", "s/step", "MiB/step/rank", "DDP MiB/step", "vs DDP"),
        (
            (
                s.variant,
                s.parallel,
                str(s.world_size),
                str(s.runs),
                fmt.num(s.images_per_sec, 1),
                fmt.num(s.step_seconds, 3),
                _mib(s.comm_bytes_per_step),
                _mib(s.ddp_bytes_per_step),
                fmt.DASH if s.bytes_vs_ddp is None else f"{s.bytes_vs_ddp:.3f}x",
            )
            for s in schemes
        ),
    )
    scaling = scaling_rows(rows)
    if scaling:
        out += ["", f"### Batch scaling ({SCALING_VARIANT}, OWT14 Table 1's axes)", "", SCALING_INTRO, ""]
        body = [
            (
                str(s.world_size),
                str(s.batch_size),
                s.parallel,
                fmt.num(s.lr, 4),
                fmt.num(s.top1),
                fmt.num(s.hours, 3),
                str(s.runs),
                "this store",
            )  # fmt: skip
            for s in scaling
        ]
        body += [
            (
                str(r.gpus),
                str(r.batch_size),
                fmt.DASH,
                fmt.DASH,
                fmt.reported(r.top1),
                fmt.reported(r.train_hours),
                fmt.DASH,
                f"{r.source} ({fmt.protocol(r.protocol)}, {r.dataset} {r.split})",
            )  # fmt: skip
            for r in scaling_reported(variants)
        ]
        out += _table(("GPUs / ranks", "batch", "scheme", "lr", "top-1", "hours", "runs", "source"), body)
    return out + [""]

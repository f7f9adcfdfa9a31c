"""The report's "Parallel schemes" section (harness.report.parallel) on fixed inputs."""

from __future__ import annotations

from harness.report import parallel
from harness.report.types import RunRow
from variants import get_variant


def _row(run_id: str, variant: str, scheme: str, world: int, **kw) -> RunRow:
    return RunRow(run_id, "exp", "variant", variant, parallel=scheme, world_size=world, **kw)


ROWS = (
    _row("a1", "alexnet2014", "none", 2, images_per_sec=10.0, step_seconds=1.0, comm_bytes_per_step=2**20 * 200,
         batch_size=256, effective_lr=0.02, final_top1=50.0, hours=2.0),
    _row("a2", "alexnet2014", "none", 2, images_per_sec=14.0, step_seconds=0.8, comm_bytes_per_step=2**20 * 200,
         batch_size=256, effective_lr=0.02, final_top1=52.0, hours=1.0),
    _row("h1", "alexnet2014", "hybrid", 2, images_per_sec=20.0, step_seconds=0.5, comm_bytes_per_step=2**20 * 20,
         batch_size=256, effective_lr=0.02, final_top1=51.0, hours=1.0),
    _row("t1", "alexnet2012", "towers", 2, images_per_sec=8.0, step_seconds=2.0, comm_bytes_per_step=2**20),
    _row("one", "alexnet2014", "none", 1, batch_size=128, effective_lr=0.01, final_top1=49.0, hours=3.0),
    _row("dead", "alexnet2014", "hybrid", 4, status="FAILED", comm_bytes_per_step=1.0),
)  # fmt: skip


def test_scheme_rows_average_runs_and_set_each_scheme_beside_ddp_at_the_same_world_size():
    rows = {(s.variant, s.parallel, s.world_size): s for s in parallel.scheme_rows(ROWS)}
    assert set(rows) == {("alexnet2014", "none", 2), ("alexnet2014", "hybrid", 2), ("alexnet2012", "towers", 2)}
    ddp, hybrid, towers = (
        rows["alexnet2014", "none", 2],
        rows["alexnet2014", "hybrid", 2],
        rows["alexnet2012", "towers", 2],
    )
    assert ddp.runs == 2 and ddp.images_per_sec == 12.0 and ddp.step_seconds == 0.9
    assert hybrid.bytes_vs_ddp == 0.1
    assert towers.ddp_bytes_per_step is None and towers.bytes_vs_ddp is None  # no DDP run of alexnet2012 here


def test_scaling_rows_group_the_owt14_net_by_ranks_batch_and_scheme():
    got = [(s.world_size, s.batch_size, s.parallel, s.lr, s.top1, s.hours, s.runs) for s in parallel.scaling_rows(ROWS)]
    assert got == [
        (1, 128, "none", 0.01, 49.0, 3.0, 1),
        (2, 256, "hybrid", 0.02, 51.0, 1.0, 1),
        (2, 256, "none", 0.02, 51.0, 1.5, 2),
    ]


def test_the_section_renders_both_tables_with_the_variants_reported_rows():
    lines = parallel.section(ROWS, (get_variant("alexnet2014"),))
    text = "\n".join(lines)
    assert lines[0] == "## Parallel schemes"  # numbered by render, by position
    assert "| alexnet2014 | hybrid | 2 | 1 | 20.0 | 0.500 | 20.00 | 200.00 | 0.100x |" in text
    assert "| 2 | 256 | hybrid | 0.0200 | 51.00 | 1.000 | 1 | this store |" in text
    # the CC2 wiki's reference run names 1 GPU and batch 128: it stands beside the store's rows
    assert "| 1 | 128 | - | - | 57.45 | - | - | CC2 wiki TrainingExample.md (center crop, ILSVRC-2012 val) |" in text


def test_no_section_without_multi_process_runs():
    assert parallel.section([r for r in ROWS if r.world_size == 1], ()) == []

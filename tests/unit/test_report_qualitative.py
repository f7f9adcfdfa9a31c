"""The report's qualitative section (harness.report.qual rules, render) on fixed rows; then analyze end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import schema
from harness.report import qual
from harness.report.records import qualitative
from harness.report.render import render
from harness.report.types import FigurePaths, Qualitative, ReportInputs, RetrievalStat, RunRow
from variants import claims, list_variants


def table_of(client, run_id: str) -> dict[str, float]:
    """A run's qualitative table (schema.ART_QUAL_TABLE), pandas' split JSON layout."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # the download is removed, not left in the temporary folder
        t = json.loads(Path(client.download_artifacts(run_id, schema.ART_QUAL_TABLE, tmp)).read_text())
    assert t["columns"] == ["metric", "value"]
    return {k: v for k, v in t["data"]}


def analysed(variant: str, seed: int, towers: tuple[float, ...] = (), **kw: object) -> RunRow:
    q = Qualitative(
        towers=max(1, len(towers)),
        colour_mean=sum(towers) / len(towers) if towers else 0.5,
        tower_means=towers,
        retrieval=(
            RetrievalStat("fc7", 0.9, 0.85, 0.8, 0.2),
            RetrievalStat("fc7_code", 0.7, 0.65, 0.6, 0.05),
            RetrievalStat("pixel_code", 0.2, 0.2, 0.2, 0.05),
            RetrievalStat("pixels", 0.3, 0.25, 0.2, 1.5),
        ),
        code_bits=64,
        shift_top1=tuple((s, 90.0 - 5 * abs(s)) for s in schema.QUAL_SHIFT_STEPS),
        seconds=12.0,
    )
    return RunRow(
        run_id=f"q-{variant}-{seed}".ljust(32, "0"),
        experiment="mnist-clutter-proxy",
        kind="variant",
        variant=variant,
        profile="proxy",
        dataset="mnist-clutter",
        dataset_name="mnist-clutter",
        split="val",
        seed=seed,
        qualitative=q,
        **kw,  # type: ignore[arg-type]
    )


def test_towers_specialised_in_every_seed_hold_whichever_tower_is_grey() -> None:
    rows = [analysed("alexnet2012", 0, (0.1, 0.6)), analysed("alexnet2012", 1, (0.55, 0.2)),
            analysed("alexnet2012", 2, (0.3, 0.7))]  # fmt: skip
    (v,) = qual.tower_verdicts(rows)
    assert (v.verdict, v.n_specialised, [s.greyer for s in v.seeds]) == ("holds", 3, [1, 2, 1])


@pytest.mark.parametrize(
    ("means", "expected"),
    [
        ([(0.1, 0.6), (0.1, 0.6)], "inconclusive"),  # two seeds
        ([(0.6, 0.62), (0.5, 0.6), (0.66, 0.64)], "does not hold"),  # no tower near grey
        ([(0.1, 0.6), (0.5, 0.6), (0.1, 0.2)], "mixed"),  # the last: both grey, too close
    ],
)
def test_tower_verdict_rules(means: list[tuple[float, float]], expected: str) -> None:
    rows = [analysed("alexnet2012", s, m) for s, m in enumerate(means)]
    assert qual.tower_verdicts(rows)[0].verdict == expected


def test_towers_at_the_random_kernel_index_are_flagged_as_untrained() -> None:
    rows = [analysed("alexnet2012", s, (0.65, 0.64)) for s in range(3)]
    (v,) = qual.tower_verdicts(rows)
    assert v.verdict == "does not hold" and v.near_random
    inputs = ReportInputs("t", "s", ("e",), tuple(rows), tuple(list_variants()), tuple(claims()))
    assert "conv1 has barely moved from its initialisation" in render(inputs)
    assert not qual.tower_verdicts([analysed("alexnet2012", s, (0.1, 0.6)) for s in range(3)])[0].near_random


def test_one_tower_nets_unfinished_and_modified_runs_give_no_tower_verdict() -> None:
    rows = [
        analysed("zfnet", 0),
        analysed("alexnet2012", 0, (0.1, 0.6), status="RUNNING"),
        analysed("alexnet2012", 1, (0.1, 0.6), recipe_modified=True),
    ]
    assert qual.tower_verdicts(rows) == []
    assert [r.variant for r in qual.analysed(rows)] == ["zfnet"]


def test_read_turns_qual_metrics_into_typed_rows() -> None:
    metrics = {
        schema.QUAL_SECONDS: 3.0,
        schema.QUAL_COLOUR_TOWERS: 2.0,
        schema.QUAL_COLOUR_MEAN: 0.4,
        schema.QUAL_COLOUR_TOWER.format(tower=1): 0.1,
        schema.QUAL_COLOUR_TOWER.format(tower=2): 0.7,
        schema.QUAL_PRECISION.format(rep="fc7", k=5): 0.8,
        schema.QUAL_QUERY_MS.format(rep="pixels"): 2.0,
        schema.QUAL_SHIFT_TOP1.format(step=-4): 50.0,
    }
    q = qualitative(metrics.get)
    assert q is not None and (q.towers, q.tower_means, q.shift_top1) == (2, (0.1, 0.7), ((-4, 50.0),))
    assert q.stat("fc7") == RetrievalStat("fc7", None, 0.8, None, None)
    assert q.stat("pixels").query_ms == 2.0  # type: ignore[union-attr]
    assert qualitative({}.get) is None


def _log_analysed(client, exp: str, table: dict[str, float] | None, metrics: dict[str, float]) -> str:
    """A finished analysed run as the harness logs it: `metrics` as run metrics, `table` (if any) as the table."""
    from harness.analysis.record import qual_table

    tags = {schema.TAG_KIND: "variant", schema.TAG_VARIANT: "alexnet2012", schema.TAG_DATASET: "mnist-clutter"}
    tags |= {schema.TAG_DATASET_NAME: "mnist-clutter", schema.TAG_SPLIT: "val", schema.TAG_PROFILE: "proxy"}
    rid = client.create_run(exp, tags=tags).info.run_id
    client.log_param(rid, "seed", "0")
    for k, v in metrics.items():
        client.log_metric(rid, k, v, step=0)
    if table is not None:
        client.log_text(rid, qual_table(table), schema.ART_QUAL_TABLE)
    client.set_terminated(rid, "FINISHED")
    return rid


FULL = {
    schema.QUAL_SECONDS: 3.0,
    schema.QUAL_COLOUR_TOWERS: 2.0,
    schema.QUAL_COLOUR_MEAN: 0.4,
    schema.QUAL_COLOUR_TOWER.format(tower=1): 0.1,
    schema.QUAL_COLOUR_TOWER.format(tower=2): 0.7,
    **{schema.QUAL_PRECISION.format(rep=r, k=k): 0.5 + k / 100 for r in schema.QUAL_REPS for k in schema.QUAL_KS},
    **{schema.QUAL_QUERY_MS.format(rep=r): 2.0 for r in schema.QUAL_REPS},
    schema.QUAL_CODE_BITS: 64.0,
    **{schema.QUAL_SHIFT_TOP1.format(step=s): 90.0 - abs(s) for s in schema.QUAL_SHIFT_STEPS},
}


def test_read_takes_the_qual_table_of_new_runs_and_the_metrics_of_runs_analysed_before_it(uri: str) -> None:
    """A store holding both layouts: every qual.* number as a metric (before the table), and the table with the
    headline metrics (now). Both read into the same Qualitative."""
    from mlflow import MlflowClient

    from harness.report.read import read_runs

    client = MlflowClient(uri)
    exp = client.create_experiment("q")
    old = _log_analysed(client, exp, None, FULL)
    new = _log_analysed(client, exp, FULL, {k: FULL[k] for k in schema.QUAL_HEADLINE})
    plain = _log_analysed(client, exp, None, {})  # not analysed
    got = {r.run_id: r.qualitative for r in read_runs(uri, None)}
    assert got[old] is not None and got[old] == got[new] == qualitative(FULL.get)
    assert got[new].towers == 2 and got[new].tower_means == (0.1, 0.7) and len(got[new].shift_top1) == 9
    assert got[plain] is None
    # a new run whose table is lost still counts as analysed, with its headline numbers
    lost = _log_analysed(client, exp, None, {k: FULL[k] for k in schema.QUAL_HEADLINE})
    q = {r.run_id: r.qualitative for r in read_runs(uri, None)}[lost]
    assert (
        q is not None
        and q.colour_mean == 0.4
        and q.stat("fc7").p10 == FULL[schema.QUAL_PRECISION.format(rep="fc7", k=10)]
    )


def test_render_shows_the_verdict_tables_and_relative_figure_links() -> None:
    rows = (*(analysed("alexnet2012", s, (0.1, 0.6)) for s in range(3)), analysed("zfnet", 0))
    figs = FigurePaths(
        qualitative={("mnist-clutter", "val", "zfnet"): (("colour.png", "r_figures/qual_x__zfnet__colour.png"),)}
    )
    inputs = ReportInputs("t", "s", ("e",), rows, tuple(list_variants()), tuple(claims()), figures=figs)
    md = render(inputs)
    assert md == render(inputs)
    section = md.split("## 8. Qualitative evaluation")[1].split("## 9. Deviations")[0]
    assert "`alexnet2012`, mnist-clutter val: **holds** (3 of 3 seeds specialised)" in section
    assert "fc7 retrieves more same-class neighbours than raw pixels (precision@10) in 4 of 4 runs" in section
    assert "| `zfnet` | mnist-clutter val | 0 | 0.900 | 0.850 | 0.800 | 0.300 | 0.250 | 0.200 |" in section
    assert "| `zfnet` | 0 | 64 | 0.800 / 0.200 | 0.600 / 0.050 | 0.200 / 0.050 | 0.200 / 1.500 |" in section
    assert "| 70.0 | 75.0 | 80.0 | 85.0 | 90.0 | 85.0 |" in section
    assert "![zfnet conv1 by colour index](r_figures/qual_x__zfnet__colour.png)" in section


def test_render_without_analysed_runs_says_how_to_add_them() -> None:
    inputs = ReportInputs("t", "s", ("e",), (analysed("zfnet", 0, status="FAILED"),), (), ())
    assert "No analysed runs: `python -m harness analyze RUN_ID`" in render(inputs)


@pytest.mark.slow
def test_analyze_logs_every_key_and_figure_to_a_smoke_run_and_the_report_shows_them(
    uri: str, harness_main, runs, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    code, _, err = harness_main(
        ["run", "alexnet2012", "--profile", "smoke", "--keep-weights", "--tracking-uri", uri, "--no-report"]
    )
    assert code == 0, err
    (run,) = runs(uri)
    assert not any(k.startswith("qual.") for k in run.data.metrics)  # smoke: qualitative = "none"
    code, out, err = harness_main(["analyze", "--variant", "alexnet2012", "--tracking-uri", uri])
    assert code == 0, err
    assert f"run {run.info.run_id}:" in out
    client = MlflowClient(uri)
    metrics = client.get_run(run.info.run_id).data.metrics
    assert {k for k in metrics if k.startswith("qual.")} == set(schema.QUAL_HEADLINE)  # the chart view's few
    got = table_of(client, run.info.run_id)
    assert {k: got[k] for k in schema.QUAL_HEADLINE} == {k: metrics[k] for k in schema.QUAL_HEADLINE}
    keys = {schema.QUAL_SECONDS, schema.QUAL_COLOUR_TOWERS, schema.QUAL_COLOUR_MEAN, schema.QUAL_CODE_BITS}
    keys |= {schema.QUAL_COLOUR_TOWER.format(tower=t) for t in (1, 2)}
    keys |= {schema.QUAL_PRECISION.format(rep=p, k=k) for p in schema.QUAL_REPS for k in schema.QUAL_KS}
    keys |= {schema.QUAL_QUERY_MS.format(rep=p) for p in schema.QUAL_REPS}
    keys |= {schema.QUAL_SHIFT_TOP1.format(step=s) for s in schema.QUAL_SHIFT_STEPS}
    assert keys == set(got)
    assert got[schema.QUAL_COLOUR_TOWERS] == 2 and 0 <= got[schema.QUAL_COLOUR_TOWER.format(tower=1)] <= 1
    assert all(0 <= got[schema.QUAL_PRECISION.format(rep=p, k=k)] <= 1 for p in schema.QUAL_REPS for k in (1, 5))
    arts = {a.path for a in client.list_artifacts(run.info.run_id, schema.ART_QUAL)}
    assert arts == {f"{schema.ART_QUAL}/{n}" for n in schema.QUAL_FIGURES} | {
        schema.ART_QUAL_SUMMARY,
        schema.ART_QUAL_TABLE,
    }
    timed = {schema.QUAL_SECONDS} | {schema.QUAL_QUERY_MS.format(rep=p) for p in schema.QUAL_REPS}
    first = {k: v for k, v in got.items() if k not in timed}
    code, _, err = harness_main(["analyze", run.info.run_id, "--tracking-uri", uri])  # deterministic on the CPU
    again = table_of(client, run.info.run_id)
    assert code == 0 and first == {k: again[k] for k in first}, err
    report = tmp_path / "rep" / "r.md"
    code, _, err = harness_main(["report", "--tracking-uri", uri, "--out", str(report)])
    assert code == 0, err
    md = report.read_text()
    assert "## 8. Qualitative evaluation" in md and "**inconclusive** (" in md  # one seed
    for name in schema.QUAL_FIGURES:
        link = f"r_figures/qual_synthetic-val__alexnet2012__{name}"
        assert f"]({link})" in md and (report.parent / link).is_file()
    code, _, err = harness_main(["analyze", "nosuchrun", "--tracking-uri", uri])
    assert code != 0 and err.startswith("harness: error: no run 'nosuchrun'") and "Traceback" not in err


def test_the_proxy_analyses_the_base_variants_first_three_seeds_and_nothing_else() -> None:
    from harness.profiles import wants_qualitative

    assert wants_qualitative("proxy", "alexnet2012", 2) and wants_qualitative("proxy", "torchvision_alexnet", 0)
    assert not wants_qualitative("proxy", "alexnet2012", 3)  # run --all trains seeds 0-5: the verdict needs 3
    assert not wants_qualitative("proxy", "alexnet2012_no_lrn", 0)
    assert not wants_qualitative("smoke", "alexnet2012", 0) and not wants_qualitative("paper", "alexnet2012", 0)


@pytest.mark.slow
def test_a_proxy_run_of_a_base_variant_ends_with_its_qualitative_evaluation(uri: str, harness_main, runs) -> None:
    argv = ["run", "alexnet2014", "--limit-train", "64", "--limit-val", "40", "--epochs", "1", "--tracking-uri", uri]
    code, _, err = harness_main([*argv, "--no-report"])
    assert code == 0, err
    (run,) = runs(uri)
    assert run.info.status == "FINISHED" and "qualitative evaluation in" in err
    from mlflow import MlflowClient

    table = table_of(MlflowClient(uri), run.info.run_id)
    assert table[schema.QUAL_COLOUR_TOWERS] == 1  # alexnet2014: one tower
    assert schema.QUAL_COLOUR_TOWER.format(tower=1) not in table
    assert 0 <= run.data.metrics[schema.QUAL_PRECISION.format(rep="fc7", k=10)] <= 1

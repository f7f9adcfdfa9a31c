"""What a small batch records in MLflow, by name: the param, metric and tag keys and the artifact paths of its variant
runs and of its batch run, against `golden/mlflow_keys.json`. Values that vary between runs (ids, times, numbers)
are not compared, nor MLflow's system metrics. A change here is a change to what every reader of the store
(`harness.report.read`, `eval --run-id`, `analyze`, the UI) finds; regenerate the file with
`HARNESS_UPDATE_GOLDEN=1` only when that change is meant.

In this process: two variants on the smoke profile, one epoch, a quarter of their width, their weights kept and
registered, and the qualitative evaluation on (as the proxy's base runs have it), so that every step of finishing a
run (final evaluation, weights, model registry, figures, analyses) records what it records."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from harness import profiles, schema

GOLDEN = Path(__file__).parent / "golden" / "mlflow_keys.json"
VARIANTS = ("torchvision_alexnet", "zfnet")


def _artifacts(c: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    out = []
    for a in c.list_artifacts(run_id, path):
        out += _artifacts(c, run_id, a.path) if a.is_dir else [a.path]
    return out


def _keys(c: MlflowClient, run) -> dict[str, list[str]]:
    return {
        "params": sorted(run.data.params),
        "metrics": sorted(k for k in run.data.metrics if not k.startswith("system/")),
        "tags": sorted(run.data.tags),
        "artifacts": sorted(_artifacts(c, run.info.run_id)),
    }


@pytest.mark.slow
def test_a_small_batch_records_the_same_keys(tmp_path, uri, runs, harness_main, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(profiles.PROFILES["smoke"], qualitative="all"))
    code, _, err = harness_main(
        [
            "run",
            *VARIANTS,
            "--profile",
            "smoke",
            "--epochs",
            "1",
            "--set",
            "width=0.25",
            "--limit-train",
            "64",
            "--limit-val",
            "32",
            "--keep-weights",
            "--register",
            "--no-system-metrics",
            "--device",
            "cpu",
            "--tracking-uri",
            uri,
            "--no-report",
        ]
    )
    assert code == 0, err[-3000:]
    c = MlflowClient(uri)
    got: dict[str, object] = {f"variant {r.data.tags[schema.TAG_VARIANT]}": _keys(c, r) for r in runs(uri)}
    (batch,) = runs(uri, kind="batch")
    got["batch"] = _keys(c, batch)
    got["registered_models"] = sorted(m.name for m in c.search_registered_models())
    if os.environ.get("HARNESS_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(GOLDEN.read_text())

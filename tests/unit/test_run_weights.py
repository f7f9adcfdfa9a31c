"""Which copies of its final weights a run keeps: checkpoint/final.pt unless the profile (smoke) or --no-keep-weights
says none; the MLflow model (pt2) only for a registered run. In process, on real SQLite stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from harness import schema
from harness.profiles import PROFILES

RUN = ["run", "ksh12_fig1_relu", "--profile", "smoke", "--epochs", "1", "--device", "cpu", "--no-report"]


def _files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("flags", "final_pt", "model"),
    [((), False, False), (("--keep-weights",), True, False), (("--register",), True, True)],
)
def test_a_smoke_run_keeps_the_weights_asked_for(tmp_path: Path, harness_main, flags, final_pt, model) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, _, err = harness_main([*RUN, *flags, "--tracking-uri", uri])
    assert code == 0, err[-2000:]
    c = MlflowClient(uri)
    [exp] = [e for e in c.search_experiments() if e.name == "synthetic-smoke"]
    [run] = c.search_runs([exp.experiment_id])
    arts = {a.path for a in c.list_artifacts(run.info.run_id, "checkpoint")}
    assert (schema.ART_CHECKPOINT in arts) is final_pt
    assert bool(c.search_logged_models([exp.experiment_id])) is model
    files = _files(tmp_path)
    assert ("final.pt" in files) is final_pt and ("model.pt2" in files) is model
    assert schema.ART_PREDICTIONS.rpartition("/")[2] in files and schema.FINAL_TOP1 in run.data.metrics


def test_the_smoke_profile_alone_keeps_no_weights() -> None:
    assert {n: p.keep_weights for n, p in PROFILES.items()} == {"paper": True, "proxy": True, "smoke": False}

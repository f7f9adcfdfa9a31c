"""`tracking.load_artifact`: a run's artifact downloaded into a temporary folder that is gone once it is loaded
(`eval --run-id` and `analyze` left a copy of every checkpoint they read in the temporary folder)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from harness import tracking
from harness.errors import HarnessError


def test_an_artifact_is_loaded_and_its_download_removed(uri: str, tmp_path: Path, monkeypatch) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where the download goes, to look at after
    (tmp_path / "final.pt").write_bytes(b"weights")
    c = MlflowClient(uri)  # not mlflow's fluent API: its active experiment is global, left by earlier tests
    run = c.create_run(tracking.experiment_id(uri, "artifacts"))
    c.log_artifact(run.info.run_id, str(tmp_path / "final.pt"), "checkpoint")
    seen: list[Path] = []

    def load(p: Path) -> bytes:
        seen.append(p)
        return p.read_bytes()

    assert tracking.load_artifact(uri, run.info.run_id, "checkpoint/final.pt", load) == b"weights"
    assert seen and seen[0].is_relative_to(temp) and not seen[0].exists()
    assert list(temp.iterdir()) == []  # nothing left behind
    with pytest.raises(HarnessError, match=r"has no artifact checkpoint/missing.pt"):
        tracking.load_artifact(uri, run.info.run_id, "checkpoint/missing.pt", load)
    assert list(temp.iterdir()) == []

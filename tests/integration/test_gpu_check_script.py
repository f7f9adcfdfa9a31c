"""scripts/gpu-check.sh, the script a lent GPU machine runs, run here in its QUICK mode on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import bench
from tests.support import ROOT


@pytest.mark.slow
def test_gpu_check_script_runs_quick_on_the_cpu_and_writes_its_files(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "gpu-check.sh"
    # PYTHON: this interpreter, whatever `python3` is on PATH (the script's default)
    env = {**os.environ, "QUICK": "1", "OUT": str(tmp_path / "out"), "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {
        "env.txt", "bench-fp32.json", "bench.txt", "decode.json", "run.log", "mlflow.db", "summary.txt",
    }  # fmt: skip
    result = bench.read_json(out / "bench-fp32.json")
    assert [r.what for r in result.rows][:2] == ["bare loop", "harness step"] and result.header.size == 64
    assert "alexnet2014" in (out / "run.log").read_text() and "finished" in (out / "run.log").read_text()
    decode = {r["what"]: r for r in json.loads((out / "decode.json").read_text())["rows"]}
    assert decode["torchvision.io decode_jpeg on cpu"]["images_per_sec"] > 0
    assert decode["bare step, torchvision_alexnet fp32"]["images_per_sec"] > 0
    summary = (out / "summary.txt").read_text()
    assert "failed steps: none" in summary and "harness step" in summary
    assert "torchvision's recipe from JPEGs" in summary and "torchvision.io decode_jpeg on cpu" in summary
    assert "target:\n  the target's row (alexnet2014 224 px, harness step, store) was not measured" in summary

"""The command line as a real process: what only a fresh interpreter shows (imports at start-up) and the exit codes
and one-line errors that `python -m harness` itself gives (the unit tier calls `harness.cli.main` in process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import env, harness_process, one_line_error


def test_help_loads_no_torch_mlflow_or_optuna() -> None:
    code = (
        "import sys, contextlib, io\nfrom harness import cli\nwith contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        cli.main(['--help'])\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('torch', 'mlflow', 'optuna', 'numpy') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env())
    assert r.stdout.strip() == "[]"


def test_list_with_its_counts_cached_loads_no_torch(tmp_path) -> None:
    """`harness list` prints the registry (torch-free data, `variants.spec`) with cached counts: no torch, MLflow or
    Optuna once the counts are cached (the first `list` counts them on the meta device, with torch)."""
    cache = env(XDG_CACHE_HOME=str(tmp_path))
    first = harness_process("list", env_=cache, timeout=300)
    assert first.returncode == 0, first.stderr
    code = (
        "import sys, contextlib, io\nfrom harness import cli\nout = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n    cli.main(['list'])\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'mlflow', 'optuna') if m in sys.modules))\n"
        "print(out.getvalue(), end='')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=cache)
    loaded, _, table = r.stdout.partition("\n")
    assert loaded == "[]" and table == first.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "alexnet2013"], "alexnet2012"),  # a HarnessError (unknown variant): one line, exit 2
        (["run", "zfnet", "--seeds", "x"], "argument --seeds: 'x' is not an integer"),  # an argparse error
    ],
    ids=["harness-error", "argparse-error"],
)
def test_python_m_harness_exits_2_with_one_line(tmp_path, args: list[str], needle: str) -> None:
    r = harness_process(*args, "--tracking-uri", f"sqlite:///{tmp_path}/m.db", cwd=tmp_path, timeout=300)
    one_line_error(r.returncode, r.stderr, needle)
    assert r.stdout == "" and not (tmp_path / "m.db").exists()

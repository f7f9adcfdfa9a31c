"""Bad input to the newer commands, in this process: one line and a non-zero exit, nothing created or recorded.

- every option that takes a number is range-checked when it is parsed (argparse's one line, exit 2), so that
  `run --workers -3` or `--gpus-per-node -1` never create a run, and `--port 99999` never reaches uvicorn;
- `ui` / `server` on a port another socket holds, or an address that is not this machine's, refuse before MLflow
  starts (a bound socket of this test's);
- `report --out` where nothing can be written (/proc, a file as the folder) is one line;
- commands that only read a store (`eval --model` / `--run-id`, `analyze`, `report`, `ui`) never create one;
- a `--weights` file of random bytes, an empty one, a truncated one or one that asks to unpickle code is "not a
  checkpoint" in one line, and the code never runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import socket
from pathlib import Path

import pytest
import torch

from harness import checkpoint, cli
from harness.errors import HarnessError
from tests.support import store_uri


def parse_error(argv: list[str]) -> str:
    """The line argparse prints for a bad option; it exits 2 (SystemExit) before any handler runs."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    return err.getvalue()


def number_options() -> list[tuple[str, str]]:
    """(subcommand, flag) of every option whose value is converted by a type function (all of them numbers)."""
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [
        (name, action.option_strings[-1])
        for name, p in sub.choices.items()
        for action in p._actions
        if action.option_strings and action.type not in (None, str, Path)
    ]


def test_no_option_takes_a_bare_int() -> None:
    """A bare `type=int` accepts -3 and 10**30: every integer option goes through a range-checking type."""
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    bare = [(n, a.option_strings) for n, p in sub.choices.items() for a in p._actions if a.type in (int, float)]
    assert bare == []
    assert len(number_options()) >= 25  # run alone has --workers, --epochs, --jobs, --nodes, --gpus-per-node, ...


@pytest.mark.parametrize(("command", "flag"), number_options())
def test_a_negative_number_is_refused_when_parsed(command: str, flag: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    line = parse_error([command, flag, "-3"])
    assert line.startswith(f"harness {command}: error: argument {flag}: must be ") and line.count("\n") == 1, line
    assert "got -3" in line and list(tmp_path.iterdir()) == []  # no store, no run, no folder


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--workers", "-3"], "argument --workers: must be 0 or a positive integer, got -3"),
        (["run", "--gpus-per-node", "-1"], "argument --gpus-per-node: must be 0 or a positive integer, got -1"),
        (["run", "--jobs", "0"], "argument --jobs: must be a positive integer, got 0"),
        (["run", "--epochs", "two"], "argument --epochs: 'two' is not an integer"),
        (["run", "--seed", str(2**64)], f"argument --seed: must be in 0..{2**63 - 1}, got {2**64}"),
        (["run", "--dist-timeout", "inf"], "argument --dist-timeout: must be a positive finite number, got inf"),
        (["sweep", "x", "--timeout", "nan"], "argument --timeout: must be a positive finite number, got nan"),
        (["sweep", "x", "--trials", "-1"], "argument --trials: must be a positive integer, got -1"),
        (["ui", "--port", "99999"], "argument --port: must be a TCP port in 1..65535, got 99999"),
        (["ui", "--port", "-1"], "argument --port: must be a TCP port in 1..65535, got -1"),
        (["server", "--port", "0"], "argument --port: must be a TCP port in 1..65535, got 0"),
        (["bench", "--images", "-5"], "argument --images: must be 0 or a positive integer, got -5"),
    ],
)
def test_counts_ports_and_seeds_name_the_flag(argv: list[str], needle: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    command = argv[0]
    assert parse_error(argv) == f"harness {command}: error: {needle} (see `harness {command} -h`)\n"
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- ports


@pytest.fixture()
def held_port():
    """A port this test listens on: busy for anyone else."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_ui_and_server_refuse_a_busy_port_before_mlflow_starts(harness_main, held_port: int, tmp_path: Path) -> None:
    uri = store_uri(tmp_path)
    db = tmp_path / "mlruns" / "mlflow.db"
    db.parent.mkdir()
    db.touch()  # an empty SQLite file: a store `ui` accepts
    busy = (
        f"harness: error: port {held_port} on 127.0.0.1 is in use (another server?): stop it or choose another --port\n"
    )
    assert harness_main(["ui", "--port", str(held_port), "--tracking-uri", uri]) == (2, "", busy)
    assert harness_main(["server", "--port", str(held_port), "--tracking-uri", uri]) == (2, "", busy)
    assert sorted(p.name for p in db.parent.iterdir()) == ["mlflow.db"]  # no artifacts folder: nothing started


def test_server_refuses_an_address_that_is_not_this_machines(harness_main, tmp_path: Path) -> None:
    uri = store_uri(tmp_path)
    code, out, err = harness_main(["server", "--host", "192.0.2.1", "--tracking-uri", uri])  # TEST-NET-1 (RFC 5737)
    assert (code, out) == (2, "")
    assert err == "harness: error: cannot listen on --host 192.0.2.1: not an address of this machine\n"
    code, _, err = harness_main(["server", "--host", "no-such-host.invalid", "--tracking-uri", uri])  # RFC 2606
    assert code == 2 and err.startswith("harness: error: cannot listen on --host no-such-host.invalid: ")
    assert err.count("\n") == 1


def test_served_is_never_zero() -> None:
    """`serve` returns only when `mlflow server` stopped by itself: MLflow's 0 (uvicorn failed to bind) is not
    success for a command that should run until stopped."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert cli.served(0) == 1 and cli.served(3) == 3 and cli.served(-9) == 1
    assert err.getvalue().count("harness: error: the MLflow server stopped by itself") == 3


# ---------------------------------------------------------------- report --out


@pytest.mark.parametrize(
    ("out", "needle"),
    [
        ("/proc/rep.md", "cannot write the report /proc/rep.md: "),
        ("/proc/x/rep.md", "cannot create the report folder /proc/x: "),
        ("{tmp}/afile/rep.md", "cannot create the report folder {tmp}/afile: "),
    ],
)
def test_an_unwritable_report_out_is_one_line(harness_main, tmp_path: Path, out: str, needle: str) -> None:
    (tmp_path / "afile").write_text("a file where the folder would go")
    uri = store_uri(tmp_path)
    code, stdout, err = harness_main(["report", "--out", out.format(tmp=tmp_path), "--tracking-uri", uri])
    assert (code, stdout) == (2, "") and err.startswith(f"harness: error: {needle.format(tmp=tmp_path)}"), err
    assert err.count("\n") == 1 and not (tmp_path / "mlruns").exists()  # refused before the store is opened


def test_a_report_out_beside_which_no_figures_folder_can_be_made(tmp_path: Path) -> None:
    """The figures go in <stem>_figures/ beside the report: tried for real before anything is read."""
    from harness.report.build import check_out

    (tmp_path / "rep_figures").write_text("a file in the way")
    with pytest.raises(HarnessError, match="a file of that name is in the way"):
        check_out(tmp_path / "rep.md")
    check_out(tmp_path / "other.md")  # a folder that can be written: nothing left behind by the check
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep_figures"]


# ---------------------------------------------------------------- read-only commands never create a store


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "alexnet2014", "--model", "models:/alexnet2014/1"],
        ["eval", "alexnet2014", "--run-id", "0123456789abcdef"],
        ["analyze", "0123456789abcdef"],
        ["report"],
        ["ui"],
    ],
)
def test_read_only_commands_never_create_a_store(harness_main, tmp_path: Path, argv: list[str], monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    uri = store_uri(tmp_path)
    code, _, err = harness_main([*argv, "--tracking-uri", uri])
    assert code == 2 and err.count("\n") == 1 and "no MLflow store at" in err, err
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()


# ---------------------------------------------------------------- --weights that are not checkpoints


def write_payload(path: Path, marker: Path) -> None:
    """A torch.save whose unpickling would create `marker` (a __reduce__ calling Path.touch)."""

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"conv.weight": torch.ones(1), "x": Payload()}, path)


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("random", "is not a checkpoint (4096 bytes, neither torch.save's zip archive nor its legacy format)"),
        ("empty", "is not a checkpoint (an empty file)"),
        ("truncated", "is not a checkpoint (PytorchStreamReader failed reading zip archive"),
        ("payload", "is not a weights-only checkpoint (it holds objects other than tensors and plain types"),
    ],
)
def test_a_weights_file_that_is_not_a_checkpoint(harness_main, tmp_path: Path, kind: str, needle: str) -> None:
    path, marker = tmp_path / f"{kind}.pt", tmp_path / "payload-ran"
    if kind == "random":
        path.write_bytes(random.Random(0).randbytes(4096))  # starts cd 07 2c d8: neither PK nor a pickle
    elif kind == "empty":
        path.touch()
    else:
        write_payload(path, marker)
        if kind == "truncated":
            path.write_bytes(path.read_bytes()[:200])
    code, out, err = harness_main(["eval", "zfnet", "--weights", str(path), "--profile", "smoke"])
    assert (code, out) == (2, "") and err.startswith(f"harness: error: cannot load weights: {path} {needle}"), err
    assert err.count("\n") == 1 and not marker.exists()
    with pytest.raises(HarnessError, match=r"^cannot load checkpoint .*: not a"):
        checkpoint.load(path)  # a training checkpoint: the same reasons (an empty one was an IndexError)
    assert checkpoint.check_training(path, "any").startswith("not a")

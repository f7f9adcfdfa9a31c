"""The command line: every subcommand's parser and handler, and bad input turned into one line + exit 2.

Control flow of the main job: `run` -> `runner.run_variants(RunRequest)` -> engine.fit / evaluate -> tracking ->
the outcomes come back here -> `report.build.generate_report`. Each handler imports what it needs when it runs, so
`python -m harness --help` loads no torch, MLflow or Optuna.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import typing
from dataclasses import fields
from pathlib import Path

from harness import schema, spaces, store
from harness.errors import HarnessError
from harness.request import (
    PARALLELS,
    PRECISIONS,
    PROFILE_NAMES,
    PRUNERS,
    DataRequest,
    EvalRequest,
    RunRequest,
    SweepRequest,
)

R = typing.TypeVar("R", bound=DataRequest)

# --- argument types and shared option groups ------------------------------------------------------------------------


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive_int(text: str) -> int:
    value = _int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {value}")
    return value


def int_range(lo: int, hi: int, what: str = "") -> typing.Callable[[str], int]:
    """An argparse type: an integer in lo..hi (`what` names the unit in the message)."""

    def parse(text: str) -> int:
        value = _int(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be {what + ' ' if what else ''}in {lo}..{hi}, got {value}")
        return value

    parse.__name__ = f"integer in {lo}..{hi}"  # argparse names the type in "invalid ... value" messages
    return parse


tcp_port = int_range(1, 65535, "a TCP port")
seed_int = int_range(0, 2**63 - 1)  # torch.manual_seed takes 64 bits; harness.loader.epoch_seed works mod 2**63 - 1


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def add_data_options(p: argparse.ArgumentParser) -> None:
    """The fields of `DataRequest`: data, profile, device, store."""
    p.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        help="paper (default with --data), proxy (default without: mnist5k), smoke (synthetic, seconds)",
    )
    p.add_argument("--data", help="data folder: ImageNet-style train/ and val/ (or a CIFAR-10 folder)")
    p.add_argument("--dataset", help="imagefolder, mnist5k, cifar10 or synthetic (default from profile/--data)")
    p.add_argument("--dataset-name", help="what the data is, for the report, e.g. ILSVRC-2012 or ILSVRC-2010")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    add_store_option(p)
    p.add_argument(
        "--workers",
        type=non_negative_int,
        help="DataLoader worker processes (default: 0 for data in memory, else this process's CPUs - 1, at most 8)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32 (the papers', default), tf32 or bf16 (autocast); anything but fp32 is a recorded deviation",
    )
    p.add_argument("--limit-train", type=positive_int, help="use only the first N training images (a slice)")
    p.add_argument("--limit-val", type=positive_int, help="use only the first N validation images (a slice)")


def add_store_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlruns/mlflow.db)"
    )


def add_recipe_options(p: argparse.ArgumentParser, *, batch_size: bool = True) -> None:
    """Changes to the recipe: --epochs, --batch-size, --seed, --set."""
    p.add_argument("--epochs", type=positive_int, help="epochs (default: the profile's or the recipe's)")
    if batch_size:
        p.add_argument("--batch-size", type=positive_int, help="global batch size (all ranks together)")
    p.add_argument("--seed", type=seed_int, help="training seed (default 0)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a recipe field, e.g. --set lr=0.005 (marks the run recipe_modified)",
    )


def request(cls: type[R], args: argparse.Namespace, **extra: object) -> R:
    """The one place arguments become a request: every field of `cls` that the parser defines, plus `extra`."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    if isinstance(values.get("names"), list):
        values["names"] = tuple(values["names"])
    if values.get("seed") is None:
        values.pop("seed", None)  # the request's default (0): `--seed` not given
    if "sets" in values:
        from harness.config import parse_set

        values["sets"] = parse_set(list(values["sets"]))
    return cls(**(values | extra))


# --- list, show -----------------------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from harness import catalog
    from variants import list_variants

    print(catalog.list_json(list_variants()) if args.json else catalog.list_table(list_variants()))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from harness import catalog
    from variants import UnknownVariantError, get_variant

    try:
        variant = get_variant(args.name)
    except UnknownVariantError as e:
        raise HarnessError(str(e)) from None
    print(catalog.show(variant))
    return 0


# --- run, eval ------------------------------------------------------------------------------------------------------


def run_seeds(args: argparse.Namespace) -> int | None:
    """`--seeds N`: N seeds from 0; `--seed S`: that one seed; neither: None (the plan decides)."""
    if args.seeds is not None and args.seed is not None:
        raise HarnessError("give either --seed S (one seed) or --seeds N (seeds 0..N-1), not both")
    return args.seeds if args.seeds is not None else (1 if args.seed is not None else None)


def cmd_run(args: argparse.Namespace) -> int:
    from harness import runner

    req = request(RunRequest, args, seeds=run_seeds(args))
    if problem := store.shared_sqlite_problem(req.uri, os.environ):
        raise HarnessError(problem)
    if args.plan:
        print(runner.describe_plan(req))
        return 0
    if args.from_sweep:
        from harness.sweep import best_params

        if len(req.names) != 1 or req.all:
            raise HarnessError("--from-sweep runs one variant: name the variant the sweep tuned")
        best = best_params(args.from_sweep, req.uri, variant=req.names[0], storage_url=args.sweep_storage)
        req = request(RunRequest, args, sets={**best, **req.sets}, tuned_from=args.from_sweep, seeds=req.seeds)
    if args.launcher and (args.jobs or args.gpus):
        raise HarnessError("give --launcher (submitit jobs) or --jobs/--gpus (processes on this node), not both")
    if args.launcher:
        from harness import launch

        res = launch.Resources(
            args.partition,
            args.time,
            args.nodes,
            args.gpus_per_node,
            args.cpus_per_task,
            args.array_parallelism,
        )
        result = launch.run_launched(req, args.launcher, res)
    elif args.jobs or args.gpus:
        from harness import pool

        result = pool.run_pool(req, child_options(args), args.jobs, args.gpus)
    else:
        result = runner.run_variants(req)
    if args.outcomes_json and result.is_main:  # a `--jobs` worker: the pool prints the one summary
        from harness import pool

        pool.write_outcomes(Path(args.outcomes_json), result.outcomes)
    if not result.is_main:
        return 0  # rank 0 reports the outcomes: a non-zero exit here would make torchrun stop rank 0 mid-report
    print(runner.summary(result))
    code = 1 if result.failed else 0
    if not args.no_report:
        out = Path("reports") / f"{result.experiment}.md"
        code = max(code, write_report(result.uri, [result.experiment], out, args.ui_url, result.parent, result.exp_id))
    return code


# what a `--jobs` worker does not repeat: it runs one (variant, seed), reports to the pool, writes no report
NOT_FORWARDED = frozenset(
    {"help", "names", "all", "seed", "seeds", "seed_offset", "max_seeds", "plan", "no_report", "jobs", "gpus"}
    | {"parent_run_id"}
    | {"outcomes_json"}
    | {"trials", "worker_index", "study_name"}  # a sweep worker's: set by the parent sweep
)


def child_options(args: argparse.Namespace) -> list[str]:
    """The `run` (or `sweep`) options given (not left at their defaults), as a worker's command line repeats them;
    the store as the resolved URI, so that every worker writes to the parent's."""
    out: list[str] = []
    for action in args.run_parser._actions:
        if not action.option_strings or action.dest in NOT_FORWARDED | {"tracking_uri"}:
            continue
        value = getattr(args, action.dest, None)
        flag = action.option_strings[-1]
        if value is None or value is False or (value == action.default and not isinstance(value, list)):
            continue
        if value is True:
            out.append(flag)
        elif isinstance(value, list):
            out += [part for v in value for part in (flag, str(v))]
        else:
            out += [flag, str(value)]
    return out + ["--tracking-uri", store.resolve(args.tracking_uri)]


def cmd_eval(args: argparse.Namespace) -> int:
    from harness import runner

    if (args.model or args.run_id) and (problem := store.missing(store.resolve(args.tracking_uri))):
        raise HarnessError(problem)  # reading a run or a model never creates a store
    outcome = runner.evaluate_weights(request(EvalRequest, args))
    if outcome.is_main:
        print(outcome.line())
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from harness import tracking
    from harness.analysis import record

    if bool(args.run_id) == bool(args.variant):
        raise HarnessError("give a RUN_ID or --variant NAME (its latest finished run), not both or neither")
    uri = store.resolve(args.tracking_uri)
    if problem := store.missing(uri):
        raise HarnessError(problem)
    run_id = args.run_id or tracking.latest_finished(uri, args.variant)
    summary = record.analyze_run(uri, run_id, device=args.device)
    print(f"run {run_id}: {len(summary.metrics)} qualitative metrics and {len(summary.artifacts)} artifacts logged "
          f"in {summary.seconds:.1f} s")  # fmt: skip
    return 0


# --- sweep ----------------------------------------------------------------------------------------------------------


def cmd_sweep(args: argparse.Namespace) -> int:
    from harness import sweep

    if problem := store.shared_sqlite_problem(store.resolve(args.tracking_uri), os.environ):
        raise HarnessError(problem)
    logging.getLogger("optuna.study._optimize").addFilter(_no_interrupt_traceback)
    req = request(SweepRequest, args, names=(args.name,))
    code = sweep.sweep_command(req, child_options(args))
    if args.report:  # the sweep's experiment's report, also logged to the sweep's run
        from harness import tracking

        mine = tracking.own_latest(req.uri, "sweep")
        if mine is not None:
            out = Path("reports") / f"{mine.experiment}.md"
            code = max(code, write_report(req.uri, [mine.experiment], out, args.ui_url, mine.run_id, mine.exp_id))
    return code


def _no_interrupt_traceback(record: logging.LogRecord) -> bool:
    """Optuna logs a trial stopped by Ctrl-C or SIGTERM with its traceback: keep the line, drop the traceback."""
    if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
        record.exc_info = None
        record.exc_text = None
    return True


# --- report, ui, pca ------------------------------------------------------------------------------------------------


def write_report(
    uri: str,
    experiments: list[str] | None,
    out: Path | None,
    ui_url: str | None = None,
    parent: str | None = None,
    exp_id: str = "",
) -> int:
    """The report of a run's experiment, and (with `parent`) its copy on the batch's parent run."""
    from harness import tracking
    from harness.report.build import generate_report

    try:
        path = generate_report(uri, experiments, out, ui_url=ui_url)
    except HarnessError as e:
        print(f"harness: report: {e}", file=sys.stderr)
        return 1
    print(f"Report: {path}")
    if parent:
        try:
            tracking.log_report(uri, parent, path)
        except Exception as e:  # noqa: BLE001 - the report is written; only its copy in MLflow is missing
            print(f"harness: report: not logged to the parent run {parent}: {e}", file=sys.stderr)
            return 1
        print(f"Report logged to the parent run: {tracking.ui_link(ui_url or store.ui_url(uri), exp_id, parent)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.build import generate_report

    print(generate_report(store.resolve(args.tracking_uri), args.experiments, args.out, ui_url=args.ui_url))
    return 0


def add_ui_url_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ui-url",
        help="the MLflow UI the report links runs to (default: `harness ui`'s http://127.0.0.1:5000 for a local "
        "store, the server itself for an http store)",
    )


def cmd_ui(args: argparse.Namespace) -> int:
    uri = store.resolve(args.tracking_uri)
    db = store.sqlite_path(uri)
    if db is None:
        raise HarnessError(f"{uri} is not a local SQLite store: open that server's own UI instead")
    if not db.is_file():
        raise HarnessError(f"no MLflow store at {db}: run `python -m harness run` first")
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--default-artifact-root",
        str(db.parent / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(args.port),
    ]
    if problem := store.port_problem("127.0.0.1", args.port):
        raise HarnessError(problem)
    url = f"http://127.0.0.1:{args.port}"
    print(
        f"MLflow UI on {url} (Ctrl-C to stop); its model-training view of the experiments: "
        f"{url}/#/experiments?{schema.UI_WORKFLOW}",
        flush=True,
    )
    return served(serve(cmd))


def cmd_server(args: argparse.Namespace) -> int:
    """A real `mlflow server` for many writers (issue 16: several nodes, job-array tasks, sweep workers): runs log
    to it over HTTP (`--tracking-uri http://HOST:PORT`) and it alone writes the backend store (SQLite by default, a
    database server's URI where the user has one) and the artifacts (`--serve-artifacts`: children upload through
    it, so no node needs the artifact folder mounted)."""
    backend = args.backend_store_uri or store.resolve(args.tracking_uri)
    db = store.sqlite_path(backend)
    if db is not None:
        problem = store.problem(backend)
        if problem:
            raise HarnessError(problem)
    artifacts = args.artifacts_destination or str((store.local_root(backend) / "artifacts").resolve())
    env = os.environ.copy()
    if args.admin_password_file and not args.auth:
        raise HarnessError("--admin-password-file is the admin's password of --auth: add --auth")
    if args.auth:
        from harness import auth

        env = auth.server_env(store.local_root(backend), env, args.admin_password_file)
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend]
    cmd += ["--serve-artifacts", "--artifacts-destination", artifacts, "--host", args.host, "--port", str(args.port)]
    if args.allowed_hosts:
        cmd += ["--allowed-hosts", args.allowed_hosts]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    if problem := store.port_problem(args.host, args.port):
        raise HarnessError(problem)
    if args.auth:
        cmd += ["--app-name", "basic-auth"]
        print(
            "basic auth: requests need a user and password (runs: MLFLOW_TRACKING_USERNAME/PASSWORD); users the "
            "admin creates read everything and change only what they create; configuration "
            f"{env['MLFLOW_AUTH_CONFIG_PATH']}",
            file=sys.stderr,
        )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            (
                f"harness: warning: the MLflow server listens on {args.host} over plain HTTP: passwords cross the "
                "network in clear text (put TLS in front of it)"
            )
            if args.auth
            else (
                f"harness: warning: the MLflow server listens on {args.host} without authentication: anyone who "
                "reaches that port can read, change and delete every run, model and artifact, and register a model "
                "that `eval --model` then loads (add --auth)"
            ),
            file=sys.stderr,
        )
    print(
        f"MLflow server on http://{args.host}:{args.port}: backend {backend}, artifacts {artifacts}\n"
        f"runs log to it with --tracking-uri http://{args.host}:{args.port} (Ctrl-C to stop)",
        flush=True,
    )
    return served(serve(cmd, env))


def served(code: int) -> int:
    """The exit status of `ui` and `server` once `mlflow server` has stopped by itself (not by Ctrl-C or SIGTERM,
    which `serve` turns into 130 / 143): a server that should have run until stopped, so never 0. MLflow exits 0
    when uvicorn fails to start (a port taken after `port_problem` checked it)."""
    why = f"exit status {code}" if code else "exit status 0: it failed to start or was stopped from outside"
    print(f"harness: error: the MLflow server stopped by itself ({why}); its log is above", file=sys.stderr)
    return code if code > 0 else 1


def serve(cmd: list[str], env: dict[str, str] | None = None) -> int:
    """Run `mlflow server` (`ui`, `server`) in its own process group (session) until it exits, or until Ctrl-C or
    SIGTERM stop it with its workers (then exit 130 / 143); killed outright, this process takes the group with it
    (`harness.lifeline`)."""
    from harness import lifeline

    server = lifeline.popen(cmd, env=os.environ.copy() if env is None else env)
    try:
        code = server.wait()
    except BaseException:  # Ctrl-C or SIGTERM (Terminated): stop the group, then re-raise
        stop_group(server)
        raise
    stop_group(server)  # workers the server left behind
    return code


def stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM to every process in `proc`'s group (it leads one: start_new_session), SIGKILL to what is left after
    `grace_s`; no-op once the group is gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            continue
        deadline = time.monotonic() + grace_s  # the leader is gone: wait for its workers to follow
        while time.monotonic() < deadline and _group_alive(proc.pid):
            time.sleep(0.1)
        if not _group_alive(proc.pid):
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def cmd_pca(args: argparse.Namespace) -> int:
    from harness.data import pca_command

    print(pca_command(Path(args.data)))
    return 0


# --- bench ----------------------------------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    from harness import bench

    spec = bench.BenchSpec(
        bench.names_or_default(args.names), args.size, args.batch_size, args.steps, args.precision, args.device,
        args.images, args.rounds,
    )  # fmt: skip
    print(bench.bench_command(spec, args.json, Path(args.jpegs) if args.jpegs else None))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from harness.prepare import prepare

    prepare(
        Path(args.data), Path(args.out), resize=args.resize, fmt=args.format, quality=args.quality, workers=args.workers
    )
    return 0


# --- the parser -----------------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line (`harness run: error: ...`) and exit status 2; `-h` still prints the usage."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} -h`)\n")


DESCRIPTION = """\
Reproduce the AlexNet family (KSH12's two-tower net, the 2014 one-tower net,
torchvision's AlexNet, ZFNet, the papers' ablations) with the papers' own recipes,
track every run in MLflow, and write a report that compares what was reproduced
with what the papers report.

main commands:
  harness run --all                 every variant on the embedded mnist-clutter
                                    proxy (CPU, no download), then the report
  harness prepare --data DIR --out STORE
                                    an ImageNet-style folder to 256x256 squares
  harness run NAME --data STORE --dataset-name ILSVRC-2012
                                    one variant on ImageNet, its paper's recipe
  harness report                    the markdown report under reports/
  harness ui                        MLflow's UI on this store

`harness list` names the variants, `harness COMMAND -h` gives a command's
options, and README.md has a quickstart for a GPU node."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list registered variants with computed and reported parameter counts")
    p.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="architecture, recipe, reported numbers and deviations of one variant")
    p.add_argument("name")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("run", help="train and evaluate variants with their recipes, tracked in MLflow")
    p.add_argument("names", nargs="*", help="variant names (see `harness list`)")
    p.add_argument("--all", action="store_true", help="every registered variant")
    add_data_options(p)
    add_recipe_options(p)
    p.add_argument("--checkpoint-dir", help="where per-epoch training checkpoints go (default: beside the store)")
    p.add_argument("--from-sweep", help="run the best trial of this sweep study (tagged as tuned)")
    p.add_argument("--sweep-storage", help="the --from-sweep study's storage, as `sweep --storage` took it")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument(
        "--seeds",
        type=positive_int,
        metavar="N",
        help="train seeds 0..N-1 of each variant (default: one seed; `--all` on the proxy and paper profiles "
        "follows the plan: `--plan` prints it)",
    )
    p.add_argument(
        "--seed-offset",
        type=non_negative_int,
        default=0,
        metavar="K",
        help="add K to every seed (the plan's, --seed's or --seeds'): `run --all --seed-offset 100` trains the same "
        "plan on seeds 100, 101, ..., an independent draw to check that the verdicts replicate",
    )
    p.add_argument(
        "--max-seeds",
        type=positive_int,
        default=15,
        metavar="N",
        help="`run --all` on the paper profile: train at most N seeds of any variant (default 15: 3 ensembles of "
        "KSH12's 5 CNNs); a claim that needs more says so in the plan",
    )
    p.add_argument("--plan", action="store_true", help="print the runs (variant, seeds, why) and train nothing")
    p.add_argument(
        "--wait",
        action="store_true",
        help="a configuration another process is training: wait for it to finish (default: refuse, naming its PID)",
    )
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the model (same recipe and run; compiling takes a while)"
    )
    p.add_argument(
        "--register",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="register each run's final weights in MLflow's Model Registry under the variant's name "
        "(default: on for the paper profile)",
    )
    p.add_argument(
        "--keep-weights",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="log each run's final weights as checkpoint/final.pt, what `eval --run-id`, `analyze` and the report's "
        "kernels read (default: on, off for the smoke profile; --register keeps them)",
    )
    p.add_argument(
        "--system-metrics",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="log MLflow's system metrics (CPU, memory, GPU) while training "
        "(default: on for the paper and proxy profiles)",
    )
    add_ui_url_option(p)
    p.add_argument(
        "--parallel",
        choices=PARALLELS,
        default="none",
        help="under torchrun: none (DDP, default), towers (KSH12: one tower per rank, 2 ranks per replica) or "
        "hybrid (OWT14: data-parallel convs, model-parallel fc6/fc7)",
    )
    p.add_argument(
        "--dist-timeout",
        type=positive_float,
        metavar="SECONDS",
        help="under torchrun: how long a collective waits for a rank that does not arrive (default: torch's 600)",
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        metavar="N",
        help="run N (variant, seed) runs at a time, each in its own process (one node; see --gpus)",
    )
    p.add_argument(
        "--gpus",
        metavar="0,1,...",
        help="one run at a time per listed GPU, each process seeing only that GPU (CUDA_VISIBLE_DEVICES); sets --jobs",
    )
    p.add_argument(
        "--launcher",
        choices=("local", "slurm"),
        help="one submitit job per (variant, seed): slurm (a job array; requeued at the time limit) or local "
        "(submitit's local executor, the same code path on this machine)",
    )
    p.add_argument("--partition", help="--launcher slurm: the Slurm partition")
    p.add_argument("--time", type=positive_int, default=24 * 60, metavar="MIN", help="each job's time limit (1440)")
    p.add_argument("--nodes", type=positive_int, default=1, help="nodes per job: one data-parallel run (default 1)")
    p.add_argument(
        "--gpus-per-node",
        type=non_negative_int,
        default=0,
        help="GPUs per job and node, one data-parallel rank each (default 0)",
    )
    p.add_argument("--cpus-per-task", type=positive_int, help="CPUs per rank (data loading workers + 1)")
    p.add_argument("--array-parallelism", type=positive_int, default=8, help="array tasks at once (default 8)")
    p.add_argument("--parent-run-id", help=argparse.SUPPRESS)  # a --jobs worker: the batch run it belongs to
    p.add_argument("--outcomes-json", help=argparse.SUPPRESS)  # a --jobs worker: where it reports its outcomes
    p.set_defaults(func=cmd_run, run_parser=p)

    p = sub.add_parser("eval", help="evaluate given weights, a finished run's checkpoint or a registered model")
    p.add_argument("variant", nargs="?", help="the variant (with --model: default the registered model's name)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="a state-dict file, or IMAGENET1K_V1 for torchvision's official weights")
    src.add_argument("--run-id", help="a finished run whose final checkpoint to evaluate")
    src.add_argument("--model", help="a registered model version: models:/NAME/VERSION (or models:/NAME@ALIAS)")
    add_data_options(p)
    p.add_argument("--tta", choices=["center", "ten_crop"], help="test protocol (default: the recipe's)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="evaluate under a changed recipe field, e.g. --set dropout_scaling=train for weights trained with "
        "nn.Dropout (default: what the run logged; for --weights the variant's own dropout)",
    )
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "analyze",
        help="the papers' qualitative evaluation of a finished run (KSH12 s6.1), logged to that run",
        description="Tower colour index of conv1, top-5 examples, fc7 retrieval against pixels, auto-encoder codes "
        "and accuracy against shift, computed from a finished run's final weights and data and logged to it "
        "(metrics qual.*, figures under qualitative/).",
    )
    p.add_argument("run_id", nargs="?", help="a finished variant run")
    p.add_argument("--variant", help="analyze the latest finished run of this variant instead")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    add_store_option(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser(
        "sweep",
        help="Optuna search around a variant's recipe, one nested MLflow run per trial (single process)",
        description="Hyperparameter search with Optuna (TPE, seeded; median pruning on per-epoch val_top1), tracked "
        "in MLflow as a parent run with one nested run per trial. Runs in one process: no torchrun/DDP. "
        "The study lives in optuna.db beside the MLflow store; the same --study-name continues it.",
    )
    p.add_argument("name", help="variant name (see `harness list`)")
    p.add_argument("--trials", type=positive_int, default=6, help="trials to run now, added to the study (default 6)")
    p.add_argument(
        "--storage",
        help="the study's storage: an Optuna RDB URL (postgresql://..., sqlite:///...) or journal:PATH (a journal "
        "file, e.g. on shared storage); default: optuna.db beside the MLflow store",
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        metavar="N",
        help="N worker processes on the study (TPE with constant_liar, each its own sampler seed); --trials in all",
    )
    p.add_argument("--worker-index", type=non_negative_int, default=0, help=argparse.SUPPRESS)  # a --jobs worker
    p.add_argument("--parent-run-id", help=argparse.SUPPRESS)  # a worker: the sweep's parent run
    p.add_argument("--study-name", help="Optuna study (default: VARIANT-PROFILE-SPACE); an existing one continues")
    p.add_argument("--space", default="default", help=f"search space (default: default). {spaces.describe()}")
    p.add_argument("--timeout", type=positive_float, help="start no new trial after this many seconds")
    p.add_argument(
        "--pruner",
        choices=PRUNERS,
        default="median",
        help="median (default): stop a trial whose val_top1 is below the median of complete trials at the same epoch",
    )
    add_recipe_options(p, batch_size=False)
    add_data_options(p)
    p.add_argument(
        "--report",
        action="store_true",
        help="then write the experiment's report (reports/<experiment>.md) and log it to the sweep's run",
    )
    add_ui_url_option(p)
    p.set_defaults(func=cmd_sweep, run_parser=p)

    p = sub.add_parser("report", help="write the markdown report (and figures) of tracked runs under reports/")
    p.add_argument(
        "--experiment",
        dest="experiments",
        action="append",
        metavar="NAME",
        help="an MLflow experiment to report (repeatable; default: all experiments in the store)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="markdown file to write (default: reports/<experiment names>.md); figures go beside it",
    )
    add_store_option(p)
    add_ui_url_option(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("ui", help="start the MLflow UI on this store, bound to 127.0.0.1")
    p.add_argument("--port", type=tcp_port, default=store.UI_PORT, help=f"TCP port (default {store.UI_PORT})")
    add_store_option(p)
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser(
        "bench",
        help="images/s: bare loop vs the harness's step, input pipeline per core vs torchvision's, TFLOP/s and MFU",
    )
    p.add_argument("names", nargs="*", metavar="VARIANT", help="variants to time (default: alexnet2012)")
    p.add_argument("--size", type=positive_int, default=224, help="input size in px (default 224)")
    p.add_argument("--batch-size", type=positive_int, default=128, help="batch size (default 128)")
    p.add_argument("--steps", type=positive_int, default=20, help="timed training steps, after 3 warm-up (default 20)")
    p.add_argument("--precision", choices=("fp32", "tf32", "bf16"), default="fp32", help="(default fp32)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="(default auto)")
    p.add_argument(
        "--images", type=non_negative_int, default=200, help="JPEGs per pipeline measurement; 0 skips it (default 200)"
    )
    p.add_argument("--rounds", type=positive_int, default=1, help="alternate (a) and (b) N times, print medians")
    p.add_argument(
        "--jpegs",
        help="an ImageNet-style folder of JPEGs to read (default: --images generated ones); the training rows from "
        "JPEGs and from a store appear when its train/ holds (3 + steps) x batch images",
    )
    p.add_argument("--json", type=Path, help="also write the header and rows to this JSON file")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "server", help="start an MLflow tracking server (many writers: nodes, job arrays, sweep workers) on 127.0.0.1"
    )
    add_store_option(p)
    p.add_argument("--backend-store-uri", help="the store it serves (default: --tracking-uri's, the local SQLite)")
    p.add_argument("--artifacts-destination", help="where it stores uploaded artifacts (default: beside the store)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for a cluster)")
    p.add_argument("--port", type=tcp_port, default=5000, help="TCP port (default 5000)")
    p.add_argument("--allowed-hosts", help="Host headers it accepts beyond localhost and private IPs (node names)")
    p.add_argument("--workers", type=positive_int, help="server worker processes (default: MLflow's, 4)")
    p.add_argument(
        "--auth",
        action="store_true",
        help="require a user and password (MLflow's basic-auth app, the `auth` extra); users other than the admin "
        "read everything and change only what they create. The admin's password (first start only): "
        "MLFLOW_AUTH_ADMIN_PASSWORD or --admin-password-file",
    )
    p.add_argument("--admin-password-file", type=Path, help="with --auth: a file whose first line is the password")
    p.set_defaults(func=cmd_server)

    p = sub.add_parser("pca", help="compute the PCA lighting eigen-pairs of an ImageNet-style training set")
    p.add_argument("--data", required=True)
    p.set_defaults(func=cmd_pca)

    p = sub.add_parser(
        "prepare",
        help="decode an ImageNet-style folder once into a store of 256x256 centre patches (KSH12 s2)",
    )
    p.add_argument("--data", required=True, help="DIR with train/<class>/* and val/<class>/*")
    p.add_argument("--out", required=True, help="the store folder: new or empty (a store of the same DIR: no-op)")
    p.add_argument(
        "--format",
        choices=["raw", "jpeg"],
        default="raw",
        help="raw (default): uint8 arrays, fastest to read; jpeg: re-encoded, ~5x smaller, ~20x slower to read",
    )
    # --resize's upper bound: harness.prepare.check_settings, before anything is read or written
    p.add_argument("--resize", type=positive_int, default=256, help="shorter side, then the central square (256)")
    p.add_argument("--quality", type=int_range(1, 100), default=95, help="JPEG quality of --format jpeg (default 95)")
    p.add_argument("--workers", type=positive_int, help="decoding threads (default: one per CPU)")
    p.set_defaults(func=cmd_prepare)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (what Slurm and container runtimes send before a kill), raised wherever the program is, as Ctrl-C
    raises KeyboardInterrupt: the step under way is dropped, the last epoch's checkpoint stays, runs and sweeps are
    closed KILLED on the way out, and the exit status is 143 (128 + 15)."""


def _on_sigterm(signum: int, frame: object) -> None:
    if isinstance(sys.exc_info()[1], KeyboardInterrupt):
        return  # already stopping (an `except` closing runs KILLED): a second SIGTERM does not interrupt that
    raise Terminated  # (not SIG_IGN after the first: one raised inside a __del__ is lost, and the next must count)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        return int(args.func(args) or 0)
    except HarnessError as e:
        print(f"harness: error: {e}", file=sys.stderr)
        return e.exit_code
    except Terminated:
        print("harness: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def entry_point(argv: list[str] | None = None) -> int:
    """`python -m harness`: under torchrun, torch's elastic `record` writes an uncaught error's traceback to the
    error file torchrun reads, so that torchrun names the failing rank and its traceback (torch is imported only
    there: `--help` stays fast)."""
    if os.environ.get("TORCHELASTIC_ERROR_FILE"):
        from torch.distributed.elastic.multiprocessing.errors import record

        return record(main)(argv)
    return main(argv)


if __name__ == "__main__":
    raise SystemExit(main())

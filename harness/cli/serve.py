"""`harness ui` and `harness server`: `mlflow server` on this store, in its own process group, until it stops."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness import mlruns, schema, workers
from harness.cli.common import Subparsers, add_store_option, positive_int, tcp_port
from harness.errors import HarnessError


def add_ui(sub: Subparsers) -> None:
    """`harness ui [--port N]`."""
    p = sub.add_parser("ui", help="start the MLflow UI on this store, bound to 127.0.0.1")
    p.add_argument("--port", type=tcp_port, default=mlruns.UI_PORT, help=f"TCP port (default {mlruns.UI_PORT})")
    add_store_option(p)
    p.set_defaults(func=cmd_ui)


def add_server(sub: Subparsers) -> None:
    """`harness server`: many writers."""
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


def cmd_ui(args: argparse.Namespace) -> int:
    uri = mlruns.resolve(args.tracking_uri)
    db = mlruns.sqlite_path(uri)
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
    if problem := mlruns.port_problem("127.0.0.1", args.port):
        raise HarnessError(problem)
    url = f"http://127.0.0.1:{args.port}"
    print(
        f"MLflow UI on {url} (Ctrl-C to stop); its model-training view of the experiments: "
        f"{url}/#/experiments?{schema.UI_WORKFLOW}",
        flush=True,
    )
    return served(serve(cmd))


def cmd_server(args: argparse.Namespace) -> int:
    """A real `mlflow server` for many writers (several nodes, job-array tasks, sweep workers; docs/server.md): runs log
    to it over HTTP (`--tracking-uri http://HOST:PORT`) and it alone writes the backend store (SQLite by default, a
    database server's URI where the user has one) and the artifacts (`--serve-artifacts`: children upload through
    it, so no node needs the artifact folder mounted)."""
    backend = args.backend_store_uri or mlruns.resolve(args.tracking_uri)
    db = mlruns.sqlite_path(backend)
    if db is not None:
        problem = mlruns.problem(backend)
        if problem:
            raise HarnessError(problem)
    artifacts = args.artifacts_destination or str((mlruns.local_root(backend) / "artifacts").resolve())
    env = os.environ.copy()
    if args.admin_password_file and not args.auth:
        raise HarnessError("--admin-password-file is the admin's password of --auth: add --auth")
    if args.auth:
        from harness import auth

        env = auth.server_env(mlruns.local_root(backend), env, args.admin_password_file)
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend]
    cmd += ["--serve-artifacts", "--artifacts-destination", artifacts, "--host", args.host, "--port", str(args.port)]
    if args.allowed_hosts:
        cmd += ["--allowed-hosts", args.allowed_hosts]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    if problem := mlruns.port_problem(args.host, args.port):
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
        workers.stop(server, grace_s=10.0, group=True)
        raise
    workers.stop(server, grace_s=10.0, group=True)  # workers the server left behind
    return code

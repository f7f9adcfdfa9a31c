"""Where things live on disk: the MLflow store's URI and folder, and the files kept beside it.

The default store is `./mlruns/mlflow.db` (SQLite; MLflow 3.x refuses the old file store), artifacts go to
`./mlruns/artifacts/<experiment>`, Optuna studies to `./mlruns/optuna.db`, per-epoch checkpoints to
`./mlruns/checkpoints/`. `--tracking-uri` or MLFLOW_TRACKING_URI point elsewhere (e.g. an `mlflow server`); for a
remote store the local files go under `./mlruns/`. Plain functions of strings and paths: no MLflow import here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SQLITE = "sqlite:///"


def default_uri() -> str:
    """$MLFLOW_TRACKING_URI, else the SQLite store under ./mlruns (a relative SQLite path made absolute)."""
    return absolute(os.environ.get("MLFLOW_TRACKING_URI") or f"{SQLITE}{Path.cwd() / 'mlruns' / 'mlflow.db'}")


def resolve(uri: str | None) -> str:
    """The store a command uses: `--tracking-uri` (made absolute), else `default_uri()`."""
    return absolute(uri) if uri else default_uri()


def absolute(uri: str) -> str:
    """`sqlite:///mlflow.db` (a path relative to the working directory, the form MLflow's own documentation uses)
    as `sqlite:////abs/cwd/mlflow.db`, so that the store and the files beside it do not move with the working
    directory; any other URI unchanged."""
    path = sqlite_path(uri)
    if path is None or path.is_absolute() or not str(path):
        return uri
    return f"{SQLITE}{Path.cwd() / path}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI, or None for any other store."""
    return Path(uri[len(SQLITE) :]) if uri.startswith(SQLITE) else None


def store_root(uri: str) -> Path | None:
    """The local folder that holds a SQLite store (artifacts go beside it), or None for remote stores."""
    path = sqlite_path(uri)
    return None if path is None else path.parent


def local_root(uri: str) -> Path:
    """Where files beside the store go: the SQLite store's folder, or ./mlruns for a remote store."""
    return store_root(uri) or Path("mlruns")


def optuna_path(uri: str) -> Path:
    """`optuna.db` beside a SQLite MLflow store; ./mlruns/optuna.db for remote stores."""
    return local_root(uri).resolve() / "optuna.db"


def display(uri: str) -> str:
    """The store as reports name it: a SQLite path under the working directory is shown relative to it."""
    path = sqlite_path(uri)
    if path is None:
        return uri
    try:
        return f"{SQLITE}{path.resolve().relative_to(Path.cwd().resolve())}"
    except ValueError:
        return uri


def shared_sqlite_problem(uri: str, env: Mapping[str, str]) -> str | None:
    """Why this process must not write to a SQLite store, or None: it is one of several nodes of a torchrun job
    (WORLD_SIZE beyond this node's LOCAL_WORLD_SIZE, or several GROUP_WORLD_SIZE agents) or a task of a Slurm job
    array, so the file would sit on shared storage and be written from several hosts at once (SQLite's locks are
    not safe on NFS). Many writers log to one `mlflow server` instead (docs/server.md)."""
    path = sqlite_path(uri)
    if path is None:
        return None
    world = int(env.get("WORLD_SIZE", "1"))
    nodes = int(env.get("GROUP_WORLD_SIZE", "1"))
    if world > int(env.get("LOCAL_WORLD_SIZE", str(world))) or nodes > 1:
        who = "a torchrun job on several nodes"
    elif env.get("SLURM_ARRAY_TASK_ID"):
        who = f"Slurm job array task {env['SLURM_ARRAY_TASK_ID']}"
    else:
        return None
    return (
        f"{who} would write to the SQLite store {path} with other hosts at once (unsafe on shared storage): start "
        "`python -m harness server --host 0.0.0.0` on one host and pass --tracking-uri http://THAT_HOST:5000"
    )


def missing(uri: str) -> str | None:
    """Why a command that only reads the store cannot (`eval --model`/`--run-id`, `analyze`): a SQLite store whose
    file is not there, which MLflow would create empty. None for a store that exists, or a remote one."""
    path = sqlite_path(uri)
    if path is None or path.is_file():
        return None
    return f"no MLflow store at {path}: run `harness run` first or pass --tracking-uri"


CONNECT_TIMEOUT_S = 5.0  # how long `problem` waits for a remote store before saying it cannot be reached


def problem(uri: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why the store cannot be used, in one line, or None: checked once up front so that a bad store fails within
    seconds instead of minutes of MLflow's retries. A remote store must answer within `timeout` seconds; a SQLite
    store's folder must exist (or be creatable) and be writable, and its file (if any) a file that can be read and
    written."""
    path = sqlite_path(uri)
    if path is None:
        return _http_problem(uri, timeout) if uri.startswith(("http://", "https://")) else None
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"cannot create the MLflow store folder {folder}: {e.strerror or e}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"the MLflow store folder {folder} is not writable (SQLite writes its journal beside {path.name}): "
            "choose another --tracking-uri"
        )
    if path.exists() and not path.is_file():
        return f"the MLflow store {path} is not a file"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"the MLflow store {path} cannot be read and written"
    return None


def _http_problem(uri: str, timeout: float) -> str | None:
    """Any HTTP answer (even an error status) means a server listens; no answer in time is the problem."""
    import ssl
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return None
    except (OSError, ValueError) as e:  # URLError, refused, timed out; a malformed URL
        reason = getattr(e, "reason", e)
        if isinstance(reason, ssl.SSLError):  # it answered: its certificate is MLflow's concern (and the user's)
            return None
        return f"cannot reach the MLflow store {uri} within {timeout:g} s: {reason}"
    return None


UI_PORT = 5000  # `harness ui`'s default port


def port_problem(host: str, port: int) -> str | None:
    """Why a server cannot listen on host:port, in one line, or None: checked by binding it (as uvicorn will, with
    SO_REUSEADDR) and letting go, so that a busy port is an error before `mlflow server` starts (that logs "Address
    already in use" and exits 0)."""
    import errno
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError) as e:
        return f"cannot listen on --host {host}: {getattr(e, 'strerror', None) or e}"
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is in use (another server?): stop it or choose another --port"
            if e.errno == errno.EADDRNOTAVAIL:
                return f"cannot listen on --host {host}: not an address of this machine"
            return f"cannot listen on {host}:{port}: {e.strerror or e}"
    return None


def ui_url(uri: str) -> str:
    """Where a user opens the MLflow UI of this store: the server itself for an http(s) store, else `harness ui`'s
    address on this machine."""
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/")
    return f"http://127.0.0.1:{UI_PORT}"

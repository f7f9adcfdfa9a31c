"""Where things live on disk: the MLflow store's URI and folder, and the files kept beside it.

The default store is `./mlruns/mlflow.db` (SQLite; MLflow 3.x refuses the old file store), artifacts go to
`./mlruns/artifacts/<experiment>`, Optuna studies to `./mlruns/optuna.db`, per-epoch checkpoints to
`./mlruns/checkpoints/`. `--tracking-uri` or MLFLOW_TRACKING_URI point elsewhere (e.g. an `mlflow server`); for a
remote store the local files go under `./mlruns/`. Plain functions of strings and paths: no MLflow import here.
"""

from __future__ import annotations

import os
from pathlib import Path

SQLITE = "sqlite:///"


def default_uri() -> str:
    """$MLFLOW_TRACKING_URI, else the SQLite store under ./mlruns."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"{SQLITE}{Path.cwd() / 'mlruns' / 'mlflow.db'}"


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

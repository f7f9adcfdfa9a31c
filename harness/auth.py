"""`harness server --auth`: MLflow's own basic-auth app (`mlflow server --app-name basic-auth`, the `auth` extra).

What it enforces (mlflow/server/auth/__init__.py, `_before_request`): a request without valid credentials gets 401
(only /health and static files answer); the admin may do everything, creating users
(POST /api/2.0/mlflow/users/create) and granting permissions included; every other user reads everything
(`default_permission = READ`) and changes nothing it did not create: no run in another's experiment, no version
of another's registered model, no deletion, no user, until the admin grants EDIT or MANAGE. MLflow still lets
every signed-in user create experiments and registered models of its own (the creator manages them), so the
admin's experiments and model names are what the others cannot touch, not the whole store. Runs log to it
with MLflow's client variables MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD. Over plain HTTP the
passwords cross the network in clear text: TLS is a proxy's job in front of it.

Credentials never travel on the command line (any user of the machine reads it in `ps`): the admin's password comes
from the environment (MLflow's MLFLOW_AUTH_ADMIN_PASSWORD) or from a file (`--admin-password-file`), and is needed
only at the first start, which creates the admin user. The configuration MLflow reads (MLFLOW_AUTH_CONFIG_PATH) is
the user's own file when that variable is set, else one written beside the store: `basic_auth.ini` (read-only
default, the user database `basic_auth.db` beside it, no password). The key that signs the UI's CSRF tokens
(MLFLOW_FLASK_SERVER_SECRET_KEY, which MLflow requires) is the environment's, else a random one kept in
`basic_auth.key` beside the store (readable by its owner only).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from harness.errors import HarnessError

# MLflow's own names (mlflow/environment_variables.py)
CONFIG_ENV = "MLFLOW_AUTH_CONFIG_PATH"
ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"
MIN_PASSWORD = 12  # mlflow/utils/validation.py, `_validate_password`
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"  # signs the UI's CSRF tokens: the same in every worker and restart
CONFIG = "basic_auth.ini"
USERS = "basic_auth.db"
SECRET_KEY = "basic_auth.key"


def config_text(users_db: Path) -> str:
    """The basic_auth.ini the harness writes: MLflow's shipped one with the user database beside the store."""
    return (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{users_db}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )


def read_password(path: Path) -> str:
    """The admin's password from a file: its first line."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise HarnessError(f"--admin-password-file {path}: {getattr(e, 'strerror', None) or e}") from None
    if not lines or not lines[0]:
        raise HarnessError(f"--admin-password-file {path}: the file is empty; its first line is the password")
    return lines[0]


def server_env(root: Path, env: Mapping[str, str], password_file: Path | None) -> dict[str, str]:
    """The environment of `mlflow server --app-name basic-auth` serving a store whose files live in `root`: `env`
    with the configuration's path and, from `password_file`, the admin's password."""
    if importlib.util.find_spec("flask_wtf") is None:
        raise HarnessError("--auth needs MLflow's auth extra: pip install 'mlflow[auth]' (or '.[auth]' here)")
    out = dict(env)
    if password_file is not None:
        out[ADMIN_PASSWORD_ENV] = read_password(password_file)
    password = out.get(ADMIN_PASSWORD_ENV)
    if password is not None and len(password) < MIN_PASSWORD:
        raise HarnessError(f"--auth: the admin password must be at least {MIN_PASSWORD} characters (MLflow's rule)")
    root.mkdir(parents=True, exist_ok=True)
    if not out.get(SECRET_KEY_ENV):
        out[SECRET_KEY_ENV] = secret_key(root / SECRET_KEY)
    if out.get(CONFIG_ENV):  # the user's own configuration: MLflow checks it, and says what is missing
        if not Path(out[CONFIG_ENV]).is_file():
            raise HarnessError(f"{CONFIG_ENV}={out[CONFIG_ENV]}: no such file")
        return out
    users = (root / USERS).resolve()
    if not users.is_file() and not password:
        raise HarnessError(
            f"--auth: the first start creates the admin user: give its password in {ADMIN_PASSWORD_ENV} or in a "
            "file (--admin-password-file FILE), never on the command line"
        )
    config = users.with_name(CONFIG)
    config.write_text(config_text(users))
    out[CONFIG_ENV] = str(config)
    return out


def secret_key(path: Path) -> str:
    """The key kept in `path`, made (random, owner-only) the first time."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if key:
            return key
        raise HarnessError(f"{path} is empty: delete it (a new key is made) or set {SECRET_KEY_ENV}") from None
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key

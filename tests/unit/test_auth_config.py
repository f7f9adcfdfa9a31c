"""`server --auth`'s checks before anything starts (harness.auth), in this process: the admin's password from the
environment or a file, never the command line; each problem one line and exit 2; the configuration written beside
the store is MLflow's read-only default with no password in it."""

from __future__ import annotations

import os
import stat

import pytest

from harness import auth
from harness.errors import HarnessError


def _server(harness_main, uri: str, *extra: str) -> tuple[int, str]:
    code, _, err = harness_main(["server", "--auth", "--tracking-uri", uri, "--port", "1", *extra])
    return code, err


@pytest.fixture
def no_auth_env(monkeypatch):
    for name in (auth.ADMIN_PASSWORD_ENV, auth.CONFIG_ENV, auth.SECRET_KEY_ENV):
        monkeypatch.delenv(name, raising=False)


def test_a_first_start_without_the_admin_password_is_one_line(harness_main, uri, no_auth_env, tmp_path):
    code, err = _server(harness_main, uri)
    assert code == 2 and err.count("\n") == 1
    assert "harness: error: --auth: the first start creates the admin user" in err and auth.ADMIN_PASSWORD_ENV in err
    assert not (tmp_path / "mlruns" / auth.CONFIG).exists()  # nothing written


@pytest.mark.parametrize(
    "content, says",
    [("", "the file is empty"), ("short\n", "at least 12 characters"), (None, "No such file")],
)
def test_a_bad_password_file_is_one_line(harness_main, uri, no_auth_env, tmp_path, content, says):
    path = tmp_path / "admin.txt"
    if content is not None:
        path.write_text(content)
    code, err = _server(harness_main, uri, "--admin-password-file", str(path))
    assert code == 2 and err.count("\n") == 1 and says in err, err


def test_a_password_file_without_auth_is_refused(harness_main, uri, tmp_path):
    code, _, err = harness_main(["server", "--tracking-uri", uri, "--admin-password-file", str(tmp_path / "p")])
    assert code == 2 and "add --auth" in err and err.count("\n") == 1


def test_the_configuration_reads_only_and_holds_no_password(no_auth_env, tmp_path):
    secret = tmp_path / "admin.txt"
    secret.write_text("a-long-admin-password\n")
    env = auth.server_env(tmp_path / "mlruns", {"PATH": os.environ["PATH"]}, secret)
    assert env[auth.ADMIN_PASSWORD_ENV] == "a-long-admin-password"  # to the server through its environment
    config = (tmp_path / "mlruns" / auth.CONFIG).read_text()
    assert env[auth.CONFIG_ENV] == str((tmp_path / "mlruns" / auth.CONFIG).resolve())
    assert "default_permission = READ" in config and "password" not in config
    assert f"sqlite:///{(tmp_path / 'mlruns' / auth.USERS).resolve()}" in config
    key = tmp_path / "mlruns" / auth.SECRET_KEY
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and env[auth.SECRET_KEY_ENV] == key.read_text().strip()
    again = auth.server_env(tmp_path / "mlruns", {}, secret)
    assert again[auth.SECRET_KEY_ENV] == env[auth.SECRET_KEY_ENV]  # the same key at every start


def test_the_users_own_configuration_is_used_as_it_is(no_auth_env, tmp_path):
    mine = tmp_path / "mine.ini"
    mine.write_text("[mlflow]\ndefault_permission = NO_PERMISSIONS\n")
    env = auth.server_env(tmp_path / "mlruns", {auth.CONFIG_ENV: str(mine)}, None)
    assert env[auth.CONFIG_ENV] == str(mine) and not (tmp_path / "mlruns" / auth.CONFIG).exists()
    with pytest.raises(HarnessError, match="no such file"):
        auth.server_env(tmp_path / "mlruns", {auth.CONFIG_ENV: str(tmp_path / "missing.ini")}, None)

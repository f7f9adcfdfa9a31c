"""Several hosts on one SQLite store: refused before anything is recorded, naming the server to use."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "env",
    [{"WORLD_SIZE": "16", "LOCAL_WORLD_SIZE": "8", "RANK": "9"}, {"SLURM_ARRAY_TASK_ID": "3"}],
    ids=["multi-node", "job-array"],
)
def test_several_hosts_on_one_sqlite_store_refuse_and_name_the_server(env, uri, harness_main, monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, _, err = harness_main(["run", "ksh12_fig1_relu", "--profile", "smoke", "--tracking-uri", uri])
    assert code == 2
    assert "python -m harness server" in err and "--tracking-uri http://" in err
    assert len(err.strip().splitlines()) == 1

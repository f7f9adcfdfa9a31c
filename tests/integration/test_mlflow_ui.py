"""MLflow as its users know it (docs/mlflow-ui.md): one real `harness run` of two variants on the smoke profile with
`--register --system-metrics`, read back through MLflow's client and through the REST API of a real `harness ui`
server on 127.0.0.1: the experiment's kind, standard source tags, descriptions, dataset inputs with the data
fingerprint as digest, the pt2 model (loadable, and registered), system metrics, the parent's comparison metrics and
its copy of the report, the report's links into the UI, and `harness eval --model`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from harness import mlruns, schema, tracking
from harness.errors import HarnessError
from tests.support import ROOT, free_port

VARIANTS = ("alexnet2012", "alexnet2014")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    # MLflow's own setting: sample every 0.5 s, so that a smoke run's few seconds of training hold samples
    return env | {"PYTHONPATH": str(ROOT), "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL": "0.5"}


def _harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd, env=_env(), timeout=900
    )


class Batch:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
        self.proc = _harness(
            "run", *VARIANTS, "--profile", "smoke", "--epochs", "1", "--register", "--system-metrics",
            "--tracking-uri", self.uri, "--ui-url", "http://ui.example:5000", cwd=root,
        )  # fmt: skip
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(self.uri)
        self.exp = self.client.get_experiment_by_name("synthetic-smoke")
        runs = self.client.search_runs([self.exp.experiment_id]) if self.exp else []
        self.children = {
            r.data.tags.get(schema.TAG_VARIANT): r for r in runs if r.data.tags.get("harness.kind") == "variant"
        }
        self.parent = next((r for r in runs if r.data.tags.get("harness.kind") == "batch"), None)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    b = Batch(tmp_path_factory.mktemp("mlflow-ui"))
    assert b.proc.returncode == 0, b.proc.stderr[-3000:]
    assert b.parent is not None and set(b.children) == set(VARIANTS)
    return b


@pytest.fixture(scope="module")
def server(batch: Batch):
    """`harness ui` on this store, on 127.0.0.1: its base URL."""
    port = free_port()
    log = open(batch.root / "ui.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "ui", "--port", str(port), "--tracking-uri", batch.uri],
        cwd=batch.root, env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(base + "/health", timeout=2)
            break
        except OSError as e:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("harness ui did not answer: " + (batch.root / "ui.log").read_text()[-2000:]) from e
            time.sleep(0.5)
    yield base
    from harness import workers

    workers.stop(proc, grace_s=10.0, group=True)
    log.close()


def rest(base: str, endpoint: str, body: dict | None = None, **query: str) -> dict:
    url = f"{base}/api/2.0/mlflow/{endpoint}" + ("?" + urllib.parse.urlencode(query) if query else "")
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method="GET")
    if body is not None:
        req.method = "POST"
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


# ---------------------------------------------------------------- through the REST API of a real server


@pytest.mark.slow
def test_the_experiment_opens_on_training_runs(batch: Batch, server: str) -> None:
    exp = rest(server, "experiments/get-by-name", experiment_name="synthetic-smoke")["experiment"]
    tags = {t["key"]: t["value"] for t in exp.get("tags", [])}
    assert tags[schema.TAG_EXPERIMENT_KIND] == "custom_model_development"


@pytest.mark.slow
def test_runs_carry_source_description_and_datasets(batch: Batch, server: str) -> None:
    found = rest(server, "runs/search", {"experiment_ids": [batch.exp.experiment_id], "max_results": 50})["runs"]
    variants = [
        r for r in found if any(t["key"] == "harness.kind" and t["value"] == "variant" for t in r["data"]["tags"])
    ]
    assert len(variants) == 2
    for r in variants:
        tags = {t["key"]: t["value"] for t in r["data"]["tags"]}
        params = {p["key"]: p["value"] for p in r["data"]["params"]}
        assert tags[schema.TAG_SOURCE_NAME] == "harness run"
        assert tags[schema.TAG_COMMAND].startswith("python -m harness run alexnet2012 alexnet2014 --profile smoke")
        assert tags[schema.TAG_SOURCE_TYPE] == "LOCAL"
        commit = tags.get(schema.TAG_SOURCE_GIT_COMMIT)
        assert commit is None or (len(commit) == 40 and tags[schema.TAG_GIT] == commit[:12])
        note = tags[schema.TAG_NOTE]
        assert note.startswith(f"**{tags['variant']}**") and "Deviations from the paper" in note
        assert "recipe changed by the user: `epochs`" in note  # --epochs 1
        inputs = r["inputs"]["dataset_inputs"]
        by_context = {
            next(t["value"] for t in i["tags"] if t["key"] == "mlflow.data.context"): i["dataset"] for i in inputs
        }
        assert set(by_context) == {"training", "validation"}
        for ctx, split in (("training", "train"), ("validation", "val")):
            ds = by_context[ctx]
            assert ds["name"] == f"synthetic:{split}"
            assert ds["digest"] == params["dataset_fingerprint"]
        assert json.loads(by_context["training"]["profile"])["num_rows"] == int(params["train_size"])


@pytest.mark.slow
def test_registered_versions_name_their_run_data_and_top1(batch: Batch, server: str) -> None:
    for name in VARIANTS:
        versions = rest(server, "model-versions/search", filter=f"name='{name}'")["model_versions"]
        assert [v["version"] for v in versions] == ["1"]
        v = versions[0]
        child = batch.children[name]
        assert v["run_id"] == child.info.run_id
        tags = {t["key"]: t["value"] for t in v["tags"]}
        assert tags[schema.TAG_MODEL_RUN] == child.info.run_id
        assert tags[schema.TAG_MODEL_DATASET] == "synthetic val"
        assert float(tags[schema.TAG_MODEL_TOP1]) == pytest.approx(child.data.metrics[schema.FINAL_TOP1], abs=0.006)


@pytest.mark.slow
def test_the_batch_run_lists_beside_its_variants_and_holds_the_report(batch: Batch, server: str) -> None:
    pid = batch.parent.info.run_id
    parent = rest(server, "runs/get", run_id=pid)["run"]
    metrics = {m["key"]: m["value"] for m in parent["data"]["metrics"]}
    assert metrics["runs_finished"] == 2 and metrics["runs_failed"] == 0 and metrics["runs_skipped"] == 0
    assert {i["dataset"]["name"] for i in parent["inputs"]["dataset_inputs"]} == {"synthetic:train", "synthetic:val"}
    for child in batch.children.values():  # siblings in the runs table, each naming its batch
        assert child.data.tags[schema.TAG_BATCH] == pid and schema.TAG_PARENT_RUN not in child.data.tags
    files = rest(server, "artifacts/list", run_id=pid, path=schema.ART_REPORT)["files"]
    assert "report/synthetic-smoke.md" in {f["path"] for f in files}
    logged = Path(batch.client.download_artifacts(pid, "report/synthetic-smoke.md", str(batch.root)))
    assert logged.read_text() == (batch.root / "reports" / "synthetic-smoke.md").read_text()


# ---------------------------------------------------------------- through the client and the command line


@pytest.mark.slow
def test_system_metrics_are_logged_when_enabled(batch: Batch) -> None:
    for child in batch.children.values():
        assert "system/cpu_utilization_percentage" in child.data.metrics
        assert "system/system_memory_usage_megabytes" in child.data.metrics
    assert not any(k.startswith("system/") for k in batch.parent.data.metrics)  # only while training


@pytest.mark.slow
def test_the_logged_model_loads_and_computes_what_the_run_trained(batch: Batch) -> None:
    import mlflow.pytorch
    import torch

    from harness import checkpoint
    from variants import get_variant

    child = batch.children["alexnet2014"]
    assert child.outputs.model_outputs, "the run lists its logged model (the UI's Model column)"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    mlflow.set_tracking_uri(batch.uri)
    loaded = mlflow.pytorch.load_model("models:/alexnet2014/1")  # pt2: no pickle
    weights = Path(batch.client.download_artifacts(child.info.run_id, schema.ART_CHECKPOINT, str(batch.root)))
    state = checkpoint.load_state_dict(weights)
    net = get_variant("alexnet2014").build(state["classifier.fc8.weight"].shape[0])
    net.load_state_dict(state)
    net.eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x), net(x), atol=1e-4)


@pytest.mark.slow
def test_eval_model_evaluates_the_registered_version(batch: Batch) -> None:
    r = _harness(
        "eval", "--model", "models:/alexnet2014/1", "--profile", "smoke", "--tracking-uri", batch.uri, cwd=batch.root
    )
    assert r.returncode == 0, r.stderr[-2000:]
    top1 = float(r.stdout.split("top-1 ")[1].split()[0])
    assert top1 == pytest.approx(batch.children["alexnet2014"].data.metrics[schema.FINAL_TOP1], abs=1e-3)
    bad = _harness(
        "eval", "--model", "models:/alexnet2014/9", "--profile", "smoke", "--tracking-uri", batch.uri, cwd=batch.root
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert (
        bad.stderr.strip()
        .splitlines()[-1]
        .startswith("harness: error: no registered model version models:/alexnet2014/9")
    )


@pytest.mark.slow
def test_the_report_links_each_run_to_its_ui_page(batch: Batch) -> None:
    text = (batch.root / "reports" / "synthetic-smoke.md").read_text()
    for child in batch.children.values():
        rid = child.info.run_id
        page = (
            f"http://ui.example:5000/#/experiments/{batch.exp.experiment_id}/runs/{rid}?workflowType=machine_learning"
        )
        assert f"[`{rid}`]({page})" in text


# ---------------------------------------------------------------- fast: pure parts, bad input


def test_an_experiment_made_before_the_kind_tag_gets_it(uri: str) -> None:
    from mlflow.tracking import MlflowClient

    c = tracking.client(uri)
    exp_id = c.create_experiment("older")
    assert schema.TAG_EXPERIMENT_KIND not in c.get_experiment(exp_id).tags
    tracking.mark_experiment(uri, exp_id)
    assert MlflowClient(uri).get_experiment(exp_id).tags[schema.TAG_EXPERIMENT_KIND] == "custom_model_development"
    c.set_experiment_tag(exp_id, schema.TAG_EXPERIMENT_KIND, "genai_development")  # the user's own choice stays
    tracking.mark_experiment(uri, exp_id)
    assert MlflowClient(uri).get_experiment(exp_id).tags[schema.TAG_EXPERIMENT_KIND] == "genai_development"
    new = tracking.experiment_id(uri, "newer")
    assert MlflowClient(uri).get_experiment(new).tags[schema.TAG_EXPERIMENT_KIND] == "custom_model_development"


def test_the_run_note_lists_every_deviation() -> None:
    from harness import note
    from harness.config import resolve
    from harness.request import RunRequest
    from variants import get_variant

    v = get_variant("alexnet2012")
    cfg = resolve(v, RunRequest(names=(v.name,), profile="proxy", sets={"lr": 0.02}, precision="bf16"))
    text = note.run_note(v, cfg, "mnist-clutter", "val")
    assert "(a proxy: not the paper's data)" in text
    assert all(f"implementation: {d}" in text for d in v.deviations)
    assert all(f"profile `proxy`: {d}" in text for d in cfg.profile_deviations)
    assert "recipe changed by the user: `lr`" in text and "arithmetic: bf16" in text
    assert text.endswith("Recipe: modified (not a reproduction).")
    paper = resolve(v, RunRequest(names=(v.name,), profile="paper", data="/data/imagenet"))
    # from a folder, not a prepared store: the per-channel mean instead of the mean image is its one deviation
    assert [d.split(":")[0] for d in paper.profile_deviations] == ["Mean"]
    assert note.run_note(v, paper, "ILSVRC-2012", "val").endswith("Recipe: the paper's, as recorded.")


def test_model_uris_are_parsed_or_refused() -> None:
    from harness.mlmodel import parse_model_uri

    assert parse_model_uri("models:/alexnet2014/3") == ("alexnet2014", "3")
    assert parse_model_uri("models:/alexnet2014@best") == ("alexnet2014", "@best")
    for bad in ("alexnet2014/3", "models:/alexnet2014", "models:/alexnet2014/latest", "runs:/abc/model", "models://3"):
        with pytest.raises(HarnessError, match="--model takes models:/NAME/VERSION"):
            parse_model_uri(bad)


def test_run_links_need_the_ui_and_the_experiment() -> None:
    from harness.report import fmt

    page = "http://h:5000/#/experiments/7/runs/abc?workflowType=machine_learning"
    assert fmt.run_link("abc", "7", "http://h:5000/") == f"[`abc`]({page})"
    assert fmt.run_link("abc", "", "http://h:5000") == "`abc`"
    assert fmt.run_link("abc", "7", None) == "`abc`"
    assert mlruns.ui_url("sqlite:////x/mlflow.db") == "http://127.0.0.1:5000"
    assert mlruns.ui_url("http://tracking:8080/") == "http://tracking:8080"


def test_the_paper_profile_registers_and_both_real_profiles_monitor() -> None:
    from harness.profiles import PROFILES

    assert {n: (p.register, p.system_metrics) for n, p in PROFILES.items()} == {
        "paper": (True, True),
        "proxy": (False, True),
        "smoke": (False, False),
    }
    assert replace(PROFILES["proxy"], register=True).register  # a plain field (`run --register` overrides it)

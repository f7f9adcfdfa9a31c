"""`harness report` on a store of N runs made with the MLflow client (no training), timed.

    python benchmarks/report_scale.py [--runs 1000] [--epochs 90] [--distinct 52] [--store DIR] [--compare-old REF]

Each run is what a paper-profile run of a registered variant logs (harness.runner.run_tags, RunConfig.params(),
harness.engine.EpochStats.metrics() each epoch, the train_err curve every engine.curve_every(5,005) steps, the final
metrics of runner.finish, config.json and a validation predictions file of 100 images): a mix of every variant,
seeds 0..k, 90 or 30 epochs, a tenth recipe_modified, a twentieth FAILED half-way, the proxy profile beside the paper
one. No weights are logged (the report draws conv1 kernels from a run's weights when it has them; here it has none),
so the time is the read path's: search, histories, artifacts. The first `--distinct` runs are made with the client, the
rest are copies of them in SQL under new run ids and seeds (`clone_runs`).

`--compare-old REF` also times the report of the git revision REF (checked out into a temporary worktree) on the same
store and checks that both reports are the same text. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from harness import engine, schema
from harness.config import resolve
from harness.request import RunRequest
from variants import list_variants

IMAGENET_TRAIN = 1_281_167
STEPS = IMAGENET_TRAIN // 256  # one epoch at batch 256


def _tags(cfg, split: str) -> dict[str, str]:
    """harness.runner.run_tags without a data set (no git or machine look-ups; the values are what they hold)."""
    tags = {
        schema.TAG_KIND: "variant",
        schema.TAG_VARIANT: cfg.variant,
        schema.TAG_PAPER: cfg.paper,
        schema.TAG_PROFILE: cfg.profile,
        schema.TAG_DATASET: cfg.dataset,
        schema.TAG_DATASET_NAME: cfg.dataset_name,
        schema.TAG_SPLIT: split,
        schema.TAG_PROTOCOL: cfg.recipe.test_protocol,
        schema.TAG_RECIPE_MODIFIED: str(cfg.recipe_modified).lower(),
        schema.TAG_MODIFIED_KEYS: ",".join(cfg.modified_keys),
        schema.TAG_CONFIG_HASH: cfg.config_hash(),
        schema.TAG_GIT: "0" * 40,
        schema.TAG_TORCH: "2.14.1",
        schema.TAG_DEVICE: "cuda",
        schema.TAG_SOURCE_NAME: "harness run",
        schema.TAG_ENV_CPU: "benchmark CPU",
        schema.TAG_ENV_ACCELERATOR: "NVIDIA H200",
        schema.TAG_NOTE: f"{cfg.variant} on {cfg.dataset_name} (benchmarks/report_scale.py)",
    }
    return tags


def _epoch_metrics(rng: np.random.Generator, epoch: int, epochs: int, top1: float) -> dict[str, float]:
    """The keys of schema.EPOCH_METRICS, on a curve rising to `top1`."""
    frac = epoch / epochs
    return {
        "train_loss": 6.9 * (1 - frac) + 1.2 + rng.normal(0, 0.01),
        "train_top1": top1 * frac + 5,
        "val_loss": 6.9 * (1 - frac) + 1.8,
        "val_top1": top1 * frac**0.5 + rng.normal(0, 0.1),
        "val_top5": min(99.0, (top1 + 22) * frac**0.5),
        "lr": 0.01 * 0.1 ** int(frac * 3),
        "images_per_sec": 15_000 + rng.normal(0, 50),
        "epoch_seconds": IMAGENET_TRAIN / 15_000,
        "tflops": 95.0,
        "data_wait_fraction": 0.03,
        "data_wait_s": 2.5,
    }


def log_run(client: MlflowClient, exp_id: str, cfg, rng: np.random.Generator, tmp: Path, failed: bool) -> None:
    """One run as harness.runner logs it (batched writes, as harness.tracking.Tracker does)."""
    split = "val"
    run = client.create_run(exp_id, run_name=cfg.variant, tags=_tags(cfg, split))
    rid, epochs = run.info.run_id, cfg.recipe.epochs
    params = cfg.params() | {
        "dataset_fingerprint": "f" * 16,
        "num_classes": "1000",
        "train_size": str(IMAGENET_TRAIN),
        "val_size": "50000",
    }
    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(rid, params=items[i : i + 100])
    client.log_text(rid, json.dumps({"profile_deviations": list(cfg.profile_deviations)}), schema.ART_CONFIG)
    top1 = float(rng.uniform(50, 62))
    last = epochs // 2 if failed else epochs
    every = engine.curve_every(STEPS)
    batch: list[Metric] = [Metric(schema.SKIPPED_IMAGES, 0.0, 0, 0)]
    for epoch in range(1, last + 1):
        ts = 1_700_000_000_000 + epoch * 60_000
        batch += [Metric(k, float(v), ts, epoch) for k, v in _epoch_metrics(rng, epoch, epochs, top1).items()]
        for s in range(every, STEPS + 1, every):  # train_err: step = training images seen
            seen = ((epoch - 1) * STEPS + s) * 256
            batch.append(Metric(schema.TRAIN_ERR, float(100 - top1 * (seen / (epochs * STEPS * 256)) ** 0.5), ts, seen))
    for i in range(0, len(batch), 1000):
        client.log_batch(rid, metrics=batch[i : i + 1000])
    if failed:
        client.log_text(rid, "RuntimeError: CUDA out of memory\n", schema.ART_ERROR)
        client.set_terminated(rid, "FAILED")
        return
    finals = {
        schema.FINAL_TOP1: top1,
        schema.FINAL_TOP5: top1 + 22,
        schema.FINAL_LOSS: 1.8,
        schema.LEARNED: 1.0,
        "center_val_top1": top1 - 1.5,
        "center_val_top5": top1 + 21,
        "ten_crop_val_top1": top1,
        "ten_crop_val_top5": top1 + 22,
    }
    client.log_batch(rid, metrics=[Metric(k, v, 1_800_000_000_000, epochs) for k, v in finals.items()])
    probs = rng.dirichlet(np.ones(1000) * 0.05, size=100).astype(np.float16)
    d = tmp / rid
    d.mkdir(parents=True)
    np.savez_compressed(d / "val_predictions.npz", labels=np.arange(100) % 1000, probs=probs)
    client.log_artifact(rid, str(d / "val_predictions.npz"), "predictions")
    client.set_terminated(rid, "FINISHED")


def build_store(root: Path, n: int, epochs: int, seed: int = 0) -> str:
    """A SQLite store at root/mlflow.db with `n` runs made with the client, in two experiments (the paper profile's
    and the proxy's)."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    rng = np.random.default_rng(seed)
    names = [v.name for v in list_variants()]
    exps = {
        p: client.create_experiment(f"imagenet-{p}", artifact_location=str(root / "artifacts" / p))
        for p in ("paper", "proxy")
    }
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            variant = next(v for v in list_variants() if v.name == names[i % len(names)])
            profile = "proxy" if i % 5 == 4 else "paper"
            sets = {"lr": 0.02} if i % 10 == 9 else {}
            req = RunRequest(
                names=(variant.name,),
                profile=profile,
                data=str(root),
                dataset="imagefolder",
                dataset_name="ILSVRC-2012",
                seed=i // len(names),
                epochs=epochs if i % 3 else max(1, epochs // 3),
                sets=sets,
            )
            cfg = resolve(variant, req, device="cuda")
            log_run(client, exps[profile], cfg, rng, Path(tmp), failed=i % 20 == 19)
            if (i + 1) % 100 == 0:
                print(f"  {i + 1}/{n} runs logged", file=sys.stderr)
    return uri


def clone_runs(root: Path, n: int) -> None:
    """Copy the store's runs (rows of runs, tags, params, metrics, latest_metrics; the artifact folder) until it holds
    `n`, each copy under a new run id and the next free seed of its variant: MLflow's client logs ~5,000 metric
    points of one 90-epoch run in seconds here, so a thousand distinct runs would take an hour to make."""
    db = sqlite3.connect(root / "mlflow.db")
    with db:
        base = [r[0] for r in db.execute("SELECT run_uuid FROM runs ORDER BY start_time")]
        seeds: dict[str, int] = {}
        for _rid, variant, seed in db.execute(
            "SELECT r.run_uuid, t.value, p.value FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = ? "
            "JOIN params p ON p.run_uuid = r.run_uuid AND p.key = 'seed'",
            (schema.TAG_VARIANT,),
        ):
            seeds[variant] = max(seeds.get(variant, 0), int(seed))
        for i in range(n - len(base)):
            src, new = base[i % len(base)], uuid.uuid4().hex
            variant = db.execute("SELECT value FROM tags WHERE run_uuid = ? AND key = ?", (src, schema.TAG_VARIANT))
            name = variant.fetchone()[0]
            seeds[name] += 1
            (art,) = db.execute("SELECT artifact_uri FROM runs WHERE run_uuid = ?", (src,)).fetchone()
            new_art = art.replace(src, new)
            shutil.copytree(Path(art).parent, Path(new_art).parent)
            cols = "name, source_type, source_name, entry_point_name, user_id, status, start_time, end_time, "
            cols += "source_version, lifecycle_stage, experiment_id, deleted_time"
            db.execute(
                f"INSERT INTO runs (run_uuid, artifact_uri, {cols}) SELECT ?, ?, {cols} FROM runs WHERE run_uuid = ?",
                (new, new_art, src),
            )
            for table, c in (
                ("tags", "key, value"),
                ("params", "key, value"),
                ("metrics", "key, value, timestamp, step, is_nan"),
                ("latest_metrics", "key, value, timestamp, step, is_nan"),
            ):
                db.execute(
                    f"INSERT INTO {table} (run_uuid, {c}) SELECT ?, {c} FROM {table} WHERE run_uuid = ?", (new, src)
                )
            db.execute("UPDATE params SET value = ? WHERE run_uuid = ? AND key = 'seed'", (str(seeds[name]), new))
    db.close()


def time_report(uri: str, out: Path, pythonpath: str) -> float:
    env = os.environ | {"PYTHONPATH": pythonpath}
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "harness", "report", "--tracking-uri", uri, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"report failed ({pythonpath}):\n{r.stderr[-3000:]}")
    return seconds


def old_tree(ref: str, where: Path) -> Path:
    repo = Path(__file__).resolve().parents[1]
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(where), ref], check=True)
    return where


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=90)
    ap.add_argument("--distinct", type=int, default=52, help="runs made with the client; the rest are copies")
    ap.add_argument("--store", type=Path, help="build (or reuse, when it holds mlflow.db) the store here")
    ap.add_argument("--compare-old", metavar="REF", help="also time the report of this git revision")
    args = ap.parse_args()
    root = args.store or Path(tempfile.mkdtemp(prefix="report-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    if (root / "mlflow.db").is_file():
        uri = f"sqlite:///{root / 'mlflow.db'}"
        print(f"reusing the store {root}", file=sys.stderr)
    else:
        t0 = time.perf_counter()
        uri = build_store(root, min(args.runs, args.distinct), args.epochs)
        clone_runs(root, args.runs)
        print(f"built {args.runs} runs in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    print(f"store: {root} ({size / 2**20:.0f} MiB)")
    here = str(Path(__file__).resolve().parents[1])
    new = time_report(uri, root / "new" / "report.md", here)
    print(f"harness report: {new:.1f} s")
    if args.compare_old:
        with tempfile.TemporaryDirectory() as tmp:
            tree = old_tree(args.compare_old, Path(tmp) / "old")
            try:
                old = time_report(uri, root / "old" / "report.md", str(tree))
            finally:
                subprocess.run(["git", "-C", here, "worktree", "remove", "--force", str(tree)], check=False)
        same = (root / "old" / "report.md").read_text() == (root / "new" / "report.md").read_text()
        print(f"harness report at {args.compare_old}: {old:.1f} s; ratio old/new {old / new:.1f}; same text: {same}")


if __name__ == "__main__":
    main()

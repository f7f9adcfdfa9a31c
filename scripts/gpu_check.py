"""One GPU check of the harness's CUDA path, with numbers: run on a lent GPU machine, printed as a table + JSON.

    python scripts/gpu_check.py [--quick] [--out DIR]

1. training step at the paper shapes (224 px, batch 128) per variant: the harness's own `engine.train_one_epoch`
   (fp32, NCHW, host syncs each step) against a lean step (bf16 autocast, channels_last, no host syncs, cudnn
   autotuning): images/s and the ratio - the baseline issue 13 (performance) starts from;
2. `engine.fit` end to end on CUDA (smoke profile: 64 synthetic images, 2 epochs, checkpoint, evaluation) for
   two variants: that the path runs (too little data and time to learn anything);
3. the JPEG input pipeline at the paper's geometry (KSH12 random 224 crops of 256, flips, PCA lighting) on a
   folder of generated 500x375 JPEGs: images/s with 0 and 8 DataLoader workers, no model.

Needs torch and torchvision only (no MLflow, Optuna or mlxtend), so it runs on a bare GPU image.
`--quick` shrinks everything to run on a CPU in seconds (to test this script).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import data, engine
from harness.config import resolve
from harness.distributed import Dist
from harness.progress import Progress
from harness.request import RunRequest
from variants import get_variant

VARIANTS = ("alexnet2012", "alexnet2014", "torchvision_alexnet", "zfnet")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def harness_step_rate(name: str, device: torch.device, batch: int, size: int, steps: int) -> float:
    """images/s of `engine.train_one_epoch` over `steps` batches already on the device."""
    v = get_variant(name)
    model = engine.prepare_model(v, 1000, v.recipe, seed=0).to(device)
    opt = engine.build_optimizer(model, v.recipe, v.recipe.lr)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)
    d = Dist(0, 1, 0, device)
    engine.train_one_epoch(model, [(x, y)] * 3, opt, d, v.recipe, Progress("warm", 0, enabled=False))
    sync(device)
    t = time.perf_counter()
    r = engine.train_one_epoch(model, [(x, y)] * steps, opt, d, v.recipe, Progress("t", 0, enabled=False))
    sync(device)
    return r.images / (time.perf_counter() - t)


def lean_step_rate(name: str, device: torch.device, batch: int, size: int, steps: int) -> float:
    """images/s of a step with bf16 autocast, channels_last and no host syncs (what issue 13 asks for)."""
    torch.backends.cudnn.benchmark = True
    v = get_variant(name)
    model = engine.prepare_model(v, 1000, v.recipe, seed=0).to(device).to(memory_format=torch.channels_last)
    opt = engine.build_optimizer(model, v.recipe, v.recipe.lr)
    x = torch.randn(batch, 3, size, size, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    dtype = torch.bfloat16

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return batch * steps / (time.perf_counter() - t)


def fit_smoke(name: str, device: torch.device, tmp: Path) -> dict[str, object]:
    v = get_variant(name)
    cfg = resolve(v, RunRequest(profile="smoke", device=device.type), device=str(device))
    sets = data.load_datasets(
        data.DataSpec(
            "synthetic", image_size=cfg.recipe.crop, resize=cfg.recipe.resize, train_aug=cfg.recipe.train_aug
        ),
        "center",
    )
    model = engine.prepare_model(v, sets.num_classes, cfg.recipe, cfg.seed)
    t = time.perf_counter()
    result = engine.fit(
        model,
        cfg,
        sets.train,
        sets.val,
        Dist(0, 1, 0, device),
        tmp / f"{name}.pt",
        on_epoch=lambda s: None,
        verbose=False,
    )
    return {
        "variant": name,
        "epochs": len(result.history),
        "val_top1": [round(h.val_top1, 1) for h in result.history],
        "train_loss": [round(h.train_loss, 3) for h in result.history],
        "checkpoint": (tmp / f"{name}.pt").is_file(),
        "seconds": round(time.perf_counter() - t, 1),
        "device": str(next(model.parameters()).device),
    }


def write_jpegs(root: Path, n: int, classes: int = 4) -> None:
    from PIL import Image

    rng = np.random.RandomState(0)
    for split, count in (("train", n), ("val", max(classes, n // 8))):
        for i in range(count):
            c = i % classes
            folder = root / split / f"c{c}"
            folder.mkdir(parents=True, exist_ok=True)
            base = rng.randint(0, 256, (375 // 25, 500 // 25, 3), dtype=np.uint8)
            img = Image.fromarray(base).resize((500, 375), Image.BILINEAR)  # smooth, compresses like a photo
            img.save(folder / f"{i}.JPEG", quality=90)


def loader_rate(root: Path, workers: int, batch: int, size: int, resize: int, max_batches: int) -> float:
    spec = data.DataSpec("imagefolder", root=root, image_size=size, resize=resize, train_aug="ksh12", pca_lighting=True)
    sets = data.load_datasets(spec, "center")
    loader = torch.utils.data.DataLoader(
        sets.train, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True, persistent_workers=False
    )
    it = iter(loader)
    next(it)  # workers started, first batch
    t, seen = time.perf_counter(), 0
    for i, (x, _) in enumerate(it):
        seen += len(x)
        if i + 1 >= max_batches:
            break
    return seen / (time.perf_counter() - t)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, for a CPU")
    p.add_argument("--out", type=Path, default=None, help="write gpu_check.json here")
    a = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch, size, steps, jpegs, workers = (8, 64, 2, 64, (0, 2)) if a.quick else (128, 224, 30, 3072, (0, 8))
    report: dict[str, object] = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "batch": batch,
        "size": size,
        "steps": steps,
    }
    print(f"device {report['device']}, torch {torch.__version__}", flush=True)
    rows = []
    for name in VARIANTS:
        h = harness_step_rate(name, device, batch, size, steps)
        lean = lean_step_rate(name, device, batch, size, steps)
        rows.append(
            {"variant": name, "harness_img_s": round(h), "lean_img_s": round(lean), "ratio": round(lean / h, 2)}
        )
        print(
            f"  step {name:22} harness {h:8.0f} img/s   lean (bf16, channels_last, no syncs) {lean:8.0f} img/s"
            f"   x{lean / h:.2f}",
            flush=True,
        )
    report["steps_224"] = rows
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        report["fit_smoke"] = [fit_smoke(n, device, tmpd) for n in ("alexnet2012", "torchvision_alexnet")]
        for f in report["fit_smoke"]:  # type: ignore[union-attr]
            print(f"  fit {f}", flush=True)
        write_jpegs(tmpd / "jpegs", jpegs)
        rates = {}
        for w in workers:
            rates[w] = loader_rate(
                tmpd / "jpegs", w, batch, size, 256 if not a.quick else 73, max_batches=(jpegs // batch) - 2
            )
            print(f"  JPEG loader, KSH12 train transform, {w} workers: {rates[w]:.0f} img/s", flush=True)
        report["jpeg_loader_img_s"] = {str(w): round(r) for w, r in rates.items()}
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

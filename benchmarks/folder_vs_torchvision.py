"""Training images/s from a JPEG folder: the harness's folder path against torchvision's reference input path.

    python benchmarks/folder_vs_torchvision.py [--variant alexnet2014] [--size 224] [--batch-size 32] [--steps 10]
        [--rounds 3] [--images 400] [--jpegs DIR] [--json PATH]

Both sides train the same net (the variant's own init, optimiser and step: `engine.train_one_epoch`) on the same
files with the same torch thread count; only the input path differs:

- harness: the folder read as `harness run VARIANT --data DIR --dataset imagefolder` reads it (`data.load_datasets`,
  `loader.train_loader` with its default workers, the recipe's batch view on the training device);
- torchvision: references/classification's input path, ImageFolder + ClassificationPresetTrain's PIL transforms
  (RandomResizedCrop, RandomHorizontalFlip, ToTensor, Normalize) + a DataLoader, with 0 and with 1 worker (the
  better of the two is the reference).

The folder (default: generated, `harness.photos`: crops of scikit-learn's two photos at 300-500 x 250-450 px,
quality 90, 10 classes) holds `--images` training images; each measurement runs 3 untimed steps, then `--steps`
timed ones. The sides are interleaved `--rounds` times (harness, torchvision 0 workers, 1 worker, harness, ...) so
load from other processes falls on all of them; each row is the median. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from harness import bench, engine, memory, photos
from harness import precision as precision_mod
from harness.distributed import Dist
from harness.progress import Progress
from harness.transforms import MEAN, STD
from variants import get_variant

CLASSES = 10
WARMUP = 3


def torchvision_loader(root: Path, size: int, batch_size: int, workers: int) -> torch.utils.data.DataLoader:
    """references/classification/train.py's `load_data` + `ClassificationPresetTrain` (PIL backend, no auto-augment,
    no random erasing): RandomResizedCrop(size) + RandomHorizontalFlip + PILToTensor/ToDtype(float, scale) +
    Normalize, batches from a shuffled DataLoader."""
    from torchvision import datasets
    from torchvision import transforms as T

    tf = T.Compose(
        [T.RandomResizedCrop(size, antialias=True), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)]
    )
    ds = datasets.ImageFolder(str(root / "train"), transform=tf)
    return torch.utils.data.DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        generator=torch.Generator().manual_seed(0),
        persistent_workers=workers > 0,
    )


def torchvision_step_ips(name: str, root: Path, size: int, batch_size: int, steps: int, workers: int) -> float:
    """images/s of the harness's step (same net, optimiser, precision) fed by torchvision's reference input path;
    the batches are already the network's input, so the view is the identity. Warm-up and timed steps come from one
    iterator (a worker's start-up is not timed)."""
    v = get_variant(name)
    r = replace(v.recipe, batch_size=batch_size)
    device = torch.device("cpu")
    d = Dist(0, 1, 0, device)
    batches = torchvision_loader(root, size, batch_size, workers)
    precision_mod.configure(device, "fp32")
    model = engine.prepare_model(v, bench.NUM_CLASSES, r, seed=0)
    opt = engine.build_optimizer(model, r, r.lr)
    scheduler = engine.build_scheduler(opt, r, steps)
    g = torch.Generator().manual_seed(0)
    it = iter(batches)

    def train(n: int) -> float:
        progress = Progress("bench", 0, enabled=False)
        start = time.perf_counter()
        engine.train_one_epoch(
            model, itertools.islice(it, n), lambda x, _g: x, opt, d, r, progress, scheduler, 0,
            engine.curve_every(steps), g,
        )  # fmt: skip
        return time.perf_counter() - start

    train(WARMUP)
    return batch_size * steps / train(steps)


def harness_folder_ips(
    name: str, root: Path, size: int, batch_size: int, steps: int, workers: int | None = None
) -> tuple[float, float]:
    """images/s and data-wait share of the harness's step reading the folder as a run does (`bench.harness_step_ips`
    with a folder as its source: `data.load_datasets`, `loader.train_loader` with default workers, 0 on the CPU, or
    `--workers`)."""
    spec = bench.BenchSpec((name,), size=size, batch_size=batch_size, steps=steps, device="cpu")
    return bench.harness_step_ips(get_variant(name), spec, torch.device("cpu"), root, workers)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", default="alexnet2014")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--images", type=int, default=400, help="training JPEGs to generate (without --jpegs)")
    p.add_argument("--jpegs", type=Path, help="an existing DIR/train/<class>/*.JPEG folder instead")
    p.add_argument("--json", type=Path, help="write every measurement here")
    p.add_argument("--harness-workers", type=int, help="also time the harness with this many loader workers")
    args = p.parse_args()
    if (WARMUP + args.steps) * args.batch_size > args.images and args.jpegs is None:
        p.error(f"--images must hold ({WARMUP} + steps) x batch = {(WARMUP + args.steps) * args.batch_size} images")

    memory.keep_freed_memory()  # as `run` and `harness bench` do: both sides get it
    with tempfile.TemporaryDirectory(prefix="folder-vs-tv-") as tmp:
        root = args.jpegs
        if root is None:
            root = Path(tmp) / "jpegs"
            photos.imagenet_like_jpegs(root, -(-args.images // CLASSES), CLASSES, splits=("train",))
            photos.imagenet_like_jpegs(root, 1, CLASSES, splits=("val",))
        files = sorted((root / "train").rglob("*.JPEG"))
        print(f"{len(files)} training JPEGs in {root}, {sum(f.stat().st_size for f in files) / len(files) / 1024:.0f}"
              f" KiB each on average; torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"{os.cpu_count()} CPUs, load average before {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        rates: dict[str, list[float]] = {"harness": [], "torchvision, 0 workers": [], "torchvision, 1 worker": []}
        extra = f"harness, {args.harness_workers} workers"
        if args.harness_workers is not None:
            rates[extra] = []
        waits: list[float] = []
        loads: list[float] = []
        for k in range(args.rounds):
            ips, wait = harness_folder_ips(args.variant, root, args.size, args.batch_size, args.steps)
            rates["harness"].append(ips)
            waits.append(wait)
            for workers in (0, 1):
                what = f"torchvision, {workers} worker{'s' if workers != 1 else ''}"
                rates[what].append(
                    torchvision_step_ips(args.variant, root, args.size, args.batch_size, args.steps, workers)
                )
            if args.harness_workers is not None:
                rates[extra].append(
                    harness_folder_ips(
                        args.variant, root, args.size, args.batch_size, args.steps, args.harness_workers
                    )[0]
                )
            loads.append(os.getloadavg()[0])
            done = ", ".join(f"{w} {r[-1]:.1f}" for w, r in rates.items())
            print(
                f"round {k + 1}: {done} img/s (harness data wait {100 * wait:.1f} %), load {loads[-1]:.2f}", flush=True
            )
    med = {w: statistics.median(r) for w, r in rates.items()}
    best_tv = max(med["torchvision, 0 workers"], med["torchvision, 1 worker"])
    print(f"{args.variant}, {args.size} px, batch {args.batch_size}, {args.steps} timed steps, median of "
          f"{args.rounds} rounds:")  # fmt: skip
    for what, m in med.items():
        print(f"  {what:24} {m:7.1f} img/s  (rounds: {', '.join(f'{x:.1f}' for x in rates[what])})")
    print(f"  ratio harness / best torchvision: {med['harness'] / best_tv:.2f}")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "rates": rates,
                    "harness_data_wait": waits,
                    "load_average": loads,
                    "ratio": med["harness"] / best_tv,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()

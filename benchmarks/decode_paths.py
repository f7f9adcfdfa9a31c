"""torchvision's recipe from the original JPEGs: where to decode them. Input images/s of each candidate on the same
files, a benchmark, not a test (`scripts/gpu-check.sh` runs it on the GPU machine; QUICK=1 on the CPU).

    python benchmarks/decode_paths.py --jpegs DIR [--device cuda] [--batch-size 128] [--steps 10] [--rounds 3]
        [--workers 8] [--train torchvision_alexnet --precision bf16] [--json PATH]
    python benchmarks/decode_paths.py --render PATH      # the table of an earlier --json

torchvision's recipe (TVREF, references/classification/presets.py) cuts RandomResizedCrop(224) (scale 0.08-1,
ratio 3/4-4/3) from each original image, then flips half of them: nothing can be prepared ahead, every image is
decoded every epoch. The candidates, each fed the same batches of files (a seeded order, `--batch-size` files a
batch, 2 untimed batches, then `--steps` timed ones, every timing ending with a synchronize):

- `PIL, W workers`: references/classification's own path, ImageFolder + PIL RandomResizedCrop + flip + ToTensor +
  Normalize in a DataLoader of `--workers` processes, each batch moved to the device (the CPU baseline with the
  machine's cores);
- `torchvision.io.decode_jpeg on D`: the files' bytes read in the main process, one batched `decode_jpeg` call on
  device D (nvJPEG on CUDA; libjpeg-turbo on the CPU), then each image's RandomResizedCrop draw and antialiased
  resize on D, the flip, the normalisation;
- `torchcodec decode_jpeg on D`: the same with TorchCodec's decoder (torchvision 0.29 deprecates its decoders for
  TorchCodec's), when `torchcodec` imports; otherwise the row says why not.

With `--train VARIANT` it also times the bare training step (`harness.bench.bare_loop_ips`) and gives, for every
decoder on the training device, the rate when decoding and training share it, 1 / (1/decode + 1/step): what that
choice would feed a run at best, against the step alone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

WARMUP = 2
SCALE, RATIO = (0.08, 1.0), (3 / 4, 4 / 3)  # TVREF: RandomResizedCrop's defaults


@dataclass(frozen=True)
class Row:
    what: str
    images_per_sec: float | None  # None: not measured (see `note`)
    rounds: tuple[float, ...] = ()
    note: str = ""


def files_of(root: Path) -> list[str]:
    files = sorted(str(p) for p in (root / "train").rglob("*") if p.suffix.lower() in (".jpeg", ".jpg"))
    if not files:
        raise SystemExit(f"decode_paths: no JPEGs under {root / 'train'}")
    return files


def batches_of(files: Sequence[str], batch_size: int, count: int) -> list[list[str]]:
    """`count` batches of `batch_size` files in a seeded order (files repeat when there are too few)."""
    order = list(files)
    random.Random(0).shuffle(order)
    n = batch_size * count
    return [[order[k % len(order)] for k in range(b, b + batch_size)] for b in range(0, n, batch_size)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def normalise(x: torch.Tensor) -> torch.Tensor:
    from harness.transforms import MEAN, STD

    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x.float().div_(255) - mean) / std


def crop_batch(images: Sequence[torch.Tensor], size: int, g: torch.Generator) -> torch.Tensor:
    """TVREF's training view of decoded uint8 images [3,H,W] on their device: each image's RandomResizedCrop draw
    (torchvision's own `get_params`), the antialiased bilinear resize to size x size, a flip for half of them."""
    from torchvision import transforms as T
    from torchvision.transforms.v2 import functional as F

    out = []
    for img in images:
        top, left, h, w = T.RandomResizedCrop.get_params(img, list(SCALE), list(RATIO))
        crop = F.resized_crop(img, top, left, h, w, [size, size], antialias=True)
        out.append(crop.flip(-1) if torch.rand((), generator=g) < 0.5 else crop)
    return normalise(torch.stack(out))


def decoder(name: str) -> Callable | str:
    """The batched decode function, or why it is not available."""
    if name == "torchvision.io":
        from torchvision.io import decode_jpeg

        return lambda raw, device: decode_jpeg(raw, mode="RGB", device=device)
    try:
        from torchcodec.decoders import decode_jpeg as tc_decode
    except Exception as e:  # noqa: BLE001 - ImportError, or an OSError from a library built for another torch
        return f"torchcodec does not import: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
    return lambda raw, device: tc_decode(raw, mode="RGB", device=device)


def decode_ips(name: str, batches: list[list[str]], size: int, device: torch.device) -> float | str:
    decode = decoder(name)
    if isinstance(decode, str):
        return decode
    g = torch.Generator().manual_seed(0)

    def one(paths: list[str]) -> torch.Tensor:
        raw = []
        for p in paths:
            with open(p, "rb") as f:
                raw.append(torch.frombuffer(bytearray(f.read()), dtype=torch.uint8))
        with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders for TorchCodec's
            warnings.simplefilter("ignore", DeprecationWarning)
            return crop_batch(decode(raw, device), size, g)

    for paths in batches[:WARMUP]:
        one(paths)
    sync(device)
    start = time.perf_counter()
    for paths in batches[WARMUP:]:
        one(paths)
    sync(device)
    return sum(len(b) for b in batches[WARMUP:]) / (time.perf_counter() - start)


def pil_loader_ips(root: Path, batches: list[list[str]], size: int, device: torch.device, workers: int) -> float:
    """references/classification's PIL path over the same batches of files (a DataLoader over these files in this
    order, `workers` processes; a worker's start-up is not timed)."""
    from PIL import Image
    from torchvision import transforms as T

    from harness.transforms import MEAN, STD

    tf = T.Compose([T.RandomResizedCrop(size, antialias=True), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize(MEAN, STD)])  # fmt: skip
    flat = [p for b in batches for p in b]

    def item(i: int) -> torch.Tensor:
        with Image.open(flat[i]) as im:
            return tf(im.convert("RGB"))

    loader = torch.utils.data.DataLoader(
        _Items(item, len(flat)), batch_size=len(batches[0]), num_workers=workers, pin_memory=device.type == "cuda"
    )
    it = iter(loader)
    for _ in range(WARMUP):
        next(it).to(device, non_blocking=True)
    sync(device)
    start = time.perf_counter()
    n = 0
    for x in it:
        x.to(device, non_blocking=True)
        n += len(x)
    sync(device)
    return n / (time.perf_counter() - start)


class _Items(torch.utils.data.Dataset):
    def __init__(self, item: Callable[[int], torch.Tensor], n: int) -> None:
        self.item, self.n = item, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.item(i)


def step_ips(variant: str, device: torch.device, size: int, batch_size: int, steps: int, precision: str) -> float:
    from harness import bench
    from variants import get_variant

    spec = bench.BenchSpec((variant,), size=size, batch_size=batch_size, steps=steps, precision=precision)
    return bench.bare_loop_ips(get_variant(variant), spec, device)


def measure(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    batches = batches_of(files_of(args.jpegs), args.batch_size, WARMUP + args.steps)
    rates: dict[str, list[float]] = {}
    notes: dict[str, str] = {}
    pil = f"PIL, {args.workers} worker{'s' if args.workers != 1 else ''}"
    candidates: dict[str, Callable[[], float | str]] = {
        pil: lambda: pil_loader_ips(args.jpegs, batches, args.size, device, args.workers),
        f"torchvision.io decode_jpeg on {device.type}": lambda: decode_ips(
            "torchvision.io", batches, args.size, device
        ),
        f"torchcodec decode_jpeg on {device.type}": lambda: decode_ips("torchcodec", batches, args.size, device),
    }
    if args.train:
        candidates[f"bare step, {args.train} {args.precision}"] = lambda: step_ips(
            args.train, device, args.size, args.batch_size, args.steps, args.precision
        )
    for k in range(args.rounds):  # interleaved, so that drift on a shared machine falls on every row
        for what, run in candidates.items():
            if what in notes:
                continue
            got = run()
            if isinstance(got, str):
                notes[what] = got
            else:
                rates.setdefault(what, []).append(got)
        print(f"round {k + 1}: " + ", ".join(f"{w} {r[-1]:.0f}" for w, r in rates.items()) + " img/s", flush=True)
    rows = [Row(w, statistics.median(r), tuple(r)) for w, r in rates.items()]
    rows += [Row(w, None, (), n) for w, n in notes.items()]
    step = next((r.images_per_sec for r in rows if r.what.startswith("bare step") and r.images_per_sec), None)
    if step:
        for r in list(rows):
            if " on " in r.what and r.images_per_sec and device.type != "cpu":
                shared = 1 / (1 / r.images_per_sec + 1 / step)
                rows.append(Row(f"{r.what} + the step, sharing the {device.type}", shared, (), "1/(1/decode + 1/step)"))
    header = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "size": args.size,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "rounds": args.rounds,
        "files": len(files_of(args.jpegs)),
    }
    return {"header": header, "rows": [asdict(r) for r in rows]}


def render(result: dict) -> str:
    h = result["header"]
    lines = [
        f"torchvision's recipe from JPEGs: input images/s on {h['device']} (torch {h['torch']}), {h['size']} px, "
        f"batch {h['batch_size']}, {h['steps']} timed batches, median of {h['rounds']} rounds, {h['files']} files"
    ]
    for r in result["rows"]:
        ips = f"{r['images_per_sec']:9.0f}" if r["images_per_sec"] is not None else "        -"
        lines.append(f"  {r['what']:58} {ips}  {r['note']}".rstrip())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jpegs", type=Path, help="a DIR/train/<class>/*.JPEG folder")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--train", metavar="VARIANT", help="also time VARIANT's bare training step on the device")
    p.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    p.add_argument("--json", type=Path)
    p.add_argument("--render", type=Path, metavar="PATH", help="print the table of an earlier --json and stop")
    args = p.parse_args(argv)
    if args.render is not None:
        print(render(json.loads(args.render.read_text())))
        return
    if args.jpegs is None or not (args.jpegs / "train").is_dir():
        p.error("--jpegs DIR must hold DIR/train/<class>/*.JPEG")
    result = measure(args)
    print(render(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())

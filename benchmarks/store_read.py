"""Read throughput per core of a prepared store (raw, jpeg) against decoding the original folder, and bytes per image.

    python benchmarks/store_read.py [--images 400] [--batches 10] [--batch-size 128] [--resize 256] [--quality 95]

Generates an ImageNet-like folder (JPEGs of random sizes 250-500 x 250-500, about ImageNet's average, cut and
rescaled from scikit-learn's two sample photos plus noise), prepares it in both formats, and times one process with
torch.set_num_threads(1) reading batches of `--batch-size` random indices into uint8 [B, 3, r, r]. The files sit in
the page cache (the store is small), so this measures CPU cost, not the disk. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from harness.decode import to_rgb
from harness.prepare import prepare
from harness.prepared import PreparedStore, open_store
from harness.transforms import prepare_train


def make_folder(root: Path, n: int, seed: int = 0) -> Path:
    """root/{train,val}/<class>/*.JPEG: n training images in 4 classes and n // 4 validation images."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images  # china, flower: 427x640 RGB
    rng = np.random.default_rng(seed)
    for split, count in (("train", n), ("val", max(4, n // 4))):
        for i in range(count):
            src = photos[i % 2]
            ch, cw = rng.integers(200, 427), rng.integers(200, 640)  # a crop, then a rescale to 250-500 x 250-500
            top, left = rng.integers(0, 428 - ch), rng.integers(0, 641 - cw)
            crop = Image.fromarray(src[top : top + ch, left : left + cw])
            img = np.asarray(crop.resize((int(rng.integers(250, 501)), int(rng.integers(250, 501)))), dtype=np.int16)
            img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)  # noise: no two alike
            folder = root / split / f"class{i % 4}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"{split}_{i}.JPEG", quality=90)
    return root


def rate(fn, batches: list[list[int]]) -> float:
    fn(batches[0])  # warm: open files, first-call costs
    start = time.perf_counter()
    for b in batches:
        fn(b)
    return sum(map(len, batches)) / (time.perf_counter() - start)


def folder_reader(paths: list[str], resize: int):
    def read(indices: list[int]) -> torch.Tensor:
        out = []
        for i in (
            indices
        ):  # the folder path of harness.data (harness.decode): PIL open, to_rgb, resize shorter side, centre crop
            with Image.open(paths[i]) as im:
                out.append(F.pil_to_tensor(prepare_train(to_rgb(im), "ksh12", resize)))
        return torch.stack(out)

    return read


def pil_jpeg_reader(store: PreparedStore):
    """The jpeg store's bytes decoded by PIL instead of torchvision.io.decode_jpeg."""
    reader = store.split("train")
    data = reader.path.read_bytes()

    def read(indices: list[int]) -> torch.Tensor:
        out = []
        for i in indices:
            start, end = int(reader.offsets[i]), int(reader.offsets[i + 1])
            out.append(F.pil_to_tensor(Image.open(io.BytesIO(data[start:end])).convert("RGB")))
        return torch.stack(out)

    return read


def pread_reader(store: PreparedStore):
    """The raw store read with one os.preadv per image (in file order) instead of SplitReader's np.memmap take."""
    reader = store.split("train")
    offset = int(np.load(reader.path, mmap_mode="r").offset)
    fd = os.open(reader.path, os.O_RDONLY)

    def read(indices: list[int]) -> torch.Tensor:
        out = torch.empty((len(indices), 3, reader.resize, reader.resize), dtype=torch.uint8)
        rows = out.numpy().reshape(len(indices), -1)
        for pos in np.argsort(indices):
            os.preadv(fd, [rows[pos]], offset + indices[pos] * reader.image_bytes)
        return out

    return read


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=400)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--resize", type=int, default=256)
    p.add_argument("--quality", type=int, default=95)
    p.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    a = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = a.dir or Path(tmp)
        src = make_folder(work / "src", a.images)
        stores = {}
        for fmt in ("raw", "jpeg"):
            t = time.perf_counter()
            prepare(src, work / fmt, resize=a.resize, fmt=fmt, quality=a.quality, verbose=False)
            stores[fmt] = open_store(work / fmt)
            print(f"prepared {fmt}: {time.perf_counter() - t:.1f} s ({stores[fmt].manifest.train.count} train images)")
        train = stores["raw"].split("train")
        n = len(train)
        rng = np.random.default_rng(0)
        batches = [rng.integers(0, n, a.batch_size).tolist() for _ in range(a.batches)]
        originals = train.originals(range(n))
        src_bytes = sum(Path(f).stat().st_size for f in originals) / n
        raw_m, jpeg_m = stores["raw"].manifest, stores["jpeg"].manifest
        per_image = {
            "raw": raw_m.train.nbytes / raw_m.train.count,
            "jpeg": jpeg_m.train.nbytes / jpeg_m.train.count,
            "folder": src_bytes,
        }
        sizes = [Image.open(f).size for f in originals]
        print(
            f"{n} source JPEGs, mean {np.mean([w for w, _ in sizes]):.0f}x{np.mean([h for _, h in sizes]):.0f}; "
            f"batches of {a.batch_size} random indices -> uint8 [B,3,{a.resize},{a.resize}], 1 thread, 1 process"
        )
        rows = [
            ("raw store (memmap take)", lambda b: train.read(b), per_image["raw"]),
            ("raw store (pread per image)", pread_reader(stores["raw"]), per_image["raw"]),
            (
                f"jpeg store q{a.quality} (decode_jpeg)",
                lambda b: stores["jpeg"].split("train").read(b),
                per_image["jpeg"],
            ),
            (f"jpeg store q{a.quality} (PIL decode)", pil_jpeg_reader(stores["jpeg"]), per_image["jpeg"]),
            ("folder (PIL + resize + crop)", folder_reader(originals, a.resize), per_image["folder"]),
        ]
        print(f"{'path':36} {'images/s':>9} {'KiB/image':>10}")
        for name, fn, nbytes in rows:
            print(f"{name:36} {rate(fn, batches):>9.0f} {nbytes / 1024:>10.1f}")


if __name__ == "__main__":
    main()

"""`harness prepare`: KSH12 s2's preprocessing done once. Every image of an ImageNet-style folder is decoded once,
made RGB, its shorter side resized to `resize` and its central resize x resize patch kept
(`transforms.prepare_train`, exactly as the folder path does it per epoch), and the patches are written to a store
that `harness.prepared` reads. Unreadable files are found here, once, and listed in the manifest.

Writing is atomic: the store is built in OUT/.tmp-<pid>, its files are moved up into OUT, and manifest.json comes
last, so an interrupted run (Ctrl-C, SIGTERM, a full disk) leaves no folder that looks like a store. OUT must be
absent, empty, or a store of the same unchanged folder with the same settings ("already prepared": nothing to do);
anything else is refused, never overwritten. A .tmp-<pid> left by a killed run is removed by the next one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import shutil
import sys
import time
import typing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

from harness.data import _check_dir, scan_split, to_rgb
from harness.errors import HarnessError
from harness.prepared import (
    FORMATS,
    MANIFEST,
    SPLITS,
    STORE_VERSION,
    Manifest,
    Skipped,
    SplitManifest,
    Versions,
    fingerprint,
    images_file,
    labels_file,
    offsets_file,
    open_store,
    read_manifest,
)
from harness.progress import Progress
from harness.transforms import prepare_train

TMP_PREFIX = ".tmp-"


def prepare(
    src: Path,
    out: Path,
    *,
    resize: int = 256,
    fmt: str = "raw",
    quality: int = 95,
    workers: int | None = None,
    verbose: bool = True,
) -> Manifest:
    """Prepare the store `out` from the ImageNet-style folder `src` (see the module docstring); its manifest."""
    if fmt not in FORMATS:
        raise HarnessError(f"unknown store format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if resize < 1:
        raise HarnessError(f"resize must be a positive number of pixels, got {resize}")
    if not 1 <= quality <= 100:
        raise HarnessError(f"JPEG quality must be in 1..100, got {quality}")
    start = time.monotonic()
    root = _check_dir(Path(src), "imagefolder").resolve()
    scans = {split: scan_split(root / split) for split in SPLITS}  # the listing only: nothing decoded yet
    classes = scans["train"][0]
    if scans["val"][0] != classes:
        only_t = sorted(set(classes) - set(scans["val"][0]))[:5]
        only_v = sorted(set(scans["val"][0]) - set(classes))[:5]
        raise HarnessError(
            f"train/ and val/ in {root} have different classes: only in train {only_t}, only in val {only_v}"
        )
    out = Path(out).expanduser().absolute()
    for split in SPLITS:
        if out.resolve().is_relative_to(root / split):
            raise HarnessError(f"--out {out} is inside {root / split}: it would be read as a class folder")
    listing = _listing_digest(root, [p for split in SPLITS for p, _ in scans[split][1]])
    kept_quality = quality if fmt == "jpeg" else None  # raw stores no JPEG: its quality is no setting
    existing = _check_out(out, str(root), listing, (fmt, resize, kept_quality))
    if existing is not None:
        if verbose:
            print(f"{out} is already prepared from {root} ({fmt}, {resize}px): nothing to do")
        return existing

    tmp = out / f"{TMP_PREFIX}{os.getpid()}"
    made_out = not out.exists()
    try:
        tmp.mkdir(parents=True)
    except OSError as e:
        raise HarnessError(f"cannot write the store {out}: {e.strerror or e}") from None
    moved: list[Path] = []
    try:
        n_workers = workers or os.cpu_count() or 1
        with ThreadPoolExecutor(max_workers=n_workers) as pool:  # PIL releases the GIL to decode and resize
            splits = {
                split: _write_split(
                    pool, n_workers, tmp, root, split, scans[split][1], len(classes), resize, fmt, quality, verbose
                )
                for split in SPLITS
            }
        manifest = Manifest(
            version=STORE_VERSION,
            format=fmt,  # type: ignore[arg-type]
            resize=resize,
            quality=kept_quality,
            source=str(root),
            source_listing=listing,
            classes=tuple(classes),
            train=splits["train"][0],
            val=splits["val"][0],
            fingerprint=fingerprint(fmt, resize, kept_quality, classes, [(s, *splits[s][1:]) for s in SPLITS]),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            seconds=round(time.monotonic() - start, 3),
            versions=_versions(),
        )
        (tmp / MANIFEST).write_text(manifest.to_json())
        for name in sorted(os.listdir(tmp), key=lambda n: n == MANIFEST):  # the manifest last: then it is a store
            _fsync(tmp / name)
            os.replace(tmp / name, out / name)
            moved.append(out / name)
    except BaseException as e:  # Ctrl-C, SIGTERM, a full disk: leave no half store behind
        for path in reversed(moved):
            path.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        if made_out:
            with contextlib.suppress(OSError):
                out.rmdir()  # made by this run, and empty again
        if isinstance(e, OSError):
            raise HarnessError(f"cannot write the store {out}: {e.strerror or e}") from None
        raise
    with contextlib.suppress(OSError):  # the store is complete: what follows is tidying
        _fsync(out)
        tmp.rmdir()
    if verbose:
        _summary(manifest, out)
    return manifest


def _listing_digest(root: Path, paths: Iterable[str]) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(f"{Path(p).relative_to(root).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _check_out(out: Path, source: str, listing: str, settings: tuple[str, int, int | None]) -> Manifest | None:
    """None if `out` may be written; the manifest if it already is this store; else HarnessError."""
    if not out.exists():
        return None
    if not out.is_dir():
        raise HarnessError(f"--out {out} exists and is not a folder")
    try:
        entries = list(out.iterdir())
    except OSError as e:
        raise HarnessError(f"cannot read --out {out}: {e.strerror or e}") from None
    for entry in [e for e in entries if e.name.startswith(TMP_PREFIX)]:
        pid = entry.name[len(TMP_PREFIX) :]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            raise HarnessError(f"{out} is being prepared by process {pid} (its {entry.name} is there)")
        shutil.rmtree(entry, ignore_errors=True)  # left by a run that was killed
        entries.remove(entry)
    if not entries:
        return None
    if not (out / MANIFEST).is_file():
        raise HarnessError(
            f"--out {out} exists, is not empty and is not a prepared store; choose a new or empty folder"
        )
    have = read_manifest(out)
    if (have.source, have.format, have.resize, have.quality) != (source, *settings):
        q = f", quality {have.quality}" if have.quality is not None else ""
        raise HarnessError(
            f"{out} is already a store of {have.source} ({have.format}, {have.resize}px{q}); remove it "
            "or choose another --out"
        )
    if have.source_listing != listing:
        raise HarnessError(
            f"{out} was prepared from {source}, which has changed since (images added, removed or "
            "modified); remove the store and prepare it again"
        )
    open_store(out)  # its files are all there and of the right size
    return have


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- one split ------------------------------------------------------------------------------------------------------


def _load(path: str, resize: int, fmt: str, quality: int) -> np.ndarray | bytes | Skipped:
    """One image, decoded once: HWC uint8 patch (raw), its JPEG bytes (jpeg), or why it was left out."""
    try:
        with Image.open(path) as im:
            img = prepare_train(to_rgb(im), "ksh12", resize)  # KSH12 s2: shorter side to 256, central patch
        if fmt == "raw":
            return np.asarray(img)
        buf = io.BytesIO()
        # 4:4:4 (no chroma subsampling): at q95 and 256 px, mean abs error 1.5 levels instead of 1.9, for 26% more
        # bytes and 17% slower decoding (measured on benchmarks/store_read.py's images)
        img.save(buf, "JPEG", quality=quality, subsampling=0)
        return buf.getvalue()
    except Exception as e:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, ... on bad data
        return Skipped(path, f"{type(e).__name__}: {e}".replace("\n", " "))


def _ordered(pool: ThreadPoolExecutor, fn: Callable, items: list, window: int) -> Iterator:
    """pool.map with at most `window` items in flight (the results of 1.28M images never all wait in memory)."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(fn, *item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _write_split(
    pool: ThreadPoolExecutor,
    n_workers: int,
    tmp: Path,
    root: Path,
    split: str,
    samples: list[tuple[str, int]],
    n_classes: int,
    resize: int,
    fmt: str,
    quality: int,
    verbose: bool,
) -> tuple[SplitManifest, str, np.ndarray]:
    """Decode and write one split in scan order; its manifest entry, sha256 of the stored image bytes, labels."""
    image_path = tmp / images_file(split, fmt)
    patch = 3 * resize * resize
    f = _open_images(image_path, fmt, len(samples), resize)
    offsets = [0]  # jpeg: where each image starts
    h = hashlib.sha256()
    labels: list[int] = []
    files: list[str] = []
    skipped: list[Skipped] = []
    progress = Progress(f"prepare {split}", len(samples), enabled=verbose)
    try:
        jobs = [(p, resize, fmt, quality) for p, _ in samples]
        started = time.monotonic()
        for (path, label), result in zip(samples, _ordered(pool, _load, jobs, 4 * n_workers)):
            progress.update(1, ips=(progress.done + 1) / max(time.monotonic() - started, 1e-9))
            if isinstance(result, Skipped):
                skipped.append(Skipped(Path(path).relative_to(root).as_posix(), result.reason))
                continue
            data = np.ascontiguousarray(result.transpose(2, 0, 1)).data if fmt == "raw" else result  # raw: HWC -> CHW
            f.write(data)  # plain writes, not a memmap: a full disk is an OSError, not a SIGBUS
            h.update(data)
            offsets.append(offsets[-1] + len(data))
            labels.append(label)
            files.append(Path(path).relative_to(root).as_posix())
    finally:
        f.close()
        progress.close(f"{len(labels)} images, {len(skipped)} skipped")
    if not labels:
        raise HarnessError(f"no readable images in {root / split}")
    if fmt == "raw" and len(labels) < len(samples):
        _shrink_npy(image_path, len(labels), patch)
    y = np.asarray(labels, dtype=np.int64)
    np.save(tmp / labels_file(split), y)
    written = [images_file(split, fmt), labels_file(split)]
    if fmt == "jpeg":
        np.save(tmp / offsets_file(split), np.asarray(offsets, dtype=np.int64))
        written.append(offsets_file(split))
    entry = SplitManifest(
        count=len(labels),
        per_class=tuple(np.bincount(y, minlength=n_classes).tolist()),
        files=tuple(files),
        skipped=tuple(skipped),
        nbytes=sum((tmp / name).stat().st_size for name in written),
    )
    return entry, h.hexdigest(), y


def _open_images(path: Path, fmt: str, n: int, resize: int) -> typing.BinaryIO:
    """The split's image file, positioned for the first image. raw: a .npy header for all `n` listed images
    (`_shrink_npy` cuts it to those kept) and its full size reserved up front, so that a disk too small for the
    store fails now, not hours in."""
    if fmt == "jpeg":
        return open(path, "wb")
    shape = (n, 3, resize, resize)
    offset = np.lib.format.open_memmap(path, "w+", np.uint8, shape).offset  # writes the header; the data stay unmapped
    f = open(path, "r+b")
    try:
        os.posix_fallocate(f.fileno(), 0, offset + n * 3 * resize * resize)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EFBIG):
            f.close()
            raise
        # a file system that cannot reserve space: the writes will tell
    f.seek(offset)
    return f


def _shrink_npy(path: Path, n: int, item_bytes: int) -> None:
    """Cut a C-order .npy to its first `n` rows: rewrite the shape in its header (padded to the same length, so the
    data stay where they are) and truncate the file."""
    with open(path, "r+b") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
        data_offset = f.tell()
        prefix = 10 if version == (1, 0) else 12  # magic (6) + version (2) + header length (2 or 4 bytes)
        header = repr({"descr": dtype.str, "fortran_order": False, "shape": (n, *shape[1:])})
        header = header.ljust(data_offset - prefix - 1) + "\n"  # fewer digits: never longer than before
        f.seek(prefix)
        f.write(header.encode("latin1"))
        f.truncate(data_offset + n * item_bytes)


# --- summary --------------------------------------------------------------------------------------------------------


def _versions() -> Versions:
    import torch
    import torchvision

    try:
        harness = metadata.version("alexnet-harness")
    except metadata.PackageNotFoundError:
        harness = "not installed"
    return Versions(harness, torch.__version__, torchvision.__version__, Image.__version__, np.__version__)


def _summary(m: Manifest, out: Path) -> None:
    total = m.train.count + m.val.count
    rate = total / m.seconds if m.seconds > 0 else float("inf")
    nbytes = m.train.nbytes + m.val.nbytes
    for split in SPLITS:
        s = m.split(split)
        print(f"{split}: {s.count} images, {len(s.skipped)} skipped, {s.nbytes / 2**20:.1f} MiB")
        for k in s.skipped[:5]:
            print(f"  skipped {k.path}: {k.reason}")
        if len(s.skipped) > 5:
            print(f"  ... and {len(s.skipped) - 5} more (all in {out / MANIFEST})")
    print(
        f"{total} images ({m.format}, {m.resize}x{m.resize}) in {m.seconds:.1f} s, {rate:.0f} images/s, "
        f"{nbytes / 2**20:.1f} MiB ({nbytes / max(total, 1) / 1024:.1f} KiB/image), fingerprint {m.fingerprint}"
    )
    print(f"store: {out}", file=sys.stdout)

"""`harness prepare`: KSH12 s2's preprocessing done once. Every image of an ImageNet-style folder is decoded once,
made RGB, its shorter side resized to `resize` and its central resize x resize patch kept
(`transforms.prepare_train`, exactly as the folder path does it per epoch), and the patches are written to a store
that `harness.prepared` reads. Unreadable files are found here, once, and listed in the manifest.

One writer per destination: `prepare` holds an exclusive lock (`harness.locks.hold` on OUT/.prepare.lock, released
by the kernel however the process ends) before it looks at OUT, so a second `prepare` into the same OUT is refused
in one line, never interleaved with the first. Writing is atomic: the store is built in OUT/.tmp-<pid>, its files
are moved up into OUT, and manifest.json comes last, so an interrupted run (Ctrl-C, SIGTERM, a full disk) leaves no
folder that looks like a store. OUT must be absent, empty, or a store of the same unchanged folder with the same
settings ("already prepared": nothing to do); anything else is refused, never overwritten. A .tmp-<pid> left by a
killed run is removed by the next one (it holds the lock: no other run is writing).

The listing resolves every symbolic link once (`harness.listing.scan_split`): a class is what its folder resolves
to, and what is read is what the listing resolved. A link that dangles, loops, or leads out of its class folder into
the rest of the source folder (another class, the split folder: its images would be labelled with the wrong class)
is left out and recorded in the manifest's `skipped` with the reason, like an unreadable image. A file link to
outside the source folder (a subset linked from a full copy) is read; a folder link must stay inside its class
folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import sys
import time
import typing
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

from harness import locks
from harness.decode import read_square
from harness.errors import HarnessError
from harness.folders import check_dir
from harness.listing import SplitListing, listing_digest, relative, scan_split
from harness.prepared import (
    FORMATS,
    MANIFEST,
    MEAN_FILE,
    SPLITS,
    STORE_VERSION,
    Manifest,
    Skipped,
    SplitManifest,
    Versions,
    files_file,
    fingerprint,
    images_file,
    labels_file,
    offsets_file,
    open_store,
    read_manifest,
)
from harness.progress import Progress

TMP_PREFIX = ".tmp-"
LOCK = ".prepare.lock"  # in OUT: held (flock) by the one `prepare` writing there
# the largest --resize: 16x KSH12 s2's 256 px; a raw patch is 3 r^2 bytes, 48 MiB per image at 4096 px
MAX_RESIZE = 4096


def check_settings(fmt: str, resize: int, quality: int) -> None:
    """The store's settings, each refused in one line naming its flag."""
    if fmt not in FORMATS:
        raise HarnessError(f"--format: unknown store format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not 1 <= resize <= MAX_RESIZE:
        raise HarnessError(f"--resize must be 1..{MAX_RESIZE} pixels (KSH12 s2: 256), got {resize}")
    if not 1 <= quality <= 100:
        raise HarnessError(f"--quality (JPEG quality) must be in 1..100, got {quality}")


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
    check_settings(fmt, resize, quality)
    start = time.monotonic()
    root = check_dir(Path(src), "imagefolder").resolve()
    out = Path(out).expanduser().absolute()
    for split in SPLITS:
        if out.resolve().is_relative_to((root / split).resolve()):
            raise HarnessError(f"--out {out} is inside {root / split}: it would be read as a class folder")
    if out.exists() and not out.is_dir():
        raise HarnessError(f"--out {out} exists and is not a folder")
    try:
        out.mkdir(parents=True)
        made_out = True
    except FileExistsError:
        made_out = False
    except OSError as e:
        raise HarnessError(f"cannot write the store {out}: {e.strerror or e}") from None
    try:
        with contextlib.ExitStack() as held:
            _lock(held, out)
            return _prepare_locked(root, out, start, resize, fmt, quality, workers, verbose)
    except BaseException:
        if made_out:
            with contextlib.suppress(OSError):
                out.rmdir()  # made by this run, and empty again (the lock's file went with the lock)
        raise


def _lock(held: contextlib.ExitStack, out: Path) -> None:
    """Hold OUT's lock in `held`; another `prepare` holding it is one line. A folder where the lock file cannot be
    made (read-only) is not locked: nothing can be written there, it can only be found already prepared."""
    try:
        held.enter_context(locks.hold(out / LOCK, f"--out {out}"))
    except locks.Busy as e:
        who = e.holder.describe() if e.holder else "another process"
        raise HarnessError(f"{out} is being prepared by {who} (lock {out / LOCK}); wait for it to finish") from None
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise HarnessError(f"cannot write the store {out}: {e.strerror or e}") from None


def _prepare_locked(
    root: Path, out: Path, start: float, resize: int, fmt: str, quality: int, workers: int | None, verbose: bool
) -> Manifest:
    listings = {split: scan_split(root, split) for split in SPLITS}  # the listing only: nothing decoded yet
    classes = listings["train"].classes
    if listings["val"].classes != classes:
        only_t = sorted(set(classes) - set(listings["val"].classes))[:5]
        only_v = sorted(set(listings["val"].classes) - set(classes))[:5]
        raise HarnessError(
            f"train/ and val/ in {root} have different classes: only in train {only_t}, only in val {only_v}"
        )
    listing = listing_digest(root, listings)
    kept_quality = quality if fmt == "jpeg" else None  # raw stores no JPEG: its quality is no setting
    existing = _check_out(out, str(root), listing, (fmt, resize, kept_quality))
    if existing is not None:
        if verbose:
            print(f"{out} is already prepared from {root} ({fmt}, {resize}px): nothing to do")
        return existing

    tmp = out / f"{TMP_PREFIX}{os.getpid()}"
    try:
        tmp.mkdir()
    except OSError as e:
        raise HarnessError(f"cannot write the store {out}: {e.strerror or e}") from None
    moved: list[Path] = []
    try:
        n_workers = workers or os.cpu_count() or 1
        with ThreadPoolExecutor(max_workers=n_workers) as pool:  # PIL releases the GIL to decode and resize
            splits = {
                split: _write_split(pool, n_workers, tmp, root, split, listings[split], resize, fmt, quality, verbose)
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
            mean=MEAN_FILE,
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
        if isinstance(e, OSError):
            raise HarnessError(f"cannot write the store {out}: {e.strerror or e}") from None
        raise
    with contextlib.suppress(OSError):  # the store is complete: what follows is tidying
        _fsync(out)
        tmp.rmdir()
    if verbose:
        _summary(manifest, out)
    return manifest


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
    for entry in [e for e in entries if e.name.startswith(TMP_PREFIX) or e.name == LOCK]:
        if entry.name != LOCK:
            shutil.rmtree(entry, ignore_errors=True)  # left by a run that was killed: this one holds the lock
        entries.remove(entry)
    if not entries:
        return None
    if not (out / MANIFEST).is_file():
        raise HarnessError(
            f"--out {out} exists, is not empty and is not a prepared store; choose a new or empty folder"
        )
    have = read_manifest(out)
    if have.version != STORE_VERSION:
        raise HarnessError(
            f"{out} is a store of version {have.version} (this harness writes version {STORE_VERSION}, with the "
            "training set's mean image); remove it and prepare it again"
        )
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


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- one split ------------------------------------------------------------------------------------------------------


def _load(path: str, resize: int, fmt: str, quality: int) -> tuple[np.ndarray, bytes | None] | Skipped:
    """One image, decoded once: (HWC uint8 patch, its JPEG bytes (jpeg) or None (raw)), or why it was left out."""
    try:
        hwc = read_square(path, resize).permute(1, 2, 0).numpy()  # KSH12 s2: shorter side to 256, central patch
        if fmt == "raw":
            return hwc, None  # exactly what the folder path gives (harness.decode.read_square)
        img = Image.fromarray(hwc)
        buf = io.BytesIO()
        # 4:4:4 (no chroma subsampling): at q95 and 256 px, mean abs error 1.5 levels instead of 1.9, for 26% more
        # bytes and 17% slower decoding (measured on benchmarks/store_read.py's images)
        img.save(buf, "JPEG", quality=quality, subsampling=0)
        return hwc, buf.getvalue()
    except Exception as e:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, ... on bad data
        return Skipped(path, reason(e))


_ADDRESS = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>|\s+at 0x[0-9a-fA-F]+")  # `<_io.BytesIO object at 0x7f...>`


def reason(e: BaseException) -> str:
    """Why an image was left out, in one line, without object addresses (PIL names the buffer it read: the same
    file gives the same reason in every run)."""
    return _ADDRESS.sub("", f"{type(e).__name__}: {e}".replace("\n", " "))


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
    listing: SplitListing,
    resize: int,
    fmt: str,
    quality: int,
    verbose: bool,
) -> tuple[SplitManifest, str, np.ndarray]:
    """Decode and write one split in listing order; its manifest entry, sha256 of the stored image bytes, labels."""
    samples = listing.images
    image_path = tmp / images_file(split, fmt)
    patch = 3 * resize * resize
    f = _open_images(image_path, fmt, len(samples), resize)
    offsets = [0]  # jpeg: where each image starts
    h = hashlib.sha256()
    labels: list[int] = []
    files: list[str] = []
    skipped: list[Skipped] = []
    # train: the exact integer sum of every stored square, pixel by pixel (255 x 1.28M fits an int64 many times over)
    total = np.zeros((3, resize, resize), dtype=np.int64) if split == "train" else None
    progress = Progress(f"prepare {split}", len(samples), enabled=verbose)
    try:
        jobs = [(x.real, resize, fmt, quality) for x in samples]  # the file the listing resolved, read once
        started = time.monotonic()
        for x, result in zip(samples, _ordered(pool, _load, jobs, 4 * n_workers)):
            progress.update(1, ips=(progress.done + 1) / max(time.monotonic() - started, 1e-9))
            if isinstance(result, Skipped):
                skipped.append(Skipped(relative(root, x.path), result.reason))
                continue
            hwc, encoded = result
            chw = np.ascontiguousarray(hwc.transpose(2, 0, 1))  # raw: HWC -> CHW, what the store holds
            data = chw.data if encoded is None else encoded
            if total is not None:  # the square itself (jpeg too: the mean of the squares, before re-encoding)
                np.add(total, chw, out=total)
            f.write(data)  # plain writes, not a memmap: a full disk is an OSError, not a SIGBUS
            h.update(data)
            offsets.append(offsets[-1] + len(data))
            labels.append(x.label)
            files.append(relative(root, x.path))
    finally:
        f.close()
        progress.close(f"{len(labels)} images, {len(skipped)} skipped")
    if not labels:
        raise HarnessError(f"no readable images in {root / split}")
    if fmt == "raw" and len(labels) < len(samples):
        _shrink_npy(image_path, len(labels), patch)
    y = np.asarray(labels, dtype=np.int64)
    np.save(tmp / labels_file(split), y)
    if total is not None:
        # KSH12 s2: "subtracting the mean activity over the training set from each pixel": the mean image, in the
        # 0-255 units the paper profile feeds (CHM convdata.py l.39: batches.meta's data_mean, float32)
        buf = io.BytesIO()  # then one plain write: a full disk is an OSError naming its cause, as for the images
        np.save(buf, (total / len(labels)).astype(np.float32), allow_pickle=False)
        (tmp / MEAN_FILE).write_bytes(buf.getbuffer())
    written = [images_file(split, fmt), labels_file(split)]
    if fmt == "jpeg":
        np.save(tmp / offsets_file(split), np.asarray(offsets, dtype=np.int64))
        written.append(offsets_file(split))
    # the paths beside the manifest, not in it: ~60 MB of JSON at ImageNet's 1.28M (docs/input-path.md)
    (tmp / files_file(split)).write_text(json.dumps(files, ensure_ascii=False), encoding="utf-8")
    entry = SplitManifest(
        count=len(labels),
        per_class=tuple(np.bincount(y, minlength=len(listing.classes)).tolist()),
        files=None,
        skipped=tuple(sorted(listing.skipped + skipped, key=lambda k: k.path)),
        nbytes=sum((tmp / name).stat().st_size for name in written),
    )
    return entry, h.hexdigest(), y


def _open_images(path: Path, fmt: str, n: int, resize: int) -> typing.BinaryIO:
    """The split's image file, positioned for the first image. raw: a .npy header for all `n` listed images
    (`_shrink_npy` cuts it to those kept) and its full size reserved up front, so that a disk too small for the
    store fails now, not hours in."""
    if fmt == "jpeg":
        return open(path, "wb")
    size = n * 3 * resize * resize
    try:
        # writes the header and sets the file's length (sparse: the data stay unmapped and unwritten)
        offset = np.lib.format.open_memmap(path, "w+", np.uint8, (n, 3, resize, resize)).offset
        f = open(path, "r+b")
        try:
            os.posix_fallocate(f.fileno(), 0, offset + size)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EFBIG):
                f.close()
                raise
            # a file system that cannot reserve space: the writes will tell
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EFBIG):
            raise
        raise HarnessError(
            f"cannot reserve {_amount(size)} for {path.name} ({n} images of 3x{resize}x{resize} bytes, "
            f"--resize {resize}): {e.strerror}"
        ) from None
    f.seek(offset)
    return f


def _amount(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"


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

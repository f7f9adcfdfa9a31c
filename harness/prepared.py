"""A prepared data store: an ImageNet-style folder after KSH12 s2's preprocessing, done once by `harness prepare`
(`harness.prepare`), read here.

KSH12 s2: "rescaled the image such that the shorter side was of length 256, and then cropped out the central 256x256
patch" (`transforms.prepare_train`). A store holds those patches, so training reads them instead of decoding and
resizing every original JPEG at every epoch, and unreadable files were found once, when it was made.

Layout of STORE/ (`split` is train or val; N images, r = resize):
    manifest.json             `Manifest`: settings, classes, counts, source paths, skipped files, fingerprint
    {split}-labels.npy        int64 [N], class indices into `Manifest.classes`
    format "raw":  {split}-images.npy   uint8 [N, 3, r, r] (CHW: a batch is a gather of whole images, no transpose)
    format "jpeg": {split}-images.jpeg  the N patches re-encoded as JPEG, concatenated
                   {split}-offsets.npy  int64 [N + 1], image i is bytes offsets[i]:offsets[i + 1]
    {split}-files.json        JSON array of N strings: each stored image's source path, relative to the source folder
                              (version 2 on; read only by `SplitReader.originals`, never when training from squares)
    train-mean.npy            float32 [3, r, r]: the per-pixel mean of the training squares in 0-255 pixel units, the
                              mean image KSH12 s2 subtracts ("the mean activity over the training set", store
                              version 2 on; `PreparedStore.mean_image`)

The manifest is written last: a folder without one is not a store (`is_store`), whatever else it holds.

    store = open_store(path)               # validates manifest and file sizes: one-line HarnessError naming the file
    train = store.split("train")
    x = train.read([5, 1, 9])              # uint8 [3, 3, r, r], in the order given
    y = train.labels[[5, 1, 9]]            # int64
    train.originals([5])                   # absolute path of the original image in the source folder
"""

from __future__ import annotations

import hashlib
import json
import os
import typing
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from harness.errors import HarnessError

STORE_VERSION = 2  # raise when the layout or the manifest's fields change; unknown versions are refused, not guessed
# the versions this harness reads: 1 (before the mean image) reads as a store without one
READS_VERSIONS = (1, 2)
MEAN_FILE = "train-mean.npy"
JPEG_MEAN_TOLERANCE = 2.0  # `verify`: mean absolute levels between a jpeg store's decoded mean and its stored one
MANIFEST = "manifest.json"
SPLITS = ("train", "val")
Format = typing.Literal["raw", "jpeg"]
FORMATS: tuple[str, ...] = typing.get_args(Format)
DEFAULT_FORMAT: Format = "raw"  # benchmarks/store_read.py: the fastest to read per core; jpeg is ~5x smaller
HASH_CHUNK = 64 * 2**20


@dataclass(frozen=True)
class Skipped:
    path: str  # relative to Manifest.source
    reason: str  # what PIL (or the resize) raised


@dataclass(frozen=True)
class SplitManifest:
    count: int
    per_class: tuple[int, ...]  # images of each class, aligned with Manifest.classes
    # relative source path (posix) of every stored image, in store order: in the manifest in version 1; None from
    # version 2 on, where they are in {split}-files.json (`files_file`), so that the manifest stays small at
    # ImageNet's 1.28M images and a run that reads the squares never loads them (docs/input-path.md)
    files: tuple[str, ...] | None
    skipped: tuple[Skipped, ...]  # files listed by the scan but left out
    nbytes: int  # bytes of the split's files in the store


@dataclass(frozen=True)
class Versions:
    harness: str
    torch: str
    torchvision: str
    pillow: str
    numpy: str


@dataclass(frozen=True)
class Manifest:
    version: int  # STORE_VERSION of the harness that wrote it
    format: Format
    resize: int  # shorter side, then the central resize x resize patch (KSH12 s2: 256)
    quality: int | None  # JPEG quality of format "jpeg"; None for "raw"
    source: str  # absolute path of the ImageNet-style folder it was prepared from
    source_listing: str  # sha256 prefix of (relative path, size, mtime) of every scanned file: the folder unchanged?
    classes: tuple[str, ...]
    train: SplitManifest
    val: SplitManifest
    fingerprint: str  # sha256 prefix over stored bytes, labels and settings; the same folder gives the same one
    created: str  # UTC, ISO 8601
    seconds: float  # how long preparing took
    versions: Versions
    mean: str | None = None  # the mean image's file (MEAN_FILE) from version 2 on; None: a version 1 store, none

    def split(self, name: str) -> SplitManifest:
        if name not in SPLITS:
            raise HarnessError(f"unknown split {name!r}; a store has {', '.join(SPLITS)}")
        return self.train if name == "train" else self.val

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse a manifest; ValueError (or KeyError, TypeError) on anything but exactly this version's fields."""
        obj = json.loads(text)
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        version = obj.get("version")
        if version not in READS_VERSIONS or isinstance(version, bool):
            raise _VersionError(version)
        m = _fields(cls, obj, absent=() if version >= 2 else ("mean",))
        m["classes"] = tuple(_check(str, c) for c in m["classes"])
        for split in SPLITS:
            s = _fields(SplitManifest, m[split])
            s["per_class"] = tuple(_check(int, n) for n in s["per_class"])
            if version >= 2:
                if s["files"] is not None:
                    raise ValueError(f"{split}.files: expected null (the paths are in {files_file(split)})")
            else:
                s["files"] = tuple(_check(str, f) for f in s["files"])
            s["skipped"] = tuple(Skipped(**_fields(Skipped, k)) for k in s["skipped"])
            m[split] = SplitManifest(**s)
        m["versions"] = Versions(**_fields(Versions, m["versions"]))
        manifest = cls(**m)
        if manifest.format not in FORMATS:
            raise ValueError(f"unknown format {manifest.format!r}")
        for k in ("resize", "version"):
            _check(int, getattr(manifest, k))
        if manifest.mean not in (None, MEAN_FILE):
            raise ValueError(f"mean {manifest.mean!r}: expected {MEAN_FILE!r} or null")
        return manifest


class _VersionError(ValueError):
    def __init__(self, version: object) -> None:
        reads = " and ".join(str(v) for v in READS_VERSIONS)
        super().__init__(f"store version {version!r}, this harness reads versions {reads}")


def _fields(cls: type, obj: object, absent: tuple[str, ...] = ()) -> dict:
    """`obj`'s keys, exactly `cls`'s fields less `absent` (fields an older version did not write)."""
    if not isinstance(obj, dict):
        raise ValueError(f"{cls.__name__}: expected an object, got {type(obj).__name__}")
    names = {f.name for f in fields(cls)} - set(absent)
    if set(obj) != names:
        raise ValueError(f"{cls.__name__}: missing {sorted(names - set(obj))}, unknown {sorted(set(obj) - names)}")
    return dict(obj)


def _check(kind: type, value: object) -> typing.Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"expected {kind.__name__}, got {value!r}")
    return value


# --- file names and the fingerprint (shared with harness.prepare, which writes them) ---------------------------------


def images_file(split: str, fmt: str) -> str:
    return f"{split}-images.npy" if fmt == "raw" else f"{split}-images.jpeg"


def labels_file(split: str) -> str:
    return f"{split}-labels.npy"


def files_file(split: str) -> str:
    return f"{split}-files.json"


def offsets_file(split: str) -> str:
    return f"{split}-offsets.npy"


def fingerprint(fmt: str, resize: int, quality: int | None, classes: Sequence[str], splits: Sequence[tuple]) -> str:
    """sha256 prefix over the settings, and per split its name, the sha256 of its image bytes (raw: the array's
    payload; jpeg: the concatenated file) and its labels. No paths, times or versions: preparing the same folder
    again (with the same Pillow) gives the same fingerprint. `splits`: (name, image-bytes digest, labels) each."""
    h = hashlib.sha256(json.dumps([fmt, resize, quality, list(classes)]).encode())
    for name, image_digest, labels in splits:
        h.update(name.encode() + bytes.fromhex(image_digest))
        h.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    return h.hexdigest()[:16]


# --- reading --------------------------------------------------------------------------------------------------------


def is_store(path: str | os.PathLike) -> bool:
    """A folder holding a manifest.json (written last when a store is made)."""
    return (Path(path) / MANIFEST).is_file()


def read_manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    if not path.is_file():
        raise HarnessError(
            f"{root} has no {MANIFEST}: not a prepared store (make one with `python -m harness prepare --data DIR "
            f"--out {root}`)"
        )
    try:
        return Manifest.from_json(path.read_text())
    except _VersionError as e:
        raise HarnessError(f"{path}: {e}; prepare the store again") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise HarnessError(f"{path} is corrupt ({type(e).__name__}: {e}); prepare the store again") from None


def open_store(path: str | os.PathLike) -> PreparedStore:
    """Open and validate a store: its manifest, every file's presence and size, and the labels (range, counts).
    The image bytes themselves are not read (`PreparedStore.verify` does that)."""
    root = Path(path).expanduser().absolute()
    if not root.is_dir():
        raise HarnessError(f"prepared store {root} does not exist or is not a folder")
    manifest = read_manifest(root)
    return PreparedStore(root, manifest, {s: _open_split(root, manifest, s) for s in SPLITS})


def _open_split(root: Path, m: Manifest, split: str) -> SplitReader:
    sm = m.split(split)
    if (sm.files is not None and len(sm.files) != sm.count) or len(sm.per_class) != len(m.classes):
        n = len(sm.files) if sm.files is not None else "its"
        raise HarnessError(f"{root / MANIFEST} is corrupt: {split} lists {n} files for {sm.count} images")
    files_path = root / files_file(split)
    if sm.files is None and not files_path.is_file():
        raise HarnessError(f"{files_path} is missing; prepare the store again")
    labels = _load_small(root / labels_file(split), (sm.count,))
    if sm.count and (labels.min() < 0 or labels.max() >= len(m.classes)):
        bad = int(labels[(labels < 0) | (labels >= len(m.classes))][0])
        raise HarnessError(f"{root / labels_file(split)}: label {bad} out of range [0, {len(m.classes)})")
    if tuple(np.bincount(labels, minlength=len(m.classes)).tolist()) != sm.per_class:
        raise HarnessError(f"{root / labels_file(split)}: per-class counts differ from {MANIFEST}'s")
    image_path = root / images_file(split, m.format)
    offsets = None
    if m.format == "raw":
        expected = _npy_data_offset(image_path, (sm.count, 3, m.resize, m.resize)) + sm.count * 3 * m.resize**2
    else:
        offsets = _load_small(root / offsets_file(split), (sm.count + 1,))
        if offsets[0] != 0 or np.any(np.diff(offsets) <= 0):
            raise HarnessError(f"{root / offsets_file(split)} is corrupt: offsets do not start at 0 and increase")
        expected = int(offsets[-1])
    size = _size(image_path)
    if size != expected:
        what = "truncated" if size < expected else "longer than expected"
        raise HarnessError(f"{image_path} is {what}: {size} bytes, expected {expected}; prepare the store again")
    return SplitReader(
        image_path, m.format, m.resize, labels, offsets, m.source, sm.files if sm.files is not None else files_path
    )


def _load_files(path: Path, n: int) -> list[str]:
    """A {split}-files.json: a JSON array of exactly `n` strings (JSON: nothing read here runs code)."""
    try:
        files = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{path} is missing; prepare the store again") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise HarnessError(f"{path} is corrupt ({type(e).__name__}: {e}); prepare the store again") from None
    if not isinstance(files, list) or len(files) != n or not all(isinstance(f, str) for f in files):
        raise HarnessError(f"{path} is corrupt: expected a JSON array of {n} paths; prepare the store again")
    return files


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as e:
        raise HarnessError(f"cannot read {path}: {e.strerror or e}; prepare the store again") from None


def _load_small(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """An int64 .npy of exactly `shape`, read whole (labels, offsets)."""
    try:
        a = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise HarnessError(f"{path} is missing; prepare the store again") from None
    except (OSError, ValueError, EOFError) as e:
        raise HarnessError(f"{path} is corrupt or truncated ({e}); prepare the store again") from None
    if a.dtype != np.int64 or a.shape != shape:
        raise HarnessError(f"{path} holds {a.dtype} {list(a.shape)}, expected int64 {list(shape)}")
    return a


def _npy_data_offset(path: Path, shape: tuple[int, ...]) -> int:
    """Where a uint8 C-order .npy of `shape` starts its data; HarnessError if the header says otherwise."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            got, fortran, dtype = read(f)
            offset = f.tell()
    except FileNotFoundError:
        raise HarnessError(f"{path} is missing; prepare the store again") from None
    except (OSError, ValueError, EOFError) as e:
        raise HarnessError(f"{path} is corrupt ({e}); prepare the store again") from None
    if dtype != np.uint8 or fortran or tuple(got) != shape:
        raise HarnessError(f"{path} holds {dtype} {list(got)}, expected uint8 {list(shape)} (C order)")
    return offset


@dataclass(frozen=True)
class PreparedStore:
    root: Path
    manifest: Manifest
    splits: dict[str, SplitReader]

    def split(self, name: str) -> SplitReader:
        self.manifest.split(name)  # unknown names -> HarnessError
        return self.splits[name]

    def mean_image(self) -> np.ndarray | None:
        """float32 [3, r, r]: the per-pixel mean of the training squares (0-255 units), read without unpickling;
        None for a store prepared before stores held it (version 1)."""
        if self.manifest.mean is None:
            return None
        path = self.root / self.manifest.mean
        r = self.manifest.resize
        try:
            a = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise HarnessError(f"{path} is missing; prepare the store again") from None
        except (OSError, ValueError, EOFError) as e:
            raise HarnessError(f"{path} is corrupt or truncated ({e}); prepare the store again") from None
        if a.dtype != np.float32 or a.shape != (3, r, r):
            raise HarnessError(f"{path} holds {a.dtype} {list(a.shape)}, expected float32 {[3, r, r]}")
        if not np.all((a >= 0) & (a <= 255)):  # also false for NaN
            raise HarnessError(f"{path} holds values outside 0..255 (a mean of uint8 pixels); prepare the store again")
        return a

    def verify(self) -> None:
        """Read every stored byte and compare the fingerprint with the manifest's, then recompute the mean image
        from the training squares and compare it with the stored one (slow: the whole store)."""
        m = self.manifest
        digests = [(s, self.splits[s].payload_digest(), self.splits[s].labels) for s in SPLITS]
        got = fingerprint(m.format, m.resize, m.quality, m.classes, digests)
        if got != m.fingerprint:
            raise HarnessError(f"{self.root}: stored bytes have fingerprint {got}, the manifest says {m.fingerprint}")
        stored = self.mean_image()
        if stored is None:
            return
        train, total = self.splits["train"], np.zeros(stored.shape, dtype=np.int64)
        for start in range(0, len(train), 256):
            total += train.read(range(start, min(start + 256, len(train)))).numpy().sum(axis=0, dtype=np.int64)
        mean = (total / len(train)).astype(np.float32)
        # raw squares are what `prepare` summed: the same integers, the same float32 mean. A jpeg store holds
        # re-encoded squares (q95 4:4:4: 1.5 levels of mean absolute error, prepare.py), so its decoded mean may
        # differ from the stored mean of the originals by about that much on average, not more
        off = float(np.abs(mean - stored).max() if m.format == "raw" else np.abs(mean - stored).mean())
        if off > (0.0 if m.format == "raw" else JPEG_MEAN_TOLERANCE):
            raise HarnessError(
                f"{self.root / MEAN_FILE}: differs from the training squares' mean by {off:.3g} levels; prepare the "
                "store again"
            )


class SplitReader:
    """One split of a store: `labels`, `read(indices)` -> uint8 [B, 3, r, r], `originals(indices)` -> paths.

    Picklable for DataLoader workers: the image file is opened lazily in each process, never carried in the
    pickle (a pickled np.memmap would copy the whole array)."""

    def __init__(
        self,
        path: Path,
        fmt: str,
        resize: int,
        labels: np.ndarray,
        offsets: np.ndarray | None,
        source: str,
        files: Sequence[str] | Path,
    ) -> None:
        """`files`: the source paths (a version 1 manifest's), or the {split}-files.json that lists them, read on
        the first `originals` call in each process (so never pickled to a DataLoader worker that reads squares)."""
        self.path, self.format, self.resize = path, fmt, resize
        self.labels = labels  # int64 [N]
        self.offsets = offsets  # jpeg: int64 [N + 1]
        self.source = source
        self._files_path = files if isinstance(files, Path) else None
        self._files: Sequence[str] | None = None if isinstance(files, Path) else files
        self.image_bytes = 3 * resize * resize
        self._data_offset = _npy_data_offset(path, (len(labels), 3, resize, resize)) if fmt == "raw" else 0
        self._data: np.ndarray | int | None = None  # see _open
        self._pid = -1

    def __len__(self) -> int:
        return len(self.labels)

    def __getstate__(self) -> dict:
        state = {**self.__dict__, "_data": None, "_pid": -1}
        if self._files_path is not None:
            state["_files"] = None  # read again from the file where it is needed
        return state

    def __del__(self) -> None:
        if isinstance(getattr(self, "_data", None), int) and self._pid == os.getpid():
            os.close(self._data)

    def _open(self) -> np.ndarray | int:
        """raw: the image array as a read-only memmap; jpeg: a file descriptor. Opened on first use in each process
        (after a fork or an unpickle), so DataLoader workers never share or copy it."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            if self.format == "raw":
                self._data = np.load(self.path, mmap_mode="r", allow_pickle=False)
            else:
                self._data = os.open(self.path, os.O_RDONLY)
        assert self._data is not None
        return self._data

    def _indices(self, indices: Sequence[int]) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"index out of range for a split of {len(self)} images")
        return idx

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        """uint8 [B, 3, r, r] of the images at `indices`, in the order given."""
        idx = self._indices(indices)
        data = self._open()
        if self.format == "raw":
            # one copy from the page cache straight into the batch; measured faster than a pread per image and than
            # a gather in sorted order (benchmarks/store_read.py)
            out = torch.empty((len(idx), 3, self.resize, self.resize), dtype=torch.uint8)
            np.take(data, idx, axis=0, out=out.numpy(), mode="clip")  # checked above; "raise" would buffer `out`
            return out
        from torchvision.io import ImageReadMode, decode_jpeg

        assert self.offsets is not None and isinstance(data, int)
        encoded = []
        for i in idx:
            start, end = int(self.offsets[i]), int(self.offsets[i + 1])
            buf = torch.empty(end - start, dtype=torch.uint8)
            if os.preadv(data, [buf.numpy()], start) != end - start:
                raise HarnessError(f"{self.path} is truncated; prepare the store again")
            encoded.append(buf)
        if not encoded:
            return torch.empty((0, 3, self.resize, self.resize), dtype=torch.uint8)
        with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders for TorchCodec's, not installed here
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.stack(decode_jpeg(encoded, mode=ImageReadMode.RGB))  # libjpeg-turbo

    def originals(self, indices: Sequence[int]) -> list[str]:
        """Absolute paths of the original images in the source folder (for recipes that crop the originals,
        e.g. torchvision's RandomResizedCrop), without rescanning or re-checking the folder."""
        idx = self._indices(indices)
        files = self.files()
        return [os.path.join(self.source, files[int(i)]) for i in idx]

    def files(self) -> Sequence[str]:
        """Every stored image's source path relative to the source folder, in store order."""
        if self._files is None:
            assert self._files_path is not None
            self._files = _load_files(self._files_path, len(self))
        return self._files

    def payload_digest(self) -> str:
        """sha256 of the stored image bytes (raw: the array's data; jpeg: the whole file)."""
        h = hashlib.sha256()
        for chunk in self._chunks():
            h.update(chunk)
        return h.hexdigest()

    def _chunks(self) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            f.seek(self._data_offset)
            while chunk := f.read(HASH_CHUNK):
                yield chunk

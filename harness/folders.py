"""Reading an ImageNet-style folder's tree: DIR/train/<class>/... and DIR/val/<class>/..., links followed, each real
folder and image counted once (docs/security.md). Shared by the folder data set (harness.imagefolder) and
`harness prepare` (harness.prepare), which lists the same images in the same order."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from torchvision.datasets.folder import IMG_EXTENSIONS

from harness.errors import HarnessError

__all__ = ["IMG_EXTENSIONS", "LAYOUT", "LinkedTwiceWarning", "check_dir", "entries", "is_image", "scan_split"]

LAYOUT = "expected DIR/train/<class>/*.JPEG and DIR/val/<class>/*.JPEG"


def check_dir(root: Path | None, what: str, layout: str = LAYOUT) -> Path:
    if root is None:
        raise HarnessError(f"dataset {what} needs a data directory (--data DIR)")
    root = Path(root).expanduser()
    if not root.exists():
        raise HarnessError(f"data directory {root} does not exist")
    if not root.is_dir():
        raise HarnessError(f"data path {root} is not a directory")
    if not any(root.iterdir()):
        raise HarnessError(f"data directory {root} is empty; {layout}")
    return root


def is_image(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS) and not name.startswith(".")


def scan_split(split_dir: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Class names (sorted folder names) and (path, class index) for every image file, in sorted order."""
    if not split_dir.is_dir():
        raise HarnessError(f"{split_dir.parent} has no {split_dir.name}/ folder; {LAYOUT}")
    classes = sorted(d.name for d in entries(split_dir) if _is_dir(d) and not d.name.startswith("."))
    if not classes:
        raise HarnessError(f"{split_dir} has no class folders; {LAYOUT}")
    samples: list[tuple[str, int]] = []
    seen_dirs: set[str] = set()  # real paths: each folder visited once, whatever links lead to it
    seen_files: set[str] = set()
    repeats = 0
    for idx, name in enumerate(classes):
        files, again = _image_files(split_dir / name, seen_dirs, seen_files)
        repeats += again
        if not files:
            raise HarnessError(f"class folder {split_dir / name} has no images ({', '.join(IMG_EXTENSIONS)})")
        samples += [(f, idx) for f in files]
    if repeats:
        _warn_once(
            f"{split_dir}: {repeats} path(s) lead through symbolic links to a folder or image already listed (a link "
            "loop, or two links to one place); each folder and image is counted once",
            LinkedTwiceWarning,
        )
    return classes, samples


class LinkedTwiceWarning(UserWarning):
    """Symbolic links reach a folder or file of an image tree a second time (e.g. a loop); it is counted once."""


def entries(folder: Path | str) -> list[os.DirEntry]:
    """A folder's entries; a folder that cannot be read is a HarnessError (os.walk would skip it silently)."""
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError as e:
        raise HarnessError(f"cannot read folder {folder}: {e.strerror or e}") from None


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows symbolic links
    except OSError:
        return False


def _image_files(top: Path, seen_dirs: set[str], seen_files: set[str]) -> tuple[list[str], int]:
    """Image files under `top` (links followed), sorted, each real folder visited once and each real file listed
    once across calls that share `seen_dirs` and `seen_files`; and how many paths reached something already seen."""
    files: list[str] = []
    repeats = 0
    stack = [str(top)]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in seen_dirs:
            repeats += 1
            continue
        seen_dirs.add(real)
        subdirs = []
        for entry in sorted(entries(folder), key=lambda e: e.name):
            if _is_dir(entry):
                subdirs.append(entry.path)
            elif is_image(entry.name):
                real_file = os.path.realpath(entry.path)
                if real_file in seen_files:
                    repeats += 1
                    continue
                seen_files.add(real_file)
                files.append(entry.path)
        stack.extend(reversed(subdirs))  # depth first, in name order
    return sorted(files), repeats


_WARNED: set[str] = set()  # messages already warned in this process


def _warn_once(message: str, category: type[Warning]) -> None:
    """Warn with `message` once per process: data are loaded again (e.g. once per test protocol), and the warnings
    module's own once-only registry is reset whenever a library changes the warning filters."""
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, category, stacklevel=3)

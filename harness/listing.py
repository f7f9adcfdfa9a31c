"""`harness prepare`'s listing of a source folder (harness.prepare): every symbolic link resolved once, a class is
what its folder resolves to, and what is read is what the listing resolved. A link that dangles, loops, or leads out
of its class folder into the rest of the source folder (another class, the split folder: its images would be
labelled with the wrong class) is left out with the reason (the manifest's `skipped`, harness.prepared); a file
link to outside the source folder (a subset linked from a full copy) is read; a folder link must stay inside its
class folder. The images come in the order `harness.folders.scan_split` gives.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.folders import IMG_EXTENSIONS, LAYOUT, entries, is_image
from harness.prepared import SPLITS, Skipped


@dataclass(frozen=True, slots=True)  # one per image: 1.28M for ILSVRC-2012's train
class Listed:
    path: str  # absolute, as listed under the source folder (through any links): what the manifest names
    real: str  # what it resolves to, resolved once here: the file that is stat'ed and read
    label: int
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class SplitListing:
    classes: list[str]
    images: list[Listed]  # class by class, each class's in path order
    skipped: list[Skipped]  # entries left out while listing (links), paths relative to the source folder


def scan_split(root: Path, split: str) -> SplitListing:
    """Class folders (sorted names; links resolved) and their images, as `harness.folders.scan_split` lists them, with
    every link resolved once and those that dangle, loop or leave their class folder left out with a reason."""
    split_dir = root / split
    if not split_dir.is_dir():
        raise HarnessError(f"{root} has no {split}/ folder; {LAYOUT}")
    classes: list[str] = []
    reals: list[str] = []
    skipped: list[Skipped] = []
    for entry in sorted(entries(split_dir), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        real, why = _resolve(entry.path)
        if real is None:
            skipped.append(Skipped(relative(root, entry.path), f"{why}: not read as a class folder"))
        elif os.path.isdir(real):
            classes.append(entry.name)
            reals.append(real)
    if not classes:
        raise HarnessError(f"{split_dir} has no class folders; {LAYOUT}")
    _check_disjoint(split_dir, classes, reals)
    images: list[Listed] = []
    seen_files: dict[str, str] = {}  # real path -> the listed path that took it, across the split's classes
    for label, (name, real) in enumerate(zip(classes, reals)):
        found, left_out = _class_images(root, split_dir / name, real, label, seen_files)
        if not found:
            why = f"; {len(left_out)} left out, e.g. {left_out[0].path}: {left_out[0].reason}" if left_out else ""
            raise HarnessError(f"class folder {split_dir / name} has no images ({', '.join(IMG_EXTENSIONS)}){why}")
        images += found
        skipped += left_out
    return SplitListing(classes, images, skipped)


def _check_disjoint(split_dir: Path, classes: list[str], reals: list[str]) -> None:
    """No two class folders resolve to one folder or one inside the other (its images would be in both)."""
    owner = {}
    for name, real in zip(classes, reals):
        if real in owner:
            raise HarnessError(f"class folders {split_dir / owner[real]} and {split_dir / name} are the same folder")
        owner[real] = name
    for name, real in zip(classes, reals):
        for parent in Path(real).parents:
            if str(parent) in owner:
                raise HarnessError(
                    f"class folder {split_dir / name} resolves to {real}, inside class folder "
                    f"{split_dir / owner[str(parent)]}: its images would be in both classes"
                )


def _class_images(
    root: Path, class_dir: Path, class_real: str, label: int, seen_files: dict[str, str]
) -> tuple[list[Listed], list[Skipped]]:
    """The images under one class folder (links followed once, each real folder and file listed once) and the
    entries left out; depth first, plain entries before links (the real name of a folder wins over a link to it)."""
    found: list[Listed] = []
    skipped: list[Skipped] = []
    seen_dirs = {class_real: str(class_dir)}
    stack = [(str(class_dir), class_real)]
    while stack:
        folder, real_folder = stack.pop()
        subdirs = []
        for entry in sorted(entries(folder), key=lambda e: (e.is_symlink(), e.name)):
            rel = relative(root, entry.path)
            link = entry.is_symlink()
            if link:
                real, why = _resolve(entry.path)
                if real is None:
                    skipped.append(Skipped(rel, why))
                    continue
            else:
                real = os.path.join(real_folder, entry.name)
            try:
                st = os.stat(real)
            except OSError as e:
                skipped.append(Skipped(rel, f"cannot stat: {e.strerror or e}"))
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if not is_dir and not is_image(entry.name):
                continue
            if link and not _inside(real, class_real) and (is_dir or _inside(real, str(root))):
                where = relative(root, real) if _inside(real, str(root)) else real
                skipped.append(Skipped(rel, f"a symbolic link out of its class folder {relative(root, class_dir)} (to "
                                            f"{where}): not listed under this class"))  # fmt: skip
                continue
            if is_dir:
                if real in seen_dirs:
                    loop = _inside(real_folder, real)
                    why = "a symbolic link loop: it leads back to" if loop else "a second path to the folder"
                    skipped.append(Skipped(rel, f"{why} {relative(root, seen_dirs[real])}"))
                    continue
                seen_dirs[real] = entry.path
                subdirs.append((entry.path, real))
            else:
                if not stat.S_ISREG(st.st_mode):
                    skipped.append(Skipped(rel, "not a regular file"))
                elif real in seen_files:
                    skipped.append(Skipped(rel, f"the same file as {relative(root, seen_files[real])}"))
                else:
                    seen_files[real] = entry.path
                    found.append(Listed(entry.path, real, label, st.st_size, st.st_mtime_ns))
        stack.extend(reversed(subdirs))  # depth first, in name order
    found.sort(key=lambda x: x.path)  # the order `harness.folders.scan_split` gives
    return found, sorted(skipped, key=lambda s: s.path)


def _resolve(path: str) -> tuple[str, None] | tuple[None, str]:
    """(the real path, None), or (None, why it does not resolve): a missing target or a loop."""
    try:
        return os.path.realpath(path, strict=True), None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None, "a loop of symbolic links (it never reaches a file or folder)"
        if isinstance(e, FileNotFoundError):
            with contextlib.suppress(OSError):
                return None, f"a symbolic link to {os.readlink(path)!r}, which does not exist"
        return None, f"cannot resolve: {e.strerror or e}"


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def relative(root: Path, path: str | Path) -> str:
    return Path(path).relative_to(root).as_posix()


def listing_digest(root: Path, listings: dict[str, SplitListing]) -> str:
    """sha256 prefix of (relative path, size, mtime) of every listed image, then every left-out entry and why: a
    link that dangles today and resolves tomorrow changes the listing."""
    h = hashlib.sha256()
    for split in SPLITS:
        for x in listings[split].images:
            h.update(f"{relative(root, x.path)}\t{x.size}\t{x.mtime_ns}\n".encode())
    for split in SPLITS:
        for k in listings[split].skipped:
            h.update(f"{k.path}\tleft out\t{k.reason}\n".encode())
    return h.hexdigest()[:16]

"""`harness prepare` on hostile folders, in this process: symbolic links that dangle, loop on themselves, loop to a
folder above, lead into another class's folder or out of the source; an image-named FIFO; two class folders that
are one; a destination another `prepare` holds (its lock, taken here); skip reasons without object addresses; sizes
and qualities named by their flag. Every case ends in a store whose manifest says what was left out and why, or in
one HarnessError line: never a traceback, never an image under the wrong class.

Real files: JPEGs cut from scikit-learn's photos (tests/conftest.py), links made with os.symlink, at 16 px.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from harness import locks
from harness.errors import HarnessError
from harness.prepare import LOCK, MAX_RESIZE, prepare
from harness.prepared import Manifest, open_store
from tests.support import photo_crop

R = 16  # resize: small, so that every test is quick
CLASSES = ("cat", "dog")


def write_tree(root: Path, n: int = 2) -> Path:
    """root/{train,val}/{cat,dog}/<class>_<i>.JPEG, n photos each (cat: china.jpg, dog: flower.jpg)."""
    for split, offset in (("train", 0), ("val", n)):
        for name, photo in zip(CLASSES, ("china", "flower")):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                img = Image.fromarray(photo_crop(photo, i + offset))
                img.save(root / split / name / f"{name}_{i}.JPEG", quality=90)
    return root


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "src")


def run(src: Path, out: Path, **kw: object) -> Manifest:
    return prepare(src, out, resize=R, workers=1, verbose=False, **kw)  # type: ignore[arg-type]


def skipped(m: Manifest, split: str = "train") -> dict[str, str]:
    return {k.path: k.reason for k in m.split(split).skipped}


def labelled(out: Path, split: str = "train") -> dict[str, str]:
    """Every stored image's source path -> the class name its label says."""
    store = open_store(out)
    s = store.split(split)
    return {f: store.manifest.classes[int(y)] for f, y in zip(s.files(), s.labels.tolist())}


def test_a_dangling_and_a_self_looping_link_are_skipped_with_reasons(tree: Path, tmp_path: Path) -> None:
    os.symlink("nowhere.JPEG", tree / "train/cat/dangling.JPEG")
    os.symlink("self.JPEG", tree / "train/cat/self.JPEG")
    os.symlink("b.JPEG", tree / "train/cat/a.JPEG")  # a loop of two links
    os.symlink("a.JPEG", tree / "train/cat/b.JPEG")
    m = run(tree, tmp_path / "out")
    why = skipped(m)
    assert why["train/cat/dangling.JPEG"] == "a symbolic link to 'nowhere.JPEG', which does not exist"
    for name in ("self", "a", "b"):
        assert why[f"train/cat/{name}.JPEG"].startswith("a loop of symbolic links"), why
    assert m.train.per_class == (2, 2) and labelled(tmp_path / "out") == {
        "train/cat/cat_0.JPEG": "cat", "train/cat/cat_1.JPEG": "cat",
        "train/dog/dog_0.JPEG": "dog", "train/dog/dog_1.JPEG": "dog",
    }  # fmt: skip


def test_a_folder_link_loop_is_skipped_and_blames_no_other_class(tree: Path, tmp_path: Path) -> None:
    """`train/cat/loop -> ..` once made the error name another class ("train/dog has no images")."""
    os.symlink("..", tree / "train/cat/loop")  # the split folder: every class, again
    os.symlink(".", tree / "train/cat/here")  # the class folder itself
    m = run(tree, tmp_path / "out")
    why = skipped(m)
    assert why["train/cat/loop"] == (
        "a symbolic link out of its class folder train/cat (to train): not listed under this class"
    )
    assert why["train/cat/here"] == "a symbolic link loop: it leads back to train/cat"
    assert m.train.per_class == (2, 2) and m.val.per_class == (2, 2)


def test_links_into_another_class_never_label_its_images_with_the_linking_class(tree: Path, tmp_path: Path) -> None:
    os.symlink("../dog", tree / "train/cat/dogs")  # a folder link into the other class
    os.symlink("../dog/dog_0.JPEG", tree / "train/cat/stray.JPEG")  # a file link into it
    m = run(tree, tmp_path / "out")
    assert labelled(tmp_path / "out") == {
        "train/cat/cat_0.JPEG": "cat", "train/cat/cat_1.JPEG": "cat",
        "train/dog/dog_0.JPEG": "dog", "train/dog/dog_1.JPEG": "dog",
    }  # fmt: skip
    why = skipped(m)
    assert why["train/cat/dogs"] == "a symbolic link out of its class folder train/cat (to train/dog): not listed " \
        "under this class"  # fmt: skip
    assert "(to train/dog/dog_0.JPEG)" in why["train/cat/stray.JPEG"]


def test_a_file_link_out_of_the_source_is_read_once_under_its_class(tree: Path, tmp_path: Path) -> None:
    """A subset linked file by file from a full copy elsewhere: read, under the class whose folder holds the link;
    a second link to the same file (in the other class) is left out, not labelled twice."""
    elsewhere = tmp_path / "full-copy"
    elsewhere.mkdir()
    Image.fromarray(photo_crop("china", 9)).save(elsewhere / "extra.JPEG", quality=90)
    os.symlink(elsewhere / "extra.JPEG", tree / "train/cat/extra.JPEG")
    os.symlink(elsewhere / "extra.JPEG", tree / "train/dog/extra.JPEG")
    os.symlink(elsewhere, tree / "train/cat/full")  # a folder link out of the class folder: not followed
    m = run(tree, tmp_path / "out")
    assert labelled(tmp_path / "out")["train/cat/extra.JPEG"] == "cat" and m.train.per_class == (3, 2)
    why = skipped(m)
    assert why["train/dog/extra.JPEG"] == "the same file as train/cat/extra.JPEG"
    assert why["train/cat/full"].startswith(f"a symbolic link out of its class folder train/cat (to {elsewhere})")


def test_an_image_named_fifo_is_skipped_not_opened(tree: Path, tmp_path: Path) -> None:
    os.mkfifo(tree / "train/dog/pipe.JPEG")  # opening it would wait for a writer forever
    m = run(tree, tmp_path / "out")
    assert skipped(m) == {"train/dog/pipe.JPEG": "not a regular file"}


def test_class_folders_that_are_one_folder_or_nested_are_refused(tree: Path, tmp_path: Path) -> None:
    os.symlink("dog", tree / "train/wolf")
    os.symlink("dog", tree / "val/wolf")
    with pytest.raises(HarnessError, match=r"class folders .*train/dog and .*train/wolf are the same folder"):
        run(tree, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # made by the run, removed with nothing in it
    for split in ("train", "val"):
        (tree / split / "wolf").unlink()
        os.symlink(tree / split, tree / split / "wolf")  # the split folder itself: every class inside it
    with pytest.raises(HarnessError, match=r"class folder .*train/cat resolves to .* inside class folder .*wolf"):
        run(tree, tmp_path / "out")


def test_a_class_of_bad_links_only_says_why_it_has_no_images(tree: Path, tmp_path: Path) -> None:
    for f in (tree / "train/cat").iterdir():
        f.unlink()
    os.symlink("missing.JPEG", tree / "train/cat/gone.JPEG")
    with pytest.raises(HarnessError) as e:
        run(tree, tmp_path / "out")
    assert str(e.value).startswith(f"class folder {tree / 'train/cat'} has no images")
    assert str(e.value).endswith("1 left out, e.g. train/cat/gone.JPEG: a symbolic link to 'missing.JPEG', which "
                                 "does not exist")  # fmt: skip
    assert "dog" not in str(e.value)


def test_a_dangling_class_link_is_recorded_not_silently_dropped(tree: Path, tmp_path: Path) -> None:
    os.symlink("nowhere", tree / "train/ghost")
    m = run(tree, tmp_path / "out")
    assert m.classes == CLASSES
    assert skipped(m) == {
        "train/ghost": "a symbolic link to 'nowhere', which does not exist: not read as a class folder"
    }


def test_skip_reasons_carry_no_object_addresses(tree: Path, tmp_path: Path) -> None:
    (tree / "train/cat/garbage.JPEG").write_bytes(os.urandom(300))
    m = run(tree, tmp_path / "out")
    reason = skipped(m)["train/cat/garbage.JPEG"]
    assert reason == "UnidentifiedImageError: cannot identify image file", reason
    assert not re.search(r"0x[0-9a-f]{6,}", (tmp_path / "out/manifest.json").read_text())


def test_the_listing_of_a_folder_without_links_is_the_one_older_stores_recorded(tree: Path, tmp_path: Path) -> None:
    """source_listing: sha256 of (relative path, size, mtime) per image, train then val, as before links were
    resolved here, so that a store prepared earlier from the same folder is still "already prepared"."""
    m = run(tree, tmp_path / "out")
    h = hashlib.sha256()
    for split in ("train", "val"):
        for f in sorted((tree / split).rglob("*.JPEG")):
            st = f.stat()
            h.update(f"{f.relative_to(tree).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    assert m.source_listing == h.hexdigest()[:16]
    os.symlink("nowhere", tree / "val/dog/new.JPEG")  # a left-out entry changes the listing
    with pytest.raises(HarnessError, match="has changed since"):
        run(tree, tmp_path / "out")


def test_a_destination_another_prepare_holds_is_refused_in_one_line(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with locks.hold(out / LOCK, "test"):  # what a running `prepare` holds (flock: another open file conflicts)
        with pytest.raises(HarnessError) as e:
            run(tree, out)
        assert sorted(p.name for p in out.iterdir()) == [LOCK]  # nothing checked, nothing written
    assert str(e.value) == f"{out} is being prepared by PID {os.getpid()} on {locks.hostname()} (lock {out / LOCK}); " \
        "wait for it to finish"  # fmt: skip
    (out / LOCK).write_text("12345 somewhere\n")  # the file a killed run leaves: unlocked, so no one holds it
    run(tree, out)
    assert sorted(p.name for p in out.iterdir())[0] == "manifest.json" and not (out / LOCK).exists()


def parse_error(argv: list[str]) -> str:
    """The line argparse prints for a bad option (it exits 2 through SystemExit, before any handler runs)."""
    from harness.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return err.getvalue()


def test_sizes_are_refused_naming_their_flag(harness_main, tree: Path, tmp_path: Path) -> None:
    args = ["prepare", "--data", str(tree), "--out", str(tmp_path / "out")]
    needle = f"--resize must be 1..{MAX_RESIZE} pixels (KSH12 s2: 256), got 1000000"
    assert harness_main([*args, "--resize", "1000000"]) == (2, "", f"harness: error: {needle}\n")
    for extra, needle in (
        (["--resize", "0"], "argument --resize: must be a positive integer, got 0"),
        (["--workers", "-3"], "argument --workers: must be a positive integer, got -3"),
        (["--quality", "0", "--format", "jpeg"], "argument --quality: must be in 1..100, got 0"),
    ):
        assert parse_error(args + extra) == f"harness prepare: error: {needle} (see `harness prepare -h`)\n"
    assert not (tmp_path / "out").exists()

"""Hostile input, in process: --data under a profile that does not read it; symbolic-link loops; relative SQLite
URIs; an unreachable store; bad values refused with one line and nothing recorded; 16-bit PNGs; unreadable-image
warnings printed once; the machine each run ran on. (SIGTERM is in tests/integration/test_signals.py, unreadable and
read-only folders in tests/integration/test_unprivileged.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import warnings
from pathlib import Path
from subprocess import CompletedProcess

import numpy as np
import pytest
from PIL import Image

from harness import mlruns, schema
from harness.config import choose_profile
from harness.errors import HarnessError
from harness.request import RunRequest
from tests.support import N_TRAIN, harness_here, mlflow_runs, one_line_error, store_uri

SMOKE = ("torchvision_alexnet", "--profile", "smoke")


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ) | extra


def harness(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 0) -> CompletedProcess:
    return harness_here(*args, cwd=cwd, env=env)


def nothing_recorded(uri: str) -> bool:
    db = mlruns.sqlite_path(uri)
    assert db is not None
    return not db.exists() or not (mlflow_runs(uri) or mlflow_runs(uri, "batch") or mlflow_runs(uri, "sweep"))


@pytest.fixture()
def photos_copy(photos: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(photos, tmp_path / "photos"))


# ---------------------------------------------------------------- 3. SIGTERM


# ---------------------------------------------------------------- 7. --data under a profile that does not read it


def test_data_under_a_profile_of_other_data_is_refused() -> None:
    for profile, dataset in (("smoke", "synthetic"), ("proxy", "mnist-clutter")):
        with pytest.raises(HarnessError, match=f"not read by the {profile} profile, which trains on {dataset}"):
            choose_profile(RunRequest(profile=profile, data="/data/imagenet"))
    with pytest.raises(HarnessError, match="not read"):
        choose_profile(RunRequest(dataset="synthetic", data="/data/imagenet"))
    profile, dataset = choose_profile(RunRequest(profile="smoke", dataset="imagefolder", data="/data/imagenet"))
    assert (profile.name, dataset) == ("smoke", "imagefolder")  # the folder, under the smoke profile's recipe


@pytest.mark.slow
def test_smoke_run_with_data_is_one_line_and_records_nothing(tmp_path: Path, photos: Path) -> None:
    uri = store_uri(tmp_path)
    r = harness("run", *SMOKE, "--data", str(photos), "--tracking-uri", uri, cwd=tmp_path)
    one_line_error(r.returncode, r.stderr, "is not read by the smoke profile")
    assert nothing_recorded(uri)


# ---------------------------------------------------------------- 8, 11, 12: image trees


def test_symlink_loop_visits_each_folder_once_and_warns_once(photos_copy: Path) -> None:
    from harness.data import DataSpec, load_datasets
    from harness.folders import LinkedTwiceWarning

    os.symlink(".", photos_copy / "train" / "china" / "loop")  # ln -s . train/china/loop
    os.symlink("../china", photos_copy / "train" / "china" / "again")  # a second way into the same folder
    os.symlink("../china/china_0.JPEG", photos_copy / "train" / "flower" / "borrowed.JPEG")  # a file linked twice
    spec = DataSpec("imagefolder", photos_copy, image_size=56, resize=64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = load_datasets(spec)
        second = load_datasets(spec, "ten_crop")
    linked = [w for w in caught if issubclass(w.category, LinkedTwiceWarning)]
    assert len(linked) == 1, [str(w.message) for w in caught]
    assert "3 path(s)" in str(linked[0].message) and str(photos_copy / "train") in str(linked[0].message)
    assert len(first.train) == len(second.train) == 3 * N_TRAIN  # not 8 -> 328
    assert len({os.path.realpath(p) for p, _ in first.train.samples}) == len(first.train)


def test_sixteen_bit_pngs_are_scaled_to_eight_bits(tmp_path: Path) -> None:
    import torch

    from harness.data import DataSpec, load_datasets
    from harness.decode import to_rgb
    from harness.transforms import MEAN, STD

    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    for split in ("train", "val"):
        for c, level in (("dark", 0.25), ("light", 0.75)):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(2):
                img = np.full((64, 64), round(level * 65535), np.uint16) if i == 0 else ramp
                Image.fromarray(img).save(tmp_path / split / c / f"{i}.png")
    with Image.open(tmp_path / "val" / "dark" / "0.png") as im:
        assert im.mode.startswith("I")  # PIL reads 16-bit grey as 16/32-bit integers
        assert im.convert("RGB").getpixel((0, 0)) == (255, 255, 255)  # what convert alone does: white
        assert to_rgb(im).getpixel((0, 0)) == (64, 64, 64)  # 16384 / 257
    with Image.open(tmp_path / "val" / "dark" / "1.png") as im:
        rgb = np.asarray(to_rgb(im))[..., 0].astype(int)
    np.testing.assert_array_equal(rgb, np.rint(ramp / 257.0).astype(int))
    ds = load_datasets(DataSpec("imagefolder", tmp_path, image_size=56, resize=64), "center")
    x = ds.val.inputs([0])[0]  # dark/0.png: a quarter grey
    pixels = x * torch.tensor(STD).view(3, 1, 1) + torch.tensor(MEAN).view(3, 1, 1)
    assert abs(float(pixels.mean()) - 64 / 255) < 0.01


@pytest.mark.slow
def test_image_tree_run_warns_each_bad_file_once_and_logs_the_machine(tmp_path: Path, photos_copy: Path) -> None:
    """A smoke run on a folder with a corrupt JPEG and a link loop: the corrupt file is warned once (not once per
    test protocol), the loop once, 18 training images counted; the run carries the machine it ran on."""
    import torch

    uri = store_uri(tmp_path)
    (photos_copy / "train" / "china" / "broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    os.symlink(".", photos_copy / "train" / "china" / "loop")
    r = harness(
        "run", *SMOKE, "--dataset", "imagefolder", "--data", str(photos_copy), "--epochs", "1", "--tracking-uri",
        uri, "--no-report", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("skipping unreadable image") == 1, r.stderr
    assert r.stderr.count("each folder and image is counted once") == 1, r.stderr
    (run,) = mlflow_runs(uri)
    assert run.data.params["train_size"] == str(3 * N_TRAIN) and run.data.metrics[schema.SKIPPED_IMAGES] == 1
    tags = run.data.tags
    assert tags[schema.TAG_ENV_CPU] and int(tags[schema.TAG_ENV_THREADS]) >= 1
    assert int(tags[schema.TAG_ENV_CPU_COUNT]) == os.cpu_count()
    assert tags["env.torch"] == torch.__version__.split("+")[0] or tags["env.torch"] == torch.__version__
    for lib in schema.ENV_LIBRARIES:
        assert tags[f"{schema.TAG_ENV_PREFIX}{lib}"], lib


# ---------------------------------------------------------------- 9, 10: where the store is


def test_relative_sqlite_uri_is_resolved_against_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert mlruns.resolve("sqlite:///mlflow.db") == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert mlruns.resolve(None) == mlruns.default_uri() == f"sqlite:///{tmp_path / 'env.db'}"
    assert mlruns.resolve("sqlite:////abs/m.db") == "sqlite:////abs/m.db"
    assert mlruns.resolve("http://host:5000") == "http://host:5000"
    assert RunRequest(tracking_uri="sqlite:///sub/m.db").uri == f"sqlite:///{tmp_path / 'sub' / 'm.db'}"


@pytest.mark.slow
@pytest.mark.parametrize("via", ["flag", "environment"])
def test_run_with_a_relative_sqlite_uri(tmp_path: Path, via: str) -> None:
    relative = "sqlite:///rel/mlflow.db"  # the form MLflow's own documentation uses
    args = ("run", *SMOKE, "--epochs", "1", "--no-report")
    if via == "flag":
        r = harness(*args, "--tracking-uri", relative, cwd=tmp_path)
    else:
        r = harness(*args, cwd=tmp_path, env=_env(MLFLOW_TRACKING_URI=relative))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "rel" / "mlflow.db").is_file()
    (run,) = mlflow_runs(f"sqlite:///{tmp_path / 'rel' / 'mlflow.db'}")
    assert run.info.status == "FINISHED" and run.info.artifact_uri.startswith((tmp_path / "rel").as_uri())


@pytest.mark.slow
def test_unreachable_server_fails_within_seconds(tmp_path: Path) -> None:
    t0 = time.monotonic()
    r = harness("run", *SMOKE, "--tracking-uri", "http://127.0.0.1:9", cwd=tmp_path, timeout=120)
    one_line_error_after_notice(r, "cannot reach the MLflow store http://127.0.0.1:9")
    assert "MLflow store: http://127.0.0.1:9" in r.stderr
    assert time.monotonic() - t0 < 60  # start-up included; MLflow's own retries take minutes


def one_line_error_after_notice(r: subprocess.CompletedProcess, needle: str) -> None:
    """Exit 2 and one error line (after the line that says which store is being checked)."""
    assert r.returncode == 2, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("harness: error:")]
    assert len(errors) == 1 and needle in errors[0], r.stderr


# ---------------------------------------------------------------- 11. one-line errors, nothing recorded


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--set", "lr=nan"), "--set lr: 'nan' is not a finite number"),
        (("--set", "lr=inf"), "--set lr: 'inf' is not a finite number"),
        (("--set", "momentum=1"), "momentum must be in [0, 1)"),
        (("--set", "momentum=-0.5"), "momentum must be in [0, 1)"),
        (("--batch-size", "128"), "synthetic has 64 training images, fewer than one batch of 128"),
    ],
)
def test_bad_values_are_refused_before_anything_is_recorded(tmp_path: Path, args: tuple, needle: str) -> None:
    uri = store_uri(tmp_path)
    r = harness("run", *SMOKE, *args, "--tracking-uri", uri, cwd=tmp_path)
    one_line_error(r.returncode, r.stderr, needle)
    assert nothing_recorded(uri)

"""benchmarks/decode_paths.py: the candidates it times cut torchvision's recipe (TVREF) from the same files."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torchvision.transforms import v2

from harness import photos
from harness.decode import read_rgb
from harness.transforms import MEAN, STD
from tests.support import ROOT


def load():
    """The benchmark script as a module (benchmarks/ is not a package); registered, as its dataclass needs."""
    if "decode_paths" not in sys.modules:
        spec = importlib.util.spec_from_file_location("decode_paths", ROOT / "benchmarks" / "decode_paths.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["decode_paths"] = module
        spec.loader.exec_module(module)
    return sys.modules["decode_paths"]


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("jpegs")
    photos.imagenet_like_jpegs(root, 3, 2, splits=("train",))
    return root


def test_crop_batch_is_torchvisions_random_resized_crop_flip_and_normalisation(jpegs: Path) -> None:
    dp = load()
    files = dp.files_of(jpegs)
    images = [read_rgb(f) for f in files]  # torchvision.io's decoder, as the harness calls it
    torch.manual_seed(7)
    got = dp.crop_batch(images, 64, torch.Generator().manual_seed(0))
    assert got.shape == (len(files), 3, 64, 64) and got.dtype == torch.float32
    # the same global draws through torchvision's own transform; the flips from the same generator
    torch.manual_seed(7)
    g = torch.Generator().manual_seed(0)
    norm = v2.Normalize(MEAN, STD)
    for img, x in zip(images, got, strict=True):
        want = v2.RandomResizedCrop(64, antialias=True)(img)
        want = want.flip(-1) if torch.rand((), generator=g) < 0.5 else want
        torch.testing.assert_close(x, norm(want.float() / 255), atol=1e-5, rtol=0)


def test_batches_repeat_a_seeded_order_and_the_decoders_run_on_the_cpu(jpegs: Path) -> None:
    dp = load()
    files = dp.files_of(jpegs)
    batches = dp.batches_of(files, 4, 3)
    assert [len(b) for b in batches] == [4, 4, 4] and batches == dp.batches_of(files, 4, 3)
    assert sorted({p for b in batches for p in b}) == files  # 12 draws of 6 files: every file, in a seeded order
    ips = dp.decode_ips("torchvision.io", batches, 32, torch.device("cpu"))
    assert isinstance(ips, float) and ips > 0


def test_a_missing_decoder_is_a_row_that_says_why_and_renders(jpegs: Path, monkeypatch) -> None:
    dp = load()
    monkeypatch.setitem(sys.modules, "torchcodec", None)  # as where it is not installed
    why = dp.decoder("torchcodec")
    assert isinstance(why, str) and why.startswith("torchcodec does not import: ")
    result = {
        "header": {"device": "cpu", "torch": "x", "size": 32, "batch_size": 4, "steps": 1, "rounds": 1, "files": 6},
        "rows": [{"what": "torchcodec decode_jpeg on cpu", "images_per_sec": None, "rounds": [], "note": why}],
    }
    assert "-  torchcodec does not import" in dp.render(result)


def test_no_jpegs_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    dp = load()
    with pytest.raises(SystemExit) as e:
        dp.main(["--jpegs", str(tmp_path)])
    assert e.value.code == 2 and "--jpegs DIR must hold" in capsys.readouterr().err

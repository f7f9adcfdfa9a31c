"""The table of data sources (harness.data.SOURCES): every row loads at a small size, and the names `--dataset`
accepts, the folder data sets and the experiment names all come from it."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import torch

from harness import config
from harness.data import FOLDER_DATASETS, SOURCES, DataSpec, load_datasets
from harness.errors import HarnessError
from harness.request import DATASETS, DatasetName, RunRequest

SMALL = {"image_size": 56, "resize": 64}  # KSH12 geometry (224 of 256) scaled down, as in test_data.py
LIMITS = {"limit_train": 20, "limit_val": 10}


def write_cifar10(root: Path, n: int = 20) -> Path:
    """A folder in CIFAR-10's python format (random pixels); torchvision's md5 checks are patched out by the test."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.RandomState(0)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        batch = {"data": rng.randint(0, 256, (n, 3 * 32 * 32), dtype=np.uint8), "labels": [i % 10 for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{c}" for c in range(10)]}))
    return folder


def test_the_literal_and_the_table_name_the_same_data_sets() -> None:
    assert get_args(DatasetName) == tuple(SOURCES) == DATASETS
    assert FOLDER_DATASETS == tuple(name for name, s in SOURCES.items() if s.needs_folder)
    assert all(name == s.name and s.description for name, s in SOURCES.items())


@pytest.mark.parametrize("name", list(SOURCES))
def test_every_source_loads(name: str, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = None
    if name == "imagefolder":
        root = photos
    elif name == "cifar10":
        import torchvision.datasets.cifar as tv_cifar

        monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
        monkeypatch.setattr(tv_cifar.CIFAR10, "_check_integrity", lambda self: True)
        root = write_cifar10(tmp_path)
    assert (root is not None) == SOURCES[name].needs_folder
    data = load_datasets(DataSpec(name, root, synthetic_train=20, synthetic_val=10, **SMALL, **LIMITS))
    assert 0 < len(data.train) <= LIMITS["limit_train"] and 0 < len(data.val) <= LIMITS["limit_val"]
    assert data.num_classes == len(data.classes) >= 2
    assert data.split_name == ("test" if name == "cifar10" else "val")
    x, y = data.train.__getitems__([0, 1])
    assert x.dtype == torch.uint8 and x.shape[-2:] == (SMALL["resize"], SMALL["resize"])
    assert 0 <= int(y.min()) and int(y.max()) < data.num_classes
    assert data.train.inputs([0]).shape[-2:] == (SMALL["image_size"], SMALL["image_size"])


def test_an_unknown_data_set_lists_the_table() -> None:
    with pytest.raises(HarnessError, match="expected one of imagefolder, mnist-clutter, mnist5k, cifar10, synthetic"):
        load_datasets(DataSpec("imagenet"))


@pytest.mark.parametrize("name", list(SOURCES))
def test_the_table_decides_which_data_sets_need_data(name: str, tmp_path: Path) -> None:
    if SOURCES[name].needs_folder:
        with pytest.raises(HarnessError, match=f"dataset {name} needs --data DIR"):
            config.choose_profile(RunRequest(profile="smoke", dataset=name))
        assert config.choose_profile(RunRequest(profile="smoke", dataset=name, data=str(tmp_path)))[1] == name
    else:
        with pytest.raises(HarnessError, match="add --dataset imagefolder \\(or cifar10\\) to train on the folder"):
            config.choose_profile(RunRequest(profile="smoke", dataset=name, data=str(tmp_path)))
        assert config.choose_profile(RunRequest(profile="smoke", dataset=name))[1] == name


@pytest.mark.parametrize("name", list(SOURCES))
def test_experiments_are_named_by_the_table(name: str, photos: Path) -> None:
    """An ImageNet-style folder's experiment is named by what the data is (--dataset-name), the others by the
    source: the names existing stores hold their runs under."""
    from harness import schema
    from harness.runs.common import experiment_name
    from variants import get_variant

    data = str(photos) if SOURCES[name].needs_folder else None
    req = RunRequest(profile="smoke", dataset=name, data=data, dataset_name="ILSVRC-2012")
    cfg = config.resolve(get_variant("alexnet2012"), req)
    expected = "ILSVRC-2012" if name == "imagefolder" else name
    assert SOURCES[name].experiment_dataset("ILSVRC-2012") == expected
    assert experiment_name(cfg) == schema.EXPERIMENT_NAME.format(dataset=expected, profile="smoke")

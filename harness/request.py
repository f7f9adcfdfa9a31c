"""What the user asked for, as frozen data: built once from the command line (`harness.cli`), read by everything else.

`RunRequest` is the whole input of `harness run`; `SweepRequest` is a run request plus the search's settings, so a
trial is `replace(request, sets=...)`; `EvalRequest` shares the data settings. No torch, MLflow or Optuna here:
importing this module is free, so `python -m harness --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Literal, get_args

from harness import mlruns

DatasetName = Literal["imagefolder", "mnist-clutter", "mnist5k", "cifar10", "synthetic"]
DATASETS: tuple[str, ...] = get_args(DatasetName)
ProfileName = Literal["paper", "proxy", "smoke"]  # harness.config.PROFILES holds one Profile for each
PROFILE_NAMES: tuple[str, ...] = get_args(ProfileName)
Precision = Literal["fp32", "tf32", "bf16"]  # harness.precision; fp32 is the papers'
PRECISIONS: tuple[str, ...] = get_args(Precision)
# harness.parallel: none (plain DDP), towers (KSH12's two towers on two ranks), hybrid (OWT14)
Parallel = Literal["none", "towers", "hybrid"]
PARALLELS: tuple[str, ...] = get_args(Parallel)
Pruner = Literal["median", "none"]
PRUNERS: tuple[str, ...] = get_args(Pruner)


@dataclass(frozen=True, kw_only=True)
class DataRequest:
    """Which data, profile, device and store: the options every training or evaluating command shares."""

    profile: str | None = None  # None: paper with --data, proxy without
    data: str | None = None  # a folder: ImageNet-style train/ and val/, or CIFAR-10
    dataset: str | None = None  # one of DATASETS; None: the profile's, or imagefolder with --data
    dataset_name: str | None = None  # what the data is, for the report (e.g. ILSVRC-2012)
    limit_train: int | None = None
    limit_val: int | None = None
    workers: int | None = None  # DataLoader workers; None: harness.loader.workers_for decides
    device: str = "auto"
    precision: str = "fp32"  # one of PRECISIONS
    tracking_uri: str | None = None

    @property
    def uri(self) -> str:
        return mlruns.resolve(self.tracking_uri)

    def data_fields(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(DataRequest)}


@dataclass(frozen=True, kw_only=True)
class RunRequest(DataRequest):
    """`harness run`: which variants, and what changes from their recipes."""

    names: tuple[str, ...] = ()
    all: bool = False
    epochs: int | None = None
    batch_size: int | None = None  # global batch (all ranks together)
    seed: int = 0  # the first seed
    seeds: int | None = None  # seeds seed..seed+N-1 of each variant; None: `harness.plan` decides (one seed unless
    # `--all` on the proxy or paper profile)
    seed_offset: int = 0  # added to every seed chosen (the plan's or --seed's): an independent draw of the same plan
    max_seeds: int = 15  # the paper plan's most runs of one variant (harness.plan.MAX_SEEDS)
    # only these (variant, seed) runs of the plan (the paper plan's second stage: the runs its first stage added)
    only: tuple[tuple[str, int], ...] = ()
    sets: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))  # typed recipe changes (--set)
    checkpoint_dir: str | None = None
    tuned_from: str | None = None  # --from-sweep: the study whose best trial this run repeats
    verbose: bool = True
    wait: bool = False  # a configuration another process is training: wait for it instead of refusing
    compile: bool = False  # torch.compile the model (an execution option: same recipe, same run identity)
    register: bool | None = None  # register final weights in MLflow's Model Registry; None: the paper profile does
    system_metrics: bool | None = None  # MLflow system metrics while training; None: the profile decides
    keep_weights: bool | None = None  # log the final weights (checkpoint/final.pt); None: the profile decides
    ui_url: str | None = None  # the MLflow UI the report links runs to; None: `harness ui`'s address, or the server's
    parallel: str = "none"  # one of PARALLELS: how the ranks share the model (harness.parallel)
    dist_timeout: float | None = None  # seconds a collective waits for a missing rank (torchrun); None: torch's
    parent_run_id: str | None = None  # record under this batch run (a `--jobs` worker: harness.pool), not a new one

    def changes(self) -> dict[str, object]:
        """Every recipe change this request makes: --set, then --epochs and --batch-size."""
        out = dict(self.sets)
        if self.epochs is not None:
            out["epochs"] = self.epochs
        if self.batch_size is not None:
            out["batch_size"] = self.batch_size
        return out


@dataclass(frozen=True, kw_only=True)
class SweepRequest(RunRequest):
    """`harness sweep NAME`: a run request for one variant (its `sets` fixed in every trial) and the search."""

    trials: int = 6
    study_name: str | None = None
    space: str = "default"
    timeout: float | None = None
    pruner: str = "median"
    storage: str | None = None  # an Optuna RDB URL or journal:PATH; None: optuna.db beside the MLflow store
    jobs: int = 1  # worker processes on the study, this one included (docs/clusters.md)
    worker_index: int = 0  # a worker started by `--jobs`: 1..N-1 (seeds its sampler; the parent is 0)

    @property
    def name(self) -> str:
        return self.names[0]


@dataclass(frozen=True, kw_only=True)
class EvalRequest(DataRequest):
    """`harness eval VARIANT`: weights from a file, torchvision's name for its own, or a finished run."""

    variant: str | None = None  # None only with `model`: the registered model's name (the harness registers variants)
    weights: str | None = None
    run_id: str | None = None
    model: str | None = None  # models:/NAME/VERSION, a registered model version
    tta: str | None = None  # test protocol; None: the recipe's
    batch_size: int = 64
    # typed recipe changes (--set) over what the weights' run logged (or the variant's recipe), e.g. dropout_scaling
    sets: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))

    def as_run(self) -> RunRequest:
        return RunRequest(**self.data_fields(), names=(self.variant,) if self.variant else ())

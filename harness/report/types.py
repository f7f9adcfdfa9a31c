"""Typed rows the report is built from: one run as read from MLflow, and everything `render` needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: these types stay free of torch
    from variants import Claim, Variant

History = tuple[tuple[int, float], ...]  # (epoch, value), epochs ascending


@dataclass(frozen=True)
class RetrievalStat:
    """One representation's retrieval in a run's qualitative evaluation (metrics qual.retrieval.REP.*)."""

    rep: str  # fc7, fc7_code, pixel_code, pixels (harness.schema.QUAL_REPS)
    p1: float | None
    p5: float | None
    p10: float | None
    query_ms: float | None


@dataclass(frozen=True)
class Qualitative:
    """A run's qualitative evaluation as logged (harness.analysis; KSH12 s6.1); a metric it lacks is None."""

    towers: int | None = None
    colour_mean: float | None = None  # every conv1 kernel
    tower_means: tuple[float, ...] = ()  # per tower of a two-tower net, tower 1 first
    retrieval: tuple[RetrievalStat, ...] = ()  # in harness.schema.QUAL_REPS order
    code_bits: int | None = None
    shift_top1: tuple[tuple[int, float], ...] = ()  # (shift in sixteenths of the side, top-1 %), ascending
    seconds: float | None = None

    def stat(self, rep: str) -> RetrievalStat | None:
        return next((r for r in self.retrieval if r.rep == rep), None)


@dataclass(frozen=True)
class RunRow:
    """One MLflow run of kind `variant` or `trial`. A metric the run did not log is None."""

    run_id: str
    experiment: str
    kind: str  # tag harness.kind: "variant" or "trial" (sweep trials are shown only as tuned runs)
    variant: str
    paper: str = ""
    profile: str = ""
    dataset: str = ""  # tag dataset: the loader, e.g. "imagefolder", "mnist5k"
    dataset_name: str | None = None  # tag dataset_name: what the data is, e.g. "ILSVRC-2012", "mnist5k"
    split: str = ""
    protocol: str = ""  # tag test_protocol: the protocol of final_val_top1 / final_val_top5
    seed: int | None = None
    epochs: int | None = None  # param epochs: what the run trained for (a profile or --epochs may change it)
    status: str = "FINISHED"
    recipe_modified: bool = False
    modified_keys: str = ""
    tuned_from: str | None = None
    sweep: str | None = None
    pretrained: str | None = None  # tag pretrained: the data set a run was pretrained on, if any
    num_classes: int | None = None
    final_top1: float | None = None
    final_top5: float | None = None
    center_top1: float | None = None
    center_top5: float | None = None
    ten_crop_top1: float | None = None
    ten_crop_top5: float | None = None
    five_crop_top1: float | None = None  # the proxy's stand-in for ten_crop (no mirrors)
    five_crop_top5: float | None = None
    learned: float | None = None
    val_top1: History = ()
    train_loss: History = ()
    train_top1: History = ()  # per epoch, in training mode (dropout on, augmented views): the train-val gap's side
    train_err: History = ()  # schema.TRAIN_ERR: (training images seen, top-1 error %) every few steps, not by epoch
    qualitative: Qualitative | None = None  # None: the run was not analysed (`harness analyze`)
    experiment_id: str = ""  # MLflow's id of `experiment`: the UI's page of the run (ReportInputs.ui_url)
    # how it was trained (harness.parallel; the report's "Parallel schemes" section): the scheme, ranks, global
    # batch and lr, and the last epoch's images/s, seconds per step and bytes one rank sent per step
    parallel: str = "none"
    world_size: int | None = None
    batch_size: int | None = None
    effective_lr: float | None = None
    images_per_sec: float | None = None
    step_seconds: float | None = None
    comm_bytes_per_step: float | None = None
    hours: float | None = None  # wall-clock from the run's start to its end (MLflow), training and evaluation

    @property
    def data(self) -> str:
        """The data set as the report names it: the `dataset_name` tag, else the loader name."""
        return self.dataset_name or self.dataset or "unknown data"

    @property
    def finished(self) -> bool:
        return self.status == "FINISHED"


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (ddof=1; None when n < 2) over seeds."""

    mean: float
    std: float | None
    n: int


@dataclass(frozen=True)
class EnsembleResult:
    """Accuracy of the averaged softmax of `len(run_ids)` finished runs of one variant on one data set."""

    variant: str
    data: str
    split: str
    protocol: str
    pretrained: str | None
    run_ids: tuple[str, ...]
    top1: float
    top5: float
    profile: str = ""  # the members' profile; "" when they mix profiles

    @property
    def k(self) -> int:
        return len(self.run_ids)


@dataclass(frozen=True)
class FigurePaths:
    """Figure paths relative to the markdown file; keys are (data label, split) groups and variant names."""

    reproduced_vs_reported: str | None = None
    val_top1: dict[tuple[str, str], str] = field(default_factory=dict)
    curves: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (data, split, variant)
    kernels: dict[tuple[str, str, str], tuple[str, ...]] = field(default_factory=dict)  # one path per tower
    # (data, split, variant): the qualitative figures of its first analysed run, (name, path) in QUAL_FIGURES order
    qualitative: dict[tuple[str, str, str], tuple[tuple[str, str], ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepRow:
    """One Optuna study (`harness sweep`): its best trial beside the paper recipe's runs on the same data.

    `paper` is the final top-1 over seeds of finished, unmodified variant runs of the same variant, data set and
    profile (None: there are none); `paper_epochs` are the epochs those runs trained for.
    """

    study: str
    variant: str
    data: str  # the sweep's dataset_name, else its loader
    profile: str = ""
    space: str = ""
    n_trials: int = 0  # every trial of the study: complete, pruned and failed
    n_pruned: int = 0
    n_failed: int = 0
    best_value: float | None = None  # the best complete trial's final_val_top1 (%), the recipe's test protocol
    best_params: tuple[tuple[str, str], ...] = ()  # (recipe field, value) of the best trial, sorted
    epochs: int | None = None  # epochs per trial (the sweep's --epochs, else the profile's)
    paper: Stat | None = None
    paper_run_ids: tuple[str, ...] = ()
    paper_epochs: tuple[int, ...] = ()

    @property
    def n_complete(self) -> int:
        return self.n_trials - self.n_pruned - self.n_failed

    @property
    def diff(self) -> float | None:
        """Best trial minus the paper recipe's mean; None when either is missing."""
        if self.best_value is None or self.paper is None:
            return None
        return self.best_value - self.paper.mean


@dataclass(frozen=True)
class ReportInputs:
    """Everything `render` reads. Same inputs, same markdown."""

    title: str
    store: str  # the tracking URI as shown in the "generated from" line
    experiments: tuple[str, ...]
    rows: tuple[RunRow, ...]
    variants: tuple[Variant, ...]
    claims: tuple[Claim, ...]
    measured: dict[str, Measured] = field(default_factory=dict)
    ensembles: tuple[EnsembleResult, ...] = ()
    figures: FigurePaths = FigurePaths()
    profile_deviations: dict[str, tuple[str, ...] | None] = field(default_factory=dict)  # None: config.json missing
    sweeps: tuple[SweepRow, ...] = ()
    ui_url: str | None = None  # the MLflow UI the run ids link to (#/experiments/<id>/runs/<run id>); None: no links


@dataclass(frozen=True)
class SweepSummary:
    """A sweep study's latest recorded state, read from its newest MLflow parent run."""

    study: str
    variant: str
    dataset: str
    profile: str
    best_value: float | None  # best trial's final_val_top1 (%), the recipe's test protocol
    n_trials: int
    n_pruned: int
    best_params: dict[str, str]
    parent_run_id: str
    dataset_name: str = ""
    space: str = ""
    n_failed: int = 0


@dataclass(frozen=True)
class Measured:
    """A variant's size as built: parameters, forward MACs at its native input size, float32 MiB."""

    params: int
    macs: int  # at the variant's native input size
    size_mb: float  # float32 weights, MiB (torchvision's "233.1 MB")

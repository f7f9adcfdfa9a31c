"""The fully resolved configuration of one training run.

A run's recipe is the variant's recipe, changed first by its profile (harness.profiles; each change a recorded
profile deviation)
and then by the user's flags and `--set key=value` (each change marks the run `recipe_modified`).
"""

from __future__ import annotations

import hashlib
import json
import math
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from harness import schema
from harness.errors import HarnessError
from harness.profiles import HE_INIT, PROFILES, Override, Profile
from harness.request import PRECISIONS, RunRequest
from variants import INPUT_SCALES, MIN_INPUT_SIZE, DropoutScaling, InitScheme, Recipe, Variant

# `--set init=NAME`: "paper" is the variant's own recipe init (e.g. to watch it stall on the proxy).
INIT_CHOICES = ("paper", "he2015", "pytorch")


def init_scheme(name: str, variant: Variant) -> InitScheme:
    if name == "paper":
        return variant.recipe.init
    if name == "he2015":
        return HE_INIT
    return InitScheme("pytorch")  # PyTorch's default init, drawn when the model is built


def settable_keys() -> list[str]:
    return Recipe.field_names()


@dataclass(frozen=True)
class RunConfig:
    variant: str
    paper: str
    profile: str
    dataset: str
    dataset_name: str  # what the report matches against Reported.dataset, e.g. "ILSVRC-2012" or "mnist5k"
    data_dir: str | None
    recipe: Recipe
    flip: bool
    seed: int
    device: str
    world_size: int = 1
    modified_keys: tuple[str, ...] = ()
    limit_train: int | None = None
    limit_val: int | None = None
    workers: int | None = None  # None: harness.loader.workers_for decides
    profile_deviations: tuple[str, ...] = ()
    tuned_from: str | None = None
    final_protocols: tuple[str, ...] = ("center", "ten_crop")
    precision: str = "fp32"  # harness.precision: fp32 (the papers'), tf32, bf16 (a recorded deviation)
    compile: bool = False  # torch.compile (an execution option)
    parallel: str = "none"  # harness.parallel: none (DDP), towers (KSH12), hybrid (OWT14)
    # how the built network computes where the 2012/2014 code differs from PyTorch's defaults (`network_notes`)
    network: tuple[str, ...] = ()
    # the epochs evaluated on the validation set; empty: every epoch (not in the config hash: training is the same)
    eval_epochs: tuple[int, ...] = ()
    # the mean subtracted at input_scale 255 (`input_mean`): "pixel" the store's mean image (KSH12 s2), "channel"
    input_mean: str = "channel"

    @property
    def recipe_modified(self) -> bool:
        """Changed from the paper's recipe by the user: --set, a tuned sweep, or arithmetic other than the papers'
        fp32 (so that a bf16 run is never counted as a reproduction)."""
        return bool(self.modified_keys) or self.tuned_from is not None or self.precision != "fp32"

    @property
    def effective_lr(self) -> float:
        """OWT14 s5: lr scales linearly with the batch size relative to `lr_scale_batch`."""
        r = self.recipe
        return r.lr * r.batch_size / r.lr_scale_batch if r.lr_scale_batch else r.lr

    def recipe_params(self) -> dict[str, str]:
        return recipe_params(self.recipe)

    def params(self) -> dict[str, str]:
        """Every value actually used, under the recipe's own field names, for mlflow.log_params."""
        p = self.recipe_params()
        p.update(
            variant=self.variant,
            profile=self.profile,
            dataset=self.dataset,
            dataset_name=self.dataset_name,
            data_dir=str(self.data_dir),
            flip=str(self.flip),
            seed=str(self.seed),
            world_size=str(self.world_size),
            effective_lr=_param_str(self.effective_lr),
            limit_train=str(self.limit_train),
            limit_val=str(self.limit_val),
            final_protocols=",".join(self.final_protocols),
            precision=self.precision,
            compile=str(self.compile),
            parallel=self.parallel,
            input_mean=self.input_mean,
        )
        return p

    def config_hash(self) -> str:
        """Identity of a run for skip/resume: everything that changes the result, not the device or world size."""
        key = {
            "variant": self.variant,
            "profile": self.profile,
            "dataset": self.dataset,
            "data_dir": self.data_dir,
            "recipe": _recipe_key(self.recipe),
            "flip": self.flip,
            "seed": self.seed,
            "limit_train": self.limit_train,
            "limit_val": self.limit_val,
            "tuned_from": self.tuned_from,
        }
        if self.precision != "fp32":  # (absent at fp32: the identity of runs recorded before precision existed)
            key["precision"] = self.precision
        if self.parallel != "none":  # (absent for DDP: the identity of runs recorded before schemes existed)
            key["parallel"] = self.parallel
        if self.network:  # (absent for the networks built as before these notes existed)
            key["network"] = list(self.network)
        if self.input_mean != "channel":  # (absent for the per-channel mean: every run before mean images existed)
            key["input_mean"] = self.input_mean
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    def to_json(self) -> str:
        d = _jsonable(asdict(self))
        d["effective_lr"] = self.effective_lr
        d["recipe_modified"] = self.recipe_modified
        d["config_hash"] = self.config_hash()
        return json.dumps(d, indent=2, sort_keys=True)


def _recipe_key(recipe: Recipe) -> object:
    """The recipe as the config hash sees it; `lr_table` only where the schedule is a table (the other schedules
    ignore it; absent: the identity of runs recorded before tables existed). `dropout_scaling` never: the run's
    `network` notes say where its dropout is the code's (absent: nn.Dropout, as every run before the field)."""
    d = asdict(recipe)
    if d["lr_table"] is None or recipe.schedule != "table":
        del d["lr_table"]
    del d["dropout_scaling"]
    if d["pool_to"] is None:  # (absent at the network's own pool: the identity of runs recorded before the field)
        del d["pool_to"]
    return _jsonable(d)


def recipe_params(recipe: Recipe) -> dict[str, str]:
    """A recipe as MLflow params: every field under its own name (the init scheme and the lr table by name)."""
    named = ("init", "lr_table")
    return {
        f.name: getattr(getattr(recipe, f.name), "name", "None")
        if f.name in named
        else _param_str(getattr(recipe, f.name))
        for f in fields(recipe)
    }


def _param_str(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(_param_str(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _jsonable(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def parse_set(items: list[str]) -> dict[str, object]:
    """`--set key=value` pairs -> typed recipe changes. Unknown keys and wrong types are HarnessErrors."""
    hints = typing.get_type_hints(Recipe)
    valid = settable_keys()
    out: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise HarnessError(f"--set expects key=value, got {item!r}")
        if key not in valid:
            raise HarnessError(f"unknown --set key {key!r}; valid keys: {', '.join(valid)}")
        if key == "lr_table":
            raise HarnessError(
                "--set lr_table: a table is part of a variant's recipe, not settable; --set schedule=plateau (or "
                "multistep, step) trains without it"
            )
        if key == "init":
            if raw.strip() not in INIT_CHOICES:
                raise HarnessError(f"--set init: {raw.strip()!r} is not one of {', '.join(INIT_CHOICES)}")
            out[key] = raw.strip()  # a name: `resolve` turns it into each variant's InitScheme
            continue
        out[key] = _convert(key, raw.strip(), hints[key])
    return out


def _convert(key: str, raw: str, hint: object) -> object:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if raw.lower() in ("none", "null", ""):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _convert(key, raw, inner[0])
    if origin is typing.Literal:
        if raw not in args:
            raise HarnessError(f"--set {key}: {raw!r} is not one of {', '.join(map(str, args))}")
        return raw
    if origin is tuple:
        parts = [p for p in raw.replace(" ", "").split(",") if p]
        return tuple(_convert(key, p, args[0]) for p in parts)
    try:
        if hint is bool:
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValueError(raw)
        if hint is int:
            return int(raw)
        if hint is float:
            value = float(raw)
            if not math.isfinite(value):
                raise HarnessError(f"--set {key}: {raw!r} is not a finite number")
            return value
    except ValueError:
        raise HarnessError(f"--set {key}: {raw!r} is not a valid {getattr(hint, '__name__', hint)}") from None
    return raw


def validate_recipe(recipe: Recipe, min_size: int = MIN_INPUT_SIZE) -> None:
    """`min_size`: the variant's smallest input (`Variant.min_input_size`; KSH12 Fig. 1's CIFAR net takes 8 px)."""
    if recipe.epochs <= 0:
        raise HarnessError(f"epochs must be a positive integer, got {recipe.epochs}")
    if recipe.batch_size <= 0:
        raise HarnessError(f"batch size must be a positive integer, got {recipe.batch_size}")
    not_finite = [
        f.name for f in fields(recipe) if isinstance(v := getattr(recipe, f.name), float) and not math.isfinite(v)
    ]
    if not_finite:
        raise HarnessError(f"{', '.join(not_finite)} must be a finite number, got "
                           f"{', '.join(str(getattr(recipe, k)) for k in not_finite)}")  # fmt: skip
    if recipe.lr <= 0:
        raise HarnessError(f"lr must be positive, got {recipe.lr}")
    if recipe.schedule == "table" and recipe.lr_table is None:
        raise HarnessError("schedule 'table' needs a recipe with an lr table (the KSH12 variants have one)")
    if not 0 <= recipe.momentum < 1:
        raise HarnessError(
            f"momentum must be in [0, 1) (0: plain SGD; 1 never forgets a gradient), got {recipe.momentum}"
        )
    if recipe.weight_decay < 0:
        raise HarnessError(f"weight_decay must be at least 0, got {recipe.weight_decay}")
    if recipe.crop < min_size:
        raise HarnessError(
            f"crop must be at least {min_size} px (the smallest input the builder takes), got {recipe.crop}"
        )
    if recipe.resize < recipe.crop:
        raise HarnessError(f"resize ({recipe.resize}) must be at least crop ({recipe.crop})")
    if not 0 < recipe.width <= 4:
        raise HarnessError(f"width must be in (0, 4] (1: the paper's channels), got {recipe.width}")
    if recipe.pool_to is not None and recipe.pool_to < 1:
        raise HarnessError(f"pool_to must be a positive number of positions (or None), got {recipe.pool_to}")
    if recipe.input_scale not in INPUT_SCALES:
        raise HarnessError(f"input_scale must be 1 ((x/255 - mean) / std, torchvision) or 255 (pixel values minus "
                           f"the training mean, KSH12/CC2 code), got {recipe.input_scale}")  # fmt: skip


def choose_profile(req: RunRequest) -> tuple[Profile, str]:
    """(profile, dataset): `paper` when --data is given, `proxy` (mnist5k) otherwise."""
    # here, not at the top: the table's loaders import torchvision and PIL, which `list` and `show` (harness.catalog
    # reads recipes through this module) never need (docs/layout.md, start-up time)
    from harness.data import FOLDER_DATASETS, SOURCES

    name = req.profile or ("paper" if req.data else "proxy")
    if name not in PROFILES:
        raise HarnessError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    profile = PROFILES[name]
    dataset = req.dataset or profile.dataset or ("imagefolder" if req.data else None)
    if dataset is None:
        raise HarnessError("the paper profile needs --data DIR (an ImageNet-style folder with train/ and val/)")
    if dataset not in SOURCES:
        raise HarnessError(f"unknown dataset {dataset!r}; known: {', '.join(SOURCES)}")
    if SOURCES[dataset].needs_folder and not req.data:
        raise HarnessError(f"dataset {dataset} needs --data DIR")
    if req.data and dataset not in FOLDER_DATASETS:
        raise HarnessError(
            f"--data {req.data} is not read by the {name} profile, which trains on {dataset}: drop --data, or add "
            f"--dataset {FOLDER_DATASETS[0]} (or {' or '.join(FOLDER_DATASETS[1:])}) to train on the folder under this "
            "profile"
        )
    return profile, dataset


def applied_overrides(profile: Profile, variant: Variant) -> tuple[Override, ...]:
    """The profile's overrides that change this variant's recipe, all but two: a profile's train_aug picks which
    augmentation a run uses, but never puts augmentation back into the ablation that removes it (train_aug "none",
    KSH12 s4.1); a profile's width and geometry are for the ImageNet-size networks, not for a net built for small
    images (KSH12 Fig. 1's CIFAR-10 net, native input 32 px), which is small already and keeps its own crop."""

    def keeps(o: Override) -> bool:
        if o.variants and variant.name not in o.variants:
            return True
        if o.key == "train_aug":
            return variant.recipe.train_aug == "none"
        if o.key in (
            "width",
            "crop",
            "resize",
            "pool_to",
        ):  # a small-image net keeps its width and sees the whole canvas at
            return variant.input_size < SMALL_IMAGE_NETS_BELOW  # its native size (Fig. 1: 32 px)
        return False

    return tuple(o for o in profile.overrides if not keeps(o))


SMALL_IMAGE_NETS_BELOW = 64  # native input size under which a network keeps its width under a profile


def resolve(variant: Variant, req: RunRequest, *, device: str = "cpu", world_size: int = 1) -> RunConfig:
    """The variant's recipe, changed by the profile (recorded deviations), then by the request (recipe_modified)."""
    profile, dataset = choose_profile(req)
    dataset_name = req.dataset_name or (
        f"imagefolder:{Path(req.data).name}" if dataset == "imagefolder" and req.data else dataset
    )
    recipe = replace(own_recipe(variant), **{o.key: o.value for o in applied_overrides(profile, variant)})
    changes = req.changes()
    if isinstance(changes.get("init"), str):
        changes["init"] = init_scheme(str(changes["init"]), variant)
    modified = tuple(sorted(k for k, v in changes.items() if getattr(recipe, k) != v))
    recipe = replace(recipe, **changes)
    validate_recipe(recipe, variant.min_input_size)
    if recipe.batch_size % world_size:
        raise HarnessError(f"batch size {recipe.batch_size} is not divisible by the world size {world_size}")
    check_parallel(variant, recipe, req.parallel, world_size)
    if req.parallel != "none" and req.compile:
        raise HarnessError(
            f"--compile with --parallel {req.parallel} is not supported (its collectives are untested under "
            "torch.compile)"
        )
    data_dir = str(Path(req.data).resolve()) if req.data else None
    mean, mean_deviation = input_mean(profile.name, dataset, recipe.input_scale, data_dir)
    return RunConfig(
        variant=variant.name,
        paper=variant.paper,
        profile=profile.name,
        dataset=dataset,
        dataset_name=dataset_name,
        data_dir=data_dir,
        recipe=recipe,
        flip=profile.flip,
        seed=req.seed,
        device=device,
        world_size=world_size,
        modified_keys=modified,
        limit_train=req.limit_train if req.limit_train is not None else profile.limit_train,
        limit_val=req.limit_val if req.limit_val is not None else profile.limit_val,
        workers=req.workers,
        profile_deviations=tuple(profile.all_deviations())
        + schedule_deviation(recipe)
        + precision_deviation(req.precision)
        + parallel_deviations(req.parallel)
        + mean_deviation,
        tuned_from=req.tuned_from,
        final_protocols=tuple(dict.fromkeys((*profile.final_protocols, recipe.test_protocol))),
        precision=req.precision,
        compile=req.compile,
        parallel=req.parallel,
        network=network_notes(variant, recipe),
        eval_epochs=()
        if profile.val_every_epoch or recipe.schedule == "plateau"
        else schema.curve_epochs(recipe.epochs),
        input_mean=mean,
    )


def parallel_deviations(kind: str) -> tuple[str, ...]:
    """The deviations a parallel scheme records (`harness.parallel.checks`, imported here: it needs torch)."""
    from harness.parallel import checks as parallel_checks

    return parallel_checks.deviations(kind)


def input_mean(profile: str, dataset: str, input_scale: float, data_dir: str | None) -> tuple[str, tuple[str, ...]]:
    """Which mean a run subtracts, and the deviation it records. The paper profile at input_scale 255 (0-255 pixels
    minus the mean, as the 2012 code fed them) from a prepared store that holds the mean image of its training
    squares subtracts that ("pixel", KSH12 s2: "subtracting the mean activity over the training set from each
    pixel"); anything else subtracts ImageNet's per-channel mean ("channel"), a deviation the paper profile records
    with its reason. The other profiles and data sets are unchanged (and record nothing new)."""
    if profile != "paper" or input_scale != 255 or dataset != "imagefolder":
        return "channel", ()
    from harness import prepared  # (torch) here, not at the top: `list --json` reads recipes without torch

    if data_dir is not None and prepared.is_store(data_dir):
        if prepared.read_manifest(Path(data_dir)).mean is not None:
            return "pixel", ()
        why = (f"the store {data_dir} was prepared before stores held the mean image (prepare it again with "
               "`python -m harness prepare` to subtract it)")  # fmt: skip
    else:
        why = "trained from an image folder, not from a store prepared by `python -m harness prepare`, which holds it"
    return "channel", (
        f"Mean: the per-channel mean (ImageNet's, x255) is subtracted, not the per-pixel mean image of the training "
        f"set (KSH12 s2): {why}.",
    )


def schedule_deviation(recipe: Recipe) -> tuple[str, ...]:
    """The plateau rule reads the validation top-1 that the report then reports: say so with the run."""
    if recipe.schedule != "plateau":
        return ()
    return ("Schedule decided on the reported split: ReduceLROnPlateau reads the validation top-1 after every "
            "epoch, and the report's val numbers come from the same split, so the lr drops were chosen on the data "
            "the result is measured on (as the papers' manual rule did); the 2012 code's own run followed a fixed "
            "table (CHM layers/layer-params-145.cfg).",)  # fmt: skip


def own_recipe(variant: Variant) -> Recipe:
    """The variant's recipe with its network's own dropout scaling named (`Recipe.dropout_scaling` None: whatever
    the builder makes), so that a run logs which dropout it trained with. Built on the meta device: shapes only."""
    if variant.recipe.dropout_scaling is not None:
        return variant.recipe
    import torch

    from variants.convnet import dropout_scaling_of

    with torch.device("meta"):
        model = variant.build(10)
    return replace(variant.recipe, dropout_scaling=dropout_scaling_of(model))


def run_dropout_scaling(params: Mapping[str, str]) -> DropoutScaling:
    """How a logged run's dropout scaled (its `dropout_scaling` param), "train" for runs logged before the field
    existed (all of them trained with nn.Dropout). A state dict cannot say: dropout has no weights."""
    value = params.get("dropout_scaling", "train")
    if value not in ("test", "train"):
        raise HarnessError(f"the run logged dropout_scaling {value!r}; expected test or train")
    return typing.cast(DropoutScaling, value)


def network_notes(variant: Variant, recipe: Recipe) -> tuple[str, ...]:
    """Where the network a run builds (its recipe's dropout scaling) computes as the 2012/2014 code did rather than
    as PyTorch's modules do (dropout x keep at test, per-tower LRN): part of a run's identity. Built on the meta
    device: shapes only."""
    import torch

    from variants.convnet import ScaleAtTestDropout, TowerLRN

    with torch.device("meta"):
        model = variant.build(10, dropout_scaling=recipe.dropout_scaling)
    notes = []
    if any(isinstance(m, ScaleAtTestDropout) and m.p > 0 for m in model.modules()):
        notes.append("dropout: kept units unscaled in training, x (1 - p) at test")
    if any(isinstance(m, TowerLRN) and m.towers > 1 for m in model.modules()):
        notes.append("lrn: per tower")
    return tuple(notes)


def check_parallel(variant: Variant, recipe: Recipe, kind: str, world_size: int) -> None:
    """Refuse (one line) a parallel scheme the variant's network or the world size cannot use. The network is
    built on the meta device: shapes only, nothing allocated."""
    if kind == "none":
        return
    import torch

    from harness.parallel import checks as parallel_checks

    with torch.device("meta"):
        model = variant.build(10, recipe.width, recipe.dropout_scaling, recipe.pool_to)
    parallel_checks.check(kind, model, world_size, recipe.batch_size, variant.name)


def precision_deviation(precision: str) -> tuple[str, ...]:
    """The papers trained in 32-bit floating point (GTX 580s: no other arithmetic); anything else is a deviation."""
    if precision not in PRECISIONS:
        raise HarnessError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if precision == "tf32":
        return ("Precision tf32: matmuls and convolutions on CUDA with TF32 tensor cores (10-bit mantissa inputs, "
                "fp32 accumulation); the papers trained in fp32 (no effect on the CPU).",)  # fmt: skip
    if precision == "bf16":
        return ("Precision bf16: forward and backward under bfloat16 autocast (weights, optimiser and loss in "
                "fp32); the papers trained in fp32.",)  # fmt: skip
    return ()

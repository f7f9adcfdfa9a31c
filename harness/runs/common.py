"""What every step of a run shares: the data it reads (spec, cached loading), where it is recorded (experiment,
checkpoint, name, tags, data inputs) and the `Outcome` it ends in."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from harness import data as data_mod
from harness import mlruns, note, schema, tracking
from harness.config import RunConfig
from harness.request import RunRequest
from variants import Variant


@dataclass
class Outcome:
    variant: str
    status: str  # finished, skipped, failed
    run_id: str = ""
    top1: float | None = None
    top5: float | None = None
    protocol: str = ""
    learned: bool | None = None
    epochs: int = 0
    seconds: float = 0.0
    error: str = ""
    seed: int | None = None


def data_spec(cfg: RunConfig) -> data_mod.DataSpec:
    r = cfg.recipe
    return data_mod.DataSpec(
        dataset=cfg.dataset,
        root=Path(cfg.data_dir) if cfg.data_dir else None,
        image_size=r.crop,
        resize=r.resize,
        train_aug=r.train_aug,
        flip=cfg.flip,
        pca_lighting=r.pca_lighting,
        pca_alpha_std=r.pca_alpha_std,
        limit_train=cfg.limit_train,
        limit_val=cfg.limit_val,
        input_scale=r.input_scale,
        input_mean=cfg.input_mean,
        batch_size=r.batch_size,
    )


@lru_cache(maxsize=8)
def load(spec: data_mod.DataSpec, protocol: str) -> data_mod.Datasets:
    return data_mod.load_datasets(spec, protocol)


def experiment_name(cfg: RunConfig) -> str:
    name = data_mod.SOURCES[cfg.dataset].experiment_dataset(cfg.dataset_name)
    return schema.EXPERIMENT_NAME.format(dataset=name, profile=cfg.profile)


def checkpoint_path(req: RunRequest, cfg: RunConfig) -> Path:
    root = Path(req.checkpoint_dir) if req.checkpoint_dir else mlruns.local_root(req.uri)
    return root / "checkpoints" / f"{cfg.variant}-{cfg.config_hash()}" / "last.pt"


def run_tags(cfg: RunConfig, variant: Variant, data: data_mod.Datasets) -> dict[str, str]:
    tags = {
        schema.TAG_KIND: "variant",
        schema.TAG_VARIANT: cfg.variant,
        schema.TAG_PAPER: cfg.paper,
        schema.TAG_PROFILE: cfg.profile,
        schema.TAG_DATASET: cfg.dataset,
        schema.TAG_DATASET_NAME: cfg.dataset_name,
        schema.TAG_SPLIT: data.split_name,
        schema.TAG_PROTOCOL: cfg.recipe.test_protocol,
        schema.TAG_RECIPE_MODIFIED: str(cfg.recipe_modified).lower(),
        schema.TAG_MODIFIED_KEYS: ",".join(cfg.modified_keys),
        schema.TAG_CONFIG_HASH: cfg.config_hash(),
        schema.TAG_GIT: tracking.git_commit(),
        schema.TAG_TORCH: torch.__version__,
        schema.TAG_DEVICE: cfg.device,
    }
    if variant.ablation_of:
        tags[schema.TAG_ABLATION_OF] = variant.ablation_of
    if cfg.tuned_from:
        tags[schema.TAG_TUNED_FROM] = cfg.tuned_from
    tags[schema.TAG_NOTE] = note.run_note(variant, cfg, cfg.dataset_name, data.split_name)
    return tags


def data_inputs(cfg: RunConfig, data: data_mod.Datasets) -> list[tracking.DataInput]:
    """The two splits a run reads, as MLflow dataset inputs (digest: the data fingerprint)."""
    source = cfg.data_dir or f"harness:{cfg.dataset}"  # an embedded data set: built by harness.data
    return [
        tracking.DataInput(cfg.dataset_name, split, data.fingerprint, source, len(ds), data.num_classes)
        for split, ds in (("train", data.train), (data.split_name, data.val))
    ]


def run_name(variant: str, seed: int) -> str:
    """The run's name in MLflow's runs table, `alexnet2012 s3`: the seeds of one variant are told apart there. A name
    only: skip and resume find a run by its tags (config hash, kind), never by its name."""
    return f"{variant} s{seed}"

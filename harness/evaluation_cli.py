"""`harness eval VARIANT (--weights PATH|IMAGENET1K_V1 | --run-id ID)`: evaluate weights on a data set."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from harness import checkpoint, distributed, evaluate, schema, tracking
from harness.errors import HarnessError

# TV: the file torchvision's IMAGENET1K_V1 weights are stored under in the torch hub cache.
TV_WEIGHTS = {"IMAGENET1K_V1": "alexnet-owt-7be5be79.pth"}


def resolve_weights(variant: str, weights: str | None, run_id: str | None, uri: str) -> Path:
    if run_id:
        return tracking.download_artifact(uri, run_id, schema.ART_CHECKPOINT)
    assert weights is not None
    if weights in TV_WEIGHTS:
        if variant != "torchvision_alexnet":
            raise HarnessError(f"{weights} are torchvision's AlexNet weights: evaluate them as torchvision_alexnet")
        path = Path(torch.hub.get_dir()) / "checkpoints" / TV_WEIGHTS[weights]
        if not path.is_file():
            raise HarnessError(f"{weights} not found; no download is attempted: put {TV_WEIGHTS[weights]} at {path}")
        return path
    return Path(weights)


def run_input_scale(uri: str, run_id: str) -> float:
    """The input scale a run trained at: its logged `input_scale`, or 1 for runs logged before the field existed
    (all of them fed (x - mean) / std). A checkpoint must be evaluated at the scale it was trained at, whatever its
    variant's recipe says now."""
    return float(tracking.client(uri).get_run(run_id).data.params.get("input_scale", "1.0"))


def eval_command(args: argparse.Namespace) -> int:
    from harness import runner
    from harness.config import PROFILES, resolve
    from variants import UnknownVariantError, get_variant

    try:
        variant = get_variant(args.variant)
    except UnknownVariantError as e:
        raise HarnessError(str(e)) from None
    uri = args.tracking_uri or tracking.default_uri()
    path = resolve_weights(variant.name, args.weights, args.run_id, uri)
    state = checkpoint.load_state_dict(path)
    fc = [k for k in state if k.endswith("weight") and state[k].dim() == 2]
    if not fc:
        raise HarnessError(f"{path} is not a state dict for {variant.name}: it has no fully connected layer")
    num_classes = state[fc[-1]].shape[0]
    model = variant.build(num_classes)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise HarnessError(f"{path} is not a state dict for {variant.name}: {first}") from None
    opts = runner.RunOptions(names=[variant.name], profile=args.profile, data=args.data, dataset=args.dataset,
                             device=args.device)
    profile, dataset = runner.choose_profile(opts)
    changes = {"input_scale": run_input_scale(uri, args.run_id)} if args.run_id else None
    cfg = resolve(variant, PROFILES[profile], dataset=dataset, data_dir=args.data, limit_val=args.limit_val,
                  limit_train=args.limit_train, changes=changes)
    protocol = args.tta or cfg.recipe.test_protocol
    data = runner.load(runner.data_spec(cfg), protocol)
    if data.num_classes != num_classes:
        raise HarnessError(f"the weights have {num_classes} classes but {dataset} has {data.num_classes}")
    d = distributed.init(args.device)
    model.to(d.device)
    result = evaluate.evaluate(model, data.val, d, batch_size=args.batch_size, workers=args.workers)
    if d.is_main:
        print(f"{variant.name} on {dataset} {data.split_name} ({result.n} images, {protocol}): "
              f"top-1 {result.top1:.3f}  top-5 {result.top5:.3f}  loss {result.loss:.4f}")
    distributed.shutdown()
    return 0

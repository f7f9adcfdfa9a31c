"""`harness eval`: weights (a finished run's final checkpoint, a registered model version, torchvision's, a file)
loaded into their variant at the input scale, size and dropout they were trained with, evaluated under a test
protocol."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from harness import checkpoint, distributed, evaluate, mlmodel, schema, tracking
from harness.config import own_recipe, resolve, run_dropout_scaling
from harness.errors import HarnessError
from harness.request import EvalRequest
from harness.runs.common import data_spec, load
from variants import Variant, get_variant

# TV: the file torchvision's IMAGENET1K_V1 weights are stored under in the torch hub cache.
TV_WEIGHTS = {"IMAGENET1K_V1": "alexnet-owt-7be5be79.pth"}


@dataclass(frozen=True)
class EvalOutcome:
    variant: str
    dataset: str
    split: str
    protocol: str
    result: evaluate.EvalResult
    is_main: bool

    def line(self) -> str:
        r = self.result
        return (
            f"{self.variant} on {self.dataset} {self.split} ({r.n} images, {self.protocol}): "
            f"top-1 {r.top1:.3f}  top-5 {r.top5:.3f}  loss {r.loss:.4f}"
        )


def load_weights(req: EvalRequest) -> tuple[str, dict]:
    """What the weights are (for messages) and their state dict: a finished run's final checkpoint, torchvision's
    from the hub cache, or a file."""
    if req.run_id:
        state = tracking.load_artifact(req.uri, req.run_id, schema.ART_CHECKPOINT, checkpoint.load_state_dict)
        return f"run {req.run_id}'s {schema.ART_CHECKPOINT}", state
    path = resolve_weights(req)
    return str(path), checkpoint.load_state_dict(path)


def resolve_weights(req: EvalRequest) -> Path:
    """The weights file: torchvision's from the hub cache, or a path."""
    assert req.weights is not None
    if req.weights in TV_WEIGHTS:
        if req.variant != "torchvision_alexnet":
            raise HarnessError(f"{req.weights} are torchvision's AlexNet weights: evaluate them as torchvision_alexnet")
        path = Path(torch.hub.get_dir()) / "checkpoints" / TV_WEIGHTS[req.weights]
        if not path.is_file():
            raise HarnessError(
                f"{req.weights} not found; no download is attempted: put {TV_WEIGHTS[req.weights]} at {path}"
            )
        return path
    return Path(req.weights)


def _state_width(variant: Variant, state: dict) -> float:
    """The width a state dict was trained at (`Recipe.width`): its first layer's channels over the paper's."""
    first = next((v for k, v in state.items() if k.endswith("weight") and v.dim() == 4), None)
    if first is None:
        return 1.0
    native = next(m for m in variant.build(1).modules() if isinstance(m, torch.nn.Conv2d)).out_channels
    return first.shape[0] / native


def run_input_scale(uri: str, run_id: str) -> float:
    """The input scale a run trained at: its logged `input_scale`, or 1 for runs logged before the field existed
    (all of them fed (x - mean) / std)."""
    return float(tracking.client(uri).get_run(run_id).data.params.get("input_scale", "1.0"))


def run_view(uri: str, run_id: str) -> dict[str, object]:
    """What a run's network saw and how it computed, to evaluate its checkpoint the same way whatever the recipe
    says now: its input scale, crop and resize, and its dropout scaling (from its logged params)."""
    params = tracking.client(uri).get_run(run_id).data.params
    view: dict[str, object] = {
        "input_scale": run_input_scale(uri, run_id),
        "dropout_scaling": run_dropout_scaling(params),
    }
    for key in ("crop", "resize"):
        if key in params:
            view[key] = int(params[key])
    if params.get("pool_to", "None") != "None":  # the positions fc6 read (absent: the network's own)
        view["pool_to"] = int(params["pool_to"])
    view["input_mean"] = params.get("input_mean", "channel")  # runs before mean images: the per-channel mean
    return view


def evaluate_weights(req: EvalRequest) -> EvalOutcome:
    """`harness eval`: load weights into the variant and evaluate them under a test protocol."""
    from variants import UnknownVariantError

    source_run = req.run_id
    if req.model:  # a registered model version: its weights, its name as the variant unless one is given
        registered = mlmodel.load_registered(req.uri, req.model)
        req = replace(req, variant=req.variant or registered.name)
        path, state, source_run = req.model, registered.state, registered.run_id or None
    if not req.variant:
        raise HarnessError("name the variant to evaluate (see `python -m harness list`)")
    try:
        variant = get_variant(req.variant)
    except UnknownVariantError as e:
        raise HarnessError(str(e)) from None
    if not req.model:
        path, state = load_weights(req)
    fc = [k for k in state if k.endswith("weight") and state[k].dim() == 2]
    if not fc:
        raise HarnessError(f"{path} is not a state dict for {variant.name}: it has no fully connected layer")
    num_classes = state[fc[-1]].shape[0]
    run_req = req.as_run()
    # a run's weights at the scale, size and dropout it was trained with; a file with the variant's own dropout (a
    # profile's override is for training); --set on top of either
    view = run_view(req.uri, source_run) if source_run else {"dropout_scaling": own_recipe(variant).dropout_scaling}
    mean = view.pop("input_mean", None)  # not a recipe field: the run's own mean, whatever the store holds now
    run_req = replace(run_req, sets={**view, **req.sets})
    cfg = resolve(variant, run_req)
    if mean is not None:
        cfg = replace(cfg, input_mean=str(mean))
    model = variant.build(num_classes, _state_width(variant, state), cfg.recipe.dropout_scaling, cfg.recipe.pool_to)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        lines = str(e).splitlines()
        raise HarnessError(
            f"{path} is not a state dict for {variant.name}: {(lines[1] if len(lines) > 1 else lines[0]).strip()}"
        ) from None
    protocol = req.tta or cfg.recipe.test_protocol
    data = load(replace(data_spec(cfg), batch_size=1), protocol)  # evaluation trains nothing: any training set
    if data.num_classes != num_classes:
        raise HarnessError(f"the weights have {num_classes} classes but {cfg.dataset} has {data.num_classes}")
    d = distributed.init(req.device)
    try:
        model.to(d.device)
        result = evaluate.evaluate(
            model, data.val, d, batch_size=req.batch_size, workers=req.workers, precision=req.precision
        )
    finally:
        distributed.shutdown()
    return EvalOutcome(variant.name, cfg.dataset, data.split_name, protocol, result, d.is_main)

"""Run the five analyses on a trained model and log them to its MLflow run (through `harness.tracking`):
`analyze` for a model in memory (the end of `harness run`), `analyze_run` for a finished run's weights and data
(`harness analyze RUN_ID`). Metric keys and artifact names are `harness.schema`'s QUAL_* constants: every number in
the table ART_QUAL_TABLE, the QUAL_HEADLINE ones also as run metrics."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from harness import checkpoint, schema, tracking
from harness.analysis import codes, colour, examples, figures, retrieval, translation
from harness.analysis.features import last_hidden_layer, run_batches
from harness.analysis.inputs import shifted_inputs, train_inputs, val_inputs
from harness.config import run_dropout_scaling
from harness.data import load_datasets
from harness.datasets import Datasets, DataSpec, stratified_slice
from harness.errors import HarnessError
from variants import Variant


@dataclass(frozen=True)
class Sizes:
    """How many images each analysis uses (class-balanced, fixed: `harness.datasets.stratified_slice`)."""

    val: int = 500  # validation images: top-5 examples and translation
    queries: int = 500  # of those, the retrieval queries
    database: int = 2000  # training images retrieved from
    shown: int = 6  # queries and neighbours in the retrieval figures (KSH12 Fig. 4: 5 queries, 6 neighbours)
    bits: int = codes.BITS
    code_epochs: int = 10
    code_hidden: int = codes.HIDDEN
    batch_size: int = 128


@dataclass(frozen=True)
class Summary:
    """What `analyze` logged: every metric, and the artifact paths."""

    metrics: dict[str, float]
    artifacts: tuple[str, ...] = field(default_factory=tuple)
    seconds: float = 0.0


def conv1_and_towers(model: nn.Module) -> tuple[np.ndarray, int] | None:
    """conv1's weights and the number of towers (conv2's groups: KSH12's two GPUs); None without an RGB conv1."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs or convs[0].in_channels != 3:
        return None
    towers = convs[1].groups if len(convs) > 1 else 1
    return convs[0].weight.detach().float().cpu().numpy(), towers


def analyze(
    model: nn.Module, data: Datasets, tracker, title: str, seed: int = 0, sizes: Sizes = Sizes(), verbose: bool = True
) -> Summary:
    """All five analyses of `model` on `data`, logged to `tracker` (metrics at step 0, figures under qualitative/)."""
    t0 = time.perf_counter()
    labels_v, labels_t = np.asarray(data.val.labels), np.asarray(data.train.labels)  # type: ignore[attr-defined]
    val_idx = stratified_slice(labels_v.tolist(), min(sizes.val, len(labels_v)))
    db_idx = stratified_slice(labels_t.tolist(), min(sizes.database, len(labels_t)))
    side = int(val_inputs(data, val_idx[:1]).shape[-1])
    layer = last_hidden_layer(model, side)
    metrics: dict[str, float] = {}
    timings: dict[str, float] = {}
    last = [t0]

    def tick(name: str) -> None:
        now = time.perf_counter()
        timings[name] = now - last[0]
        last[0] = now

    figs: dict[str, object] = {}
    summary: dict[str, object] = {"fc7_layer": layer, "val_indices": val_idx, "database_indices": db_idx}

    _colour(model, title, metrics, figs, summary)  # 1. tower colour specialisation (KSH12 s6.1, Fig. 3)
    tick("colour")

    # 2. top-5 examples (KSH12 Fig. 4 left), from the same pass as the fc7 activations of the validation images
    probs, feat_v, pix_v = run_batches(
        model, lambda ix: val_inputs(data, ix), val_idx, layer, sizes.batch_size, retrieval.pixel_vectors
    )
    labels_sub = labels_v[val_idx]
    chosen = examples.choose(probs, labels_sub)
    shown = val_inputs(data, [val_idx[e.index] for e in chosen])
    figs["top5.png"] = figures.top5_figure(chosen, shown, data.classes, f"{title}: top-5 examples")
    summary["examples"] = [
        {"val_index": val_idx[e.index], "label": e.label, "kind": e.kind, "top5": e.top5} for e in chosen
    ]

    tick("top5")

    # 3. fc7 retrieval against raw pixels (KSH12 Fig. 4 right)
    _, feat_d, pix_d = run_batches(
        model, lambda ix: train_inputs(data, ix), db_idx, layer, sizes.batch_size, retrieval.pixel_vectors
    )
    q = np.arange(min(sizes.queries, len(val_idx)))
    q_labels, db_labels = labels_sub[q], labels_t[db_idx]
    assert feat_v is not None and feat_d is not None and pix_v is not None and pix_d is not None
    pix_v = pix_v[q]
    raw_fc7 = retrieval.retrieve("fc7", feat_v[q], feat_d, q_labels, db_labels)
    raw_pix = retrieval.retrieve("pixels", pix_v, pix_d, q_labels, db_labels)
    for r in (raw_fc7, raw_pix):
        figs[f"retrieval_{r.name}.png"] = _neighbours(data, val_idx, db_idx, q_labels, db_labels, r, title, sizes)

    tick("retrieval")

    # 4. binary codes from auto-encoders on fc7 and on pixels (KSH12 s6.1)
    fc7_ae = codes.train_codes(feat_d, sizes.bits, sizes.code_hidden, sizes.code_epochs, seed=seed)
    pix_ae = codes.train_codes(pix_d, sizes.bits, sizes.code_hidden, sizes.code_epochs, seed=seed)
    fc7_code = retrieval.retrieve(
        "fc7_code", fc7_ae.codes(feat_v[q]), fc7_ae.codes(feat_d), q_labels, db_labels, hamming=True
    )
    pix_code = retrieval.retrieve(
        "pixel_code", pix_ae.codes(pix_v), pix_ae.codes(pix_d), q_labels, db_labels, hamming=True
    )
    results = (raw_fc7, fc7_code, pix_code, raw_pix)
    metrics |= _retrieval_metrics(results, sizes.bits)
    figs["codes.png"] = figures.codes_figure(results, sizes.bits, f"{title}: retrieval, {len(db_idx)} training images")

    tick("codes")

    _translation(model, data, val_idx, labels_sub, side, sizes, title, metrics, figs, summary)  # 5. (KSH12 s6.1)
    tick("translation")
    summary["seconds"] = timings
    seconds = time.perf_counter() - t0
    metrics[schema.QUAL_SECONDS] = seconds
    arts = _log(tracker, metrics, figs, summary)
    if verbose:
        parts = ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
        print(f"{title}: qualitative evaluation in {seconds:.1f} s ({parts})", file=sys.stderr)
    return Summary(metrics, arts, seconds)


def _retrieval_metrics(results: Sequence[retrieval.Retrieval], bits: int) -> dict[str, float]:
    """Precision at each k and milliseconds a query, per representation, and the codes' length."""
    metrics: dict[str, float] = {}
    for r in results:
        metrics |= {schema.QUAL_PRECISION.format(rep=r.name, k=k): v for k, v in r.precision.items()}
        metrics[schema.QUAL_QUERY_MS.format(rep=r.name)] = r.query_ms
    return metrics | {schema.QUAL_CODE_BITS: bits}


def _translation(
    model: nn.Module,
    data: Datasets,
    val_idx: Sequence[int],
    labels: np.ndarray,
    side: int,
    sizes: Sizes,
    title: str,
    metrics: dict[str, float],
    figs: dict[str, object],
    summary: dict[str, object],
) -> None:
    """Top-1 of the validation slice shifted by fractions of the input (KSH12 s6.1: translation invariance)."""
    fractions = tuple(s / 16 for s in schema.QUAL_SHIFT_STEPS)
    points = translation.accuracy_vs_shift(
        model, lambda ix, dx, dy: shifted_inputs(data, ix, dx, dy), val_idx, labels, side, fractions,
        sizes.batch_size,
    )  # fmt: skip
    metrics |= {schema.QUAL_SHIFT_TOP1.format(step=s): p.top1 for s, p in zip(schema.QUAL_SHIFT_STEPS, points)}
    figs["translation.png"] = figures.shift_figure(points, f"{title}: top-1 against shift")
    summary["translation"] = [{"fraction": p.fraction, "pixels": p.pixels, "top1": p.top1} for p in points]


def _colour(
    model: nn.Module, title: str, metrics: dict[str, float], figs: dict[str, object], summary: dict[str, object]
) -> None:
    """Tower colour specialisation (KSH12 s6.1, Fig. 3): conv1's colour index, per tower where there are two."""
    found = conv1_and_towers(model)
    if found is None:
        return
    w, n_towers = found
    towers = colour.tower_colour(w, n_towers)
    metrics[schema.QUAL_COLOUR_TOWERS] = n_towers
    metrics[schema.QUAL_COLOUR_MEAN] = float(colour.colour_index(w).mean())
    if n_towers > 1:
        metrics |= {schema.QUAL_COLOUR_TOWER.format(tower=t.tower): t.mean for t in towers}
    figs["colour.png"] = figures.colour_figure(w, towers, f"{title}: conv1 colour index")
    summary["colour_index"] = [t.index.tolist() for t in towers]


def _log(tracker, metrics: dict[str, float], figs: dict[str, object], summary: dict[str, object]) -> tuple[str, ...]:
    """The headline metrics at step 0, the table, the figures and the summary; the artifact paths written."""
    tracker.log_metrics({k: v for k, v in metrics.items() if k in schema.QUAL_HEADLINE}, step=0)
    tracker.log_text(qual_table(metrics), schema.ART_QUAL_TABLE)
    arts = []
    for name, fig in figs.items():
        tracker.log_figure(fig, f"{schema.ART_QUAL}/{name}")
        arts.append(f"{schema.ART_QUAL}/{name}")
    tracker.log_text(json.dumps(summary, indent=1, default=float), schema.ART_QUAL_SUMMARY)
    return (*arts, schema.ART_QUAL_SUMMARY, schema.ART_QUAL_TABLE)


def qual_table(metrics: Mapping[str, float]) -> str:
    """Every qual.* number as schema.ART_QUAL_TABLE: pandas' split JSON layout (as mlflow.log_table
    writes tables), one row per key, sorted."""
    rows = [[k, float(v)] for k, v in sorted(metrics.items())]
    return json.dumps({"columns": ["metric", "value"], "data": rows}, indent=1)


def _neighbours(data, val_idx, db_idx, q_labels, db_labels, r: retrieval.Retrieval, title: str, sizes: Sizes):
    """The first query of each class (up to `shown`) and its 6 nearest training images (KSH12 Fig. 4 right)."""
    first = {int(c): i for i, c in reversed(list(enumerate(q_labels)))}
    rows = np.array(sorted(first.values())[: sizes.shown])
    nn_ = r.neighbours[rows, : min(6, r.neighbours.shape[1])]
    queries = val_inputs(data, [val_idx[i] for i in rows])
    images = train_inputs(data, [db_idx[j] for j in nn_.reshape(-1)])
    ok = db_labels[nn_] == q_labels[rows, None]
    return figures.neighbours_figure(queries, images, nn_, ok, f"{title}: nearest training images by {r.name}")


# --- a finished run ---------------------------------------------------------------------------------------------------


def _opt_int(value: str | None) -> int | None:
    return None if value in (None, "", "None") else int(value)


def run_data(params: dict[str, str]) -> Datasets:
    """The run's data sets, rebuilt from its params; the fingerprint must match the one it trained on."""
    try:
        spec = DataSpec(
            dataset=params["dataset"],
            root=None if params.get("data_dir") in (None, "None") else Path(params["data_dir"]),
            image_size=int(params["crop"]),
            resize=int(params["resize"]),
            train_aug=params.get("train_aug", "ksh12"),
            flip=False,
            pca_lighting=False,  # centre views only: no lighting noise
            limit_train=_opt_int(params.get("limit_train")),
            limit_val=_opt_int(params.get("limit_val")),
            input_scale=float(params.get("input_scale", "1.0")),
            input_mean=params.get("input_mean", "channel"),
        )
    except (KeyError, ValueError) as e:
        raise HarnessError(
            f"the run's params do not describe its data ({e}): was it logged by `harness run`?"
        ) from None
    data = load_datasets(spec, "center")
    logged = params.get("dataset_fingerprint")
    if logged and logged != data.fingerprint:
        raise HarnessError(
            f"the {spec.dataset} data found now (fingerprint {data.fingerprint}) is not what the run trained on "
            f"({logged})"
        )
    return data


def run_network(variant: Variant, params: Mapping[str, str], num_classes: int) -> nn.Module:
    """The network a logged run trained, before its weights: its width, and the dropout it trained with (logged;
    "train", nn.Dropout, before the field existed), which a state dict cannot say (dropout has no weights)."""
    pool_to = params.get("pool_to", "None")  # absent or None: the network's own pool before fc6
    width = float(params.get("width", "1.0"))
    return variant.build(num_classes, width, run_dropout_scaling(params), None if pool_to == "None" else int(pool_to))


def analyze_run(uri: str, run_id: str, device: str = "cpu", sizes: Sizes = Sizes()) -> Summary:
    """`harness analyze RUN_ID`: the finished run's final weights and data -> `analyze`, logged to that run."""
    from variants import UnknownVariantError, get_variant

    info = tracking.run_info(uri, run_id)
    if info.status != "FINISHED":
        raise HarnessError(f"run {run_id} is {info.status}, not FINISHED: only a finished run has final weights")
    p = info.params
    try:
        variant = get_variant(p.get("variant", ""))
    except UnknownVariantError as e:
        raise HarnessError(str(e)) from None
    data = run_data(p)
    state = tracking.load_artifact(uri, run_id, schema.ART_CHECKPOINT, checkpoint.load_state_dict)
    model = run_network(variant, p, data.num_classes)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise HarnessError(f"run {run_id}'s final.pt does not fit {variant.name}: {str(e).splitlines()[0]}") from None
    model.to(torch.device(device))
    seed = _opt_int(p.get("seed")) or 0
    return analyze(model, data, tracking.Tracker(uri, run_id), f"{variant.name} seed {seed}", seed, sizes)

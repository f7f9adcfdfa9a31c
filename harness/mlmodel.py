"""Final weights as an MLflow model: logged with `mlflow.pytorch.log_model`, registered in the Model Registry, read
back for `harness eval --model models:/NAME/VERSION`.

The model is saved in MLflow's "pt2" format (`torch.export`): a zip of a traced graph (JSON) and raw tensor bytes.
Reading it back never goes through `torch.export.load`: torch's pt2 reader unpickles any weight or constant whose
entry in the archive's config says `"use_pickle": true` (`torch/export/pt2_archive/_package.py`, `_load_state_dict`,
`_load_constants`), so an edited archive in a store, or one uploaded to a `harness server`, would run its payload.
`read_pt2_weights` parses the weights config as JSON, refuses any entry that asks for pickle (and the legacy
`data/weights/<model>.pt` pickle), and builds each tensor from its raw bytes and recorded shape and strides. Only
those weights go into the variant's own network, so evaluation runs the registry's code, not the archive's graph.
Only a registered run logs one (`harness run --register`, the paper profile): an unregistered run keeps one copy of its
weights, `checkpoint/final.pt` (the report, `harness analyze` and `eval --run-id` read it, `weights_only`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from harness import schema, tracking
from harness.errors import HarnessError


@dataclass(frozen=True)
class LoggedModel:
    model_uri: str  # models:/m-... (MLflow 3's logged model)
    registered: str | None = None  # models:/NAME/VERSION when registered


def _quiet() -> None:
    """MLflow's notes about pip requirements and registration are not the user's business here."""
    for name in ("mlflow.models.model", "mlflow.utils.requirements_utils", "mlflow.tracking._model_registry"):
        logging.getLogger(name).setLevel(logging.ERROR)


def requirements() -> list[str]:
    """What loading the model needs, pinned to what trained it (explicit: MLflow's inference would load the model in a
    subprocess to find out)."""
    from importlib import metadata

    return [f"{d}=={metadata.version(d)}" for d in ("torch", "mlflow")]


def log_model(
    uri: str,
    run_id: str,
    model: torch.nn.Module,
    input_size: int,
    variant: str,
    register: bool = False,
    version_tags: dict[str, str] | None = None,
) -> LoggedModel:
    """Log `model` (on any device; exported from a CPU copy) as the run's MLflow model `schema.MODEL_NAME`, with an
    input example of two `input_size` images (the batch stays dynamic), and register it under `variant` when asked,
    tagging the new version with `version_tags` (the run's data set, top-1 and id)."""
    import copy

    import mlflow.pytorch
    import numpy as np

    _quiet()
    cpu = copy.deepcopy(model).to("cpu").float().eval()
    example = np.zeros((2, 3, input_size, input_size), dtype=np.float32)
    c = tracking.client(uri)
    # created here, in the run's experiment (without an active run MLflow would put it in the default experiment)
    logged = c.create_logged_model(
        experiment_id=c.get_run(run_id).info.experiment_id,
        name=schema.MODEL_NAME,
        source_run_id=run_id,
        tags={"variant": variant},
    )
    info = mlflow.pytorch.log_model(
        cpu,
        name=schema.MODEL_NAME,
        model_id=logged.model_id,
        input_example=example,
        serialization_format="pt2",
        pip_requirements=requirements(),
        registered_model_name=variant if register else None,
        metadata={"variant": variant},
        run_id=run_id,  # `Model.log`'s: links the model to the run (its outputs) without an active run
    )
    version = info.registered_model_version
    if register and version is not None:
        for k, v in (version_tags or {}).items():
            c.set_model_version_tag(variant, str(version), k, v)
        return LoggedModel(info.model_uri, f"models:/{variant}/{version}")
    return LoggedModel(info.model_uri)


def parse_model_uri(text: str) -> tuple[str, str]:
    """`models:/NAME/VERSION` (or `models:/NAME@alias`) -> (NAME, VERSION or @alias); anything else is refused."""
    if not text.startswith("models:/"):
        raise HarnessError(f"--model takes models:/NAME/VERSION (a registered model), not {text!r}")
    rest = text[len("models:/") :]
    if "@" in rest and "/" not in rest:
        name, alias = rest.split("@", 1)
        if name and alias:
            return name, "@" + alias
    parts = rest.split("/")
    if len(parts) == 2 and parts[0] and parts[1].isdigit():
        return parts[0], parts[1]
    raise HarnessError(f"--model takes models:/NAME/VERSION (e.g. models:/alexnet2014/1), not {text!r}")


@dataclass(frozen=True)
class RegisteredWeights:
    name: str  # the registered model (the harness registers under the variant's name)
    version: str
    run_id: str  # the run that logged it ("" when unknown)
    state: dict[str, torch.Tensor]


def load_registered(uri: str, model_uri: str) -> RegisteredWeights:
    """A registered model version's weights, read from its pt2 archive without unpickling (`read_pt2_weights`)."""
    name, version = parse_model_uri(model_uri)
    c = tracking.client(uri)
    try:
        mv = (
            c.get_model_version_by_alias(name, version[1:])
            if version.startswith("@")
            else c.get_model_version(name, version)
        )
    except Exception as e:  # noqa: BLE001 - MLflow's not-found error is one line for the user
        raise HarnessError(
            f"no registered model version {model_uri} in {tracking.mlruns.display(uri)}: {str(e).splitlines()[0]}"
        ) from None
    import os

    from mlflow.artifacts import download_artifacts

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per file: noise in a CLI's output

    with contextlib.ExitStack() as stack:
        dst = stack.enter_context(tempfile.TemporaryDirectory())
        try:
            local = Path(
                download_artifacts(artifact_uri=f"models:/{name}/{mv.version}", dst_path=dst, tracking_uri=uri)
            )
        except Exception as e:  # noqa: BLE001
            raise HarnessError(f"cannot download {model_uri}: {str(e).splitlines()[0]}") from None
        archive = local / "data" / "model.pt2"
        if not archive.is_file():
            raise HarnessError(f"{model_uri} is not a pt2 model logged by the harness (no data/model.pt2)")
        try:
            state = read_pt2_weights(archive)
        except HarnessError as e:
            raise HarnessError(f"{model_uri}: data/model.pt2 {e}") from None
    return RegisteredWeights(name, str(mv.version), mv.run_id or "", state)


def _ints(values: list[dict], what: str) -> list[int]:
    """A serialized size or stride (`[{"as_int": 4}, ...]`); symbolic entries are not what the harness logs."""
    try:
        return [int(v["as_int"]) for v in values]
    except (KeyError, TypeError, ValueError):
        raise HarnessError(f"has a non-integer {what} ({values!r:.80})") from None


def _weights_config(z: zipfile.ZipFile) -> tuple[str, dict]:
    """(the folder of the weight files, the parsed `<model>_weights_config.json`) of a pt2 archive."""
    names = z.namelist()
    configs = [n for n in names if n.endswith("_weights_config.json") and "/data/weights/" in "/" + n]
    legacy = [n for n in names if "/data/weights/" in "/" + n and n.endswith(".pt")]
    if legacy:  # torch's legacy format: the whole state dict as one torch.save pickle
        raise HarnessError(f"holds pickled weights ({legacy[0]}): refused, the harness never unpickles a model")
    if len(configs) != 1:
        raise HarnessError(f"is not a pt2 archive with one model ({len(configs)} weights configs)")
    folder = configs[0].rpartition("/")[0] + "/"
    try:
        config = json.loads(z.read(configs[0]))["config"]
    except (KeyError, TypeError, ValueError) as e:
        raise HarnessError(f"has an unreadable weights config: {e}") from None
    if not isinstance(config, dict):
        raise HarnessError("has an unreadable weights config (not a mapping)")
    return folder, config


def read_pt2_weights(path: Path) -> dict[str, torch.Tensor]:
    """The weights of a `torch.export` pt2 archive, by name, read as raw bytes: never unpickled.

    Refuses (HarnessError, one line) an archive any of whose weights asks for pickle, the legacy pickled layout, and
    anything whose bytes do not match the recorded dtype, shape and strides."""
    from torch._export.serde.schema import ScalarType
    from torch._export.serde.serialize import deserialize_scalar_type

    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise HarnessError(f"is not a readable pt2 archive: {e}") from None
    state: dict[str, torch.Tensor] = {}
    with z:
        folder, config = _weights_config(z)
        for fqn, meta in config.items():
            if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
                raise HarnessError(f"asks to unpickle weight {fqn!r}: refused, the harness never unpickles a model")
            try:
                tm = meta["tensor_meta"]
                dtype = deserialize_scalar_type(ScalarType(int(tm["dtype"])))
                raw = bytearray(z.read(folder + str(meta["path_name"])))
            except (KeyError, TypeError, ValueError) as e:
                raise HarnessError(f"has an unreadable entry for weight {fqn!r}: {e!r:.80}") from None
            sizes, strides = _ints(tm.get("sizes"), "size"), _ints(tm.get("strides"), "stride")
            offset = _ints([tm.get("storage_offset")], "storage offset")[0]
            try:
                flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.zeros(0, dtype=dtype)
                state[fqn] = torch.as_strided(flat, sizes, strides, offset).clone()
            except (RuntimeError, ValueError) as e:
                raise HarnessError(f"weight {fqn!r} does not match its bytes: {str(e).splitlines()[0]}") from None
    return state

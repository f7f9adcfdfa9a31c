"""Final weights as an MLflow model: logged with `mlflow.pytorch.log_model`, registered in the Model Registry, read
back for `harness eval --model models:/NAME/VERSION`.

The model is saved in MLflow's "pt2" format (`torch.export`): a traced graph and raw tensors, which MLflow loads
without unpickling anything (`mlflow.pytorch._validate_pt2_archive_is_pickle_free`). The harness reads only its
weights back (`ExportedProgram.state_dict`) into the variant's own network, so evaluation runs the registry's code, not
the archive's graph. The run's `checkpoint/final.pt` stays as well (the report and `harness analyze` read it).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
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
    """A registered model version's weights, read from its pt2 archive without unpickling (`torch.export.load`)."""
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
            f"no registered model version {model_uri} in {tracking.store.display(uri)}: {str(e).splitlines()[0]}"
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
            program = torch.export.load(str(archive))
        except Exception as e:  # noqa: BLE001 - a corrupt archive is one line
            raise HarnessError(f"{model_uri}: cannot read data/model.pt2: {str(e).splitlines()[0]}") from None
        state = {k: v.detach().clone() for k, v in program.state_dict.items()}
    return RegisteredWeights(name, str(mv.version), mv.run_id or "", state)

"""Model archives are read without unpickling: `eval --model` on an archive edited to ask for pickle refuses it in
one line, and the payload never runs (torch's own pt2 reader would run it)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
import torch

from harness import mlmodel
from harness.errors import HarnessError


class _Payload:
    """Unpickling this touches a marker file: the proof that code from an archive ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 2))


def _poison(archive: Path, marker: Path) -> None:
    """Rewrite `archive` in place as an attacker would: its first weight marked `use_pickle` and replaced by a
    `torch.save` of a payload."""
    with zipfile.ZipFile(archive) as z:
        files = {n: z.read(n) for n in z.namelist()}
    config_name = next(n for n in files if n.endswith("_weights_config.json"))
    config = json.loads(files[config_name])
    fqn, meta = next(iter(config["config"].items()))
    meta["use_pickle"] = True
    files[config_name] = json.dumps(config).encode()
    weight = config_name.rpartition("/")[0] + "/" + meta["path_name"]
    tmp = archive.parent / "payload.pt"
    torch.save(_Payload(marker), tmp)
    files[weight] = tmp.read_bytes()
    tmp.unlink()
    with zipfile.ZipFile(archive, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)


def _exported(path: Path, model: torch.nn.Module) -> Path:
    torch.export.save(torch.export.export(model, (torch.zeros(1, 3, 8, 8),)), path)
    return path


def test_the_weights_of_an_export_archive_read_back_exactly(tmp_path: Path) -> None:
    model = _tiny()
    state = mlmodel.read_pt2_weights(_exported(tmp_path / "m.pt2", model))
    assert state.keys() == model.state_dict().keys()
    for k, v in model.state_dict().items():
        assert torch.equal(state[k], v)


def test_an_archive_asking_for_pickle_is_refused_and_its_payload_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    archive = _exported(tmp_path / "m.pt2", _tiny())
    _poison(archive, marker)
    with pytest.raises(HarnessError, match="asks to unpickle weight '0.weight': refused"):
        mlmodel.read_pt2_weights(archive)
    assert not marker.exists()
    # the control: torch's own reader runs it, so the assertion above could have failed
    with pytest.raises(Exception):  # noqa: B017 - the payload's object is not a tensor: any error after it ran
        torch.export.load(str(archive))
    assert marker.exists()


@pytest.mark.parametrize(
    "damage",
    ["not a zip", "truncated bytes", "legacy pickle layout", "unknown dtype", "strides past the storage"],
)
def test_damaged_archives_are_one_line_errors(tmp_path: Path, damage: str) -> None:
    archive = _exported(tmp_path / "m.pt2", _tiny())
    with zipfile.ZipFile(archive) as z:
        files = {n: z.read(n) for n in z.namelist()}
    config_name = next(n for n in files if n.endswith("_weights_config.json"))
    config = json.loads(files[config_name])
    meta = config["config"]["0.weight"]
    folder = config_name.rpartition("/")[0] + "/"
    if damage == "not a zip":
        archive.write_bytes(os.urandom(256))
    else:
        if damage == "truncated bytes":
            files[folder + meta["path_name"]] = files[folder + meta["path_name"]][:10]
        elif damage == "legacy pickle layout":
            files[folder + "model.pt"] = b"anything"
        elif damage == "unknown dtype":
            meta["tensor_meta"]["dtype"] = 999
        else:
            meta["tensor_meta"]["storage_offset"] = {"as_int": 10**6}
        files[config_name] = json.dumps(config).encode()
        with zipfile.ZipFile(archive, "w") as z:
            for n, data in files.items():
                z.writestr(n, data)
    with pytest.raises(HarnessError) as e:
        mlmodel.read_pt2_weights(archive)
    assert "\n" not in str(e.value)


def test_eval_of_a_poisoned_registered_model_is_one_line_and_runs_nothing(tmp_path: Path, uri: str, harness_main):
    """The attack end to end: a model logged and registered in a store, its archive edited there, then
    `harness eval --model models:/NAME/1` against that store."""
    from harness import tracking

    c = tracking.client(uri)
    exp = c.create_experiment("poison", artifact_location=str(tmp_path / "artifacts"))
    run = c.create_run(exp)
    mlmodel.log_model(uri, run.info.run_id, _tiny(), 8, "alexnet2014", register=True)
    c.set_terminated(run.info.run_id)
    (archive,) = (tmp_path / "artifacts").rglob("model.pt2")
    marker = tmp_path / "ran"
    _poison(archive, marker)
    code, out, err = harness_main(["eval", "--model", "models:/alexnet2014/1", "--tracking-uri", uri])
    assert code != 0 and not marker.exists()
    assert "Traceback" not in err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("harness: error: models:/alexnet2014/1: data/model.pt2 asks to unpickle")
    )

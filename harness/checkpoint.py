"""Training checkpoints that load with torch.load(weights_only=True): tensors and plain Python types only.

A file is looked at before torch reads it (`_format`): torch.save's zip archive, or its legacy format (a pickle);
anything else, an empty file included, is "not a checkpoint" in one line, not torch's message about mmap. A file that
asks to unpickle anything but tensors and plain types is refused (torch's weights-only unpickler), never run.
"""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from harness import locks
from harness.errors import HarnessError


def rng_state() -> dict[str, object]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "python": _to_plain(random.getstate()),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
    }


def set_rng_state(state: dict[str, object]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(_to_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))


def _to_plain(obj: object) -> object:
    return [_to_plain(o) for o in obj] if isinstance(obj, tuple) else obj


def _to_tuple(obj: object) -> object:
    return tuple(_to_tuple(o) for o in obj) if isinstance(obj, list) else obj


def save(path: Path, **state: object) -> None:
    """Atomic write: a crash mid-save leaves the previous checkpoint intact. The temporary file's name is this
    writer's own (PATH.<pid>.<random>.tmp), so two writers never share one; it is removed if the write fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = locks.unique_tmp(path)
    try:
        torch.save(state, tmp)  # no fsync: a killed process is the case; ~0.5 GB per epoch synced would cost seconds
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# The state `load(path, keep=True)` read, handed to the next `load` of the same unchanged file instead of reading it
# again (the runner checks a checkpoint before resuming, then the engine restores it: one read of ~0.5 GB, not two).
_KEPT: dict[str, object] = {}


def _identity(path: Path) -> tuple[str, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)


def load(path: Path, keep: bool = False) -> dict[str, object]:
    kept, identity = _KEPT.pop("state", None), _KEPT.pop("identity", None)
    if kept is not None and identity is not None and identity == _identity(path):
        return kept  # type: ignore[return-value]
    try:
        state = _torch_load(path, mmap=False)
    except _NotLoaded as e:
        raise HarnessError(f"cannot load checkpoint {path}: {e}") from None
    if keep:
        _KEPT.update(state=state, identity=_identity(path))
    return state


ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6 (a zip archive)
PICKLE_MAGIC = b"\x80"  # torch.save(_use_new_zipfile_serialization=False): a pickle, protocol 2 or later


class _NotLoaded(Exception):
    """Why a file did not load, as the end of a sentence: "not a checkpoint (...)"."""


def _torch_load(path: Path, mmap: bool) -> object:
    """torch.load(weights_only=True) of a file that looks like torch.save's (memory-mapped where its format allows);
    `_NotLoaded` with one line otherwise."""
    kind = _format(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and kind == "zip")
    except pickle.UnpicklingError as e:  # the weights-only unpickler refused a global: nothing of it ran
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise _NotLoaded(
            "not a weights-only checkpoint (it holds objects other than tensors and plain types, which loading "
            f"would unpickle and could run code; refused{': ' + lines[1] if len(lines) > 1 else ''})"
        ) from None
    except Exception as e:  # noqa: BLE001 - a truncated or corrupt file is one line for the user
        first = str(e).split(". ")[0].splitlines()  # torch's first sentence: what failed, not its advice
        raise _NotLoaded(f"not a checkpoint ({first[0].rstrip('.') if first else type(e).__name__})") from None


def _format(path: Path) -> str:
    """ "zip" or "pickle" by the file's first bytes; `_NotLoaded` for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise _NotLoaded(f"not readable ({e.strerror or e})") from None
    if not head:
        raise _NotLoaded("not a checkpoint (an empty file)")
    if head == ZIP_MAGIC:
        return "zip"
    if head[:1] == PICKLE_MAGIC:
        return "pickle"
    raise _NotLoaded(f"not a checkpoint ({size} bytes, neither torch.save's zip archive nor its legacy format)")


# Where training checkpoints (this harness's, torchvision's references', Lightning-style) keep the weights.
WEIGHT_KEYS = ("model", "state_dict", "model_state")


def extract_state_dict(obj: object) -> dict[str, torch.Tensor] | None:
    """The state dict in a loaded weights file (plain, or under one of WEIGHT_KEYS; DDP's `module.` prefix dropped),
    or None when it holds none."""
    if isinstance(obj, dict):
        for key in WEIGHT_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        return None
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A weights file's state dict (memory-mapped); a missing or wrong file is a HarnessError."""
    if not path.is_file():
        raise HarnessError(f"weights file not found: {path}")
    try:
        obj = _torch_load(path, mmap=True)
    except _NotLoaded as e:
        raise HarnessError(f"cannot load weights: {path} is {e}") from None
    state = extract_state_dict(obj)
    if state is None:
        raise HarnessError(f"{path} is not a state dict (a mapping of parameter names to tensors)")
    return state


# --- training checkpoints that cannot be resumed --------------------------------------------------------------------

TRAINING_KEYS = ("model", "optimizer", "scheduler", "epoch", "rng", "history")


def check_training(path: Path, config_hash: str) -> str | None:
    """Why the training checkpoint at `path` cannot be resumed (truncated, corrupt, incomplete, another
    configuration's), or None when it can: then its state is kept for the `load` that restores it."""
    try:
        state = load(path, keep=True)
    except HarnessError as e:
        return str(e).removeprefix(f"cannot load checkpoint {path}: ")
    missing = [k for k in TRAINING_KEYS if not isinstance(state, dict) or k not in state]
    problem = (
        f"no {', '.join(missing)}"
        if missing
        else f"config hash {state['config_hash']}, not {config_hash}"
        if state.get("config_hash", config_hash) != config_hash
        else None
    )
    if problem is not None:
        _KEPT.clear()
    return problem


def move_aside(path: Path) -> Path:
    """Rename a checkpoint that cannot be used to PATH.corrupt-<UTC time>, kept for a post-mortem; returns the name."""
    import time

    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    os.replace(path, aside)
    return aside

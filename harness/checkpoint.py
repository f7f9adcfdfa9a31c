"""Training checkpoints that load with torch.load(weights_only=True): tensors and plain Python types only."""

from __future__ import annotations

import os
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
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise HarnessError(f"cannot load checkpoint {path}: {str(e).splitlines()[0]}") from None
    if keep:
        _KEPT.update(state=state, identity=_identity(path))
    return state


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
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one line for the user
        raise HarnessError(
            f"cannot load weights {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
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

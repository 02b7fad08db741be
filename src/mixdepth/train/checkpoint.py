"""Atomic, resumable training checkpoints.

A checkpoint is a directory `OUT/checkpoints/step_XXXXXXXX/` holding
- `model.safetensors`:     model parameters and buffers, with the metadata of a weights file
                           (architecture, options, working size), so `load_model` and every
                           command that takes --weights read it as they read a final model;
- `optimizer.safetensors`: optimiser state tensors (key `state.<param index>.<name>`);
- `state.pt`:              everything else as plain tensors, numbers, strings, lists and dicts
                           (loadable with `torch.load(weights_only=True)`): step, optimiser
                           hyper-parameters, scheduler, sampler position, RNG states
                           (python, numpy, torch), the config, and logged history;
- `config.yaml`:           the run's config, for people.
It is written under a temporary name and moved into place with `os.replace`; the pointer file
`OUT/checkpoints/latest` (itself replaced atomically) is updated last, so an interruption at any
moment leaves the previous checkpoint intact and `latest` pointing at a complete one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file

from mixdepth.errors import FileFormatError


def _atomic_write(path: Path, write) -> None:
    """Call write(temp_path), fsync it, then os.replace it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rng_state() -> dict:
    """The python, numpy and torch (CPU and CUDA) random states as weights_only-safe data."""
    _, mt_state, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()  # noqa: NPY002  (the legacy global RNG that transforms may use)
    state = {
        "python": {"state": list(mt_state), "gauss": gauss},
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` returned."""
    random.setstate((3, tuple(state["python"]["state"]), state["python"]["gauss"]))
    np_state = state["numpy"]
    np.random.set_state(  # noqa: NPY002  (the legacy global RNG that transforms may use)
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _optimizer_split(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Optimizer state dict -> (tensors for safetensors, the rest as plain data)."""
    full = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in full["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": full["param_groups"], "scalars": scalars}


def _optimizer_join(tensors: dict, rest: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for key, value in rest["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def _model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict as contiguous CPU tensors; tied weights are stored once per name (cloned)."""
    tensors, seen = {}, set()
    for name, value in model.state_dict().items():
        value = value.detach().cpu()
        if value.data_ptr() in seen and value.numel():
            value = value.clone()
        seen.add(value.data_ptr())
        tensors[name] = value.contiguous()
    return tensors


def save_checkpoint(
    out_dir: str | Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    extra: dict,
    config: dict,
    keep: int = 2,
    model_metadata: dict[str, str] | None = None,
) -> Path:
    """Write checkpoint `step` atomically and keep only the newest `keep`; returns its dir.

    extra: plain data (scheduler and sampler state dicts, history, ...) stored in state.pt
    beside the step, RNG states and config. model_metadata: safetensors metadata of
    model.safetensors (`mixdepth.models.checkpoints.model_metadata`).
    """
    root = Path(out_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".step_{step:08d}.", suffix=".tmp"))
    try:
        opt_tensors, opt_rest = _optimizer_split(optimizer)
        save_file(_model_tensors(model), staging / "model.safetensors", metadata=model_metadata)
        save_file(opt_tensors, staging / "optimizer.safetensors")
        state = {
            "format": 1,
            "step": int(step),
            "optimizer": opt_rest,
            "rng": rng_state(),
            "config": config,
            **extra,
        }
        torch.save(state, staging / "state.pt")
        (staging / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        for item in staging.iterdir():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _atomic_write(root / "latest", lambda tmp: Path(tmp).write_text(final.name + "\n"))
    checkpoints = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in checkpoints[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The directory `latest` points at, or None when the run has no checkpoint yet."""
    root = Path(out_dir) / "checkpoints"
    pointer = root / "latest"
    if not pointer.is_file():
        return None
    target = root / pointer.read_text().strip()
    if not (target / "state.pt").is_file():
        raise FileFormatError(pointer, f"points at {target.name}, which is not a checkpoint")
    return target


def load_checkpoint(
    path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> dict:
    """Load model (strict) and optimiser state from a checkpoint dir; returns state.pt data.

    The caller restores the RNG states (`set_rng_state(state["rng"])`), scheduler and sampler.
    """
    path = Path(path)
    try:
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
        model_tensors = load_file(path / "model.safetensors")
    except Exception as err:  # torch/pickle/safetensors each raise their own error types
        raise FileFormatError(path, f"unreadable checkpoint: {err}") from None
    missing, unexpected = set(model.state_dict()) - set(model_tensors), set(model_tensors) - set(
        model.state_dict()
    )
    if missing or unexpected:
        raise FileFormatError(
            path / "model.safetensors",
            f"does not match the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}",
        )
    model.load_state_dict(model_tensors, strict=True)
    if optimizer is not None:
        opt_tensors = load_file(path / "optimizer.safetensors")
        optimizer.load_state_dict(_optimizer_join(opt_tensors, state["optimizer"]))
    return state


def write_json(path: str | Path, data: Any) -> None:
    """Atomically write `data` as indented JSON."""
    _atomic_write(Path(path), lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2)))


__all__ = [
    "latest_checkpoint",
    "load_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "write_json",
]

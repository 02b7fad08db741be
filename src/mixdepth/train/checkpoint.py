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
- `config.yaml`:           the run's config, for people;
- `checksums.json`:        CRC-32 of the three files above, checked before loading, so a
                           truncated or bit-flipped file is refused with its name.
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
import zlib
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
        sums = {name: _crc32(staging / name) for name in _CHECKED}
        (staging / "checksums.json").write_text(json.dumps(sums, indent=2))
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
    try:
        target = root / pointer.read_bytes().decode("utf-8").strip()
    except UnicodeDecodeError:
        raise FileFormatError(pointer, "not a text file naming a checkpoint") from None
    if not target.name.startswith("step_") or not (target / "state.pt").is_file():
        raise FileFormatError(pointer, f"points at {target.name!r}, which is not a checkpoint")
    return target


def checkpoint_candidates(out_dir: str | Path) -> list[Path]:
    """Checkpoint directories of a run to resume from, best first: the one `latest` points
    at (when it is one), then the other complete-looking `step_*` directories, newest first."""
    root = Path(out_dir) / "checkpoints"
    try:
        first = [latest_checkpoint(out_dir)]
    except FileFormatError:
        first = []
    others = sorted(
        (p for p in root.glob("step_*") if p.is_dir() and (p / "state.pt").is_file()),
        reverse=True,
    )
    return [p for p in first if p is not None] + [p for p in others if p not in first]


_CHECKED = ("model.safetensors", "optimizer.safetensors", "state.pt")


def _crc32(path: Path) -> str:
    """CRC-32 of a file as 8 hex digits."""
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


def _verify_checksums(path: Path) -> None:
    """Compare each file with `checksums.json` (absent in checkpoints of older versions)."""
    listing = path / "checksums.json"
    if not listing.is_file():
        return
    try:
        sums = json.loads(listing.read_bytes())
        if not isinstance(sums, dict):
            raise ValueError("not a JSON object")
    except ValueError as err:
        raise FileFormatError(listing, f"unreadable checksum list ({err})") from None
    for name in _CHECKED:
        if name not in sums:
            continue
        file = path / name
        if not file.is_file():
            raise FileFormatError(file, "missing from the checkpoint")
        if _crc32(file) != sums[name]:
            raise FileFormatError(
                file, "checksum mismatch: the file changed after it was written (truncated or "
                "corrupt)"
            )


def _read(path: Path, read):
    try:
        return read(path)
    except FileNotFoundError:
        raise FileFormatError(path, "missing from the checkpoint") from None
    # torch.load (zip reader and restricted unpickler) and safetensors raise many different
    # types for a truncated or corrupt file: at this file boundary each one means "corrupt"
    except Exception as err:
        raise FileFormatError(
            path, f"unreadable checkpoint file ({type(err).__name__}: {err})"
        ) from None


def read_checkpoint(path: str | Path) -> tuple[dict, dict, dict]:
    """(state.pt data, model tensors, optimiser tensors) of a checkpoint dir, checked: every
    file readable, model tensors finite. FileFormatError names the file at fault."""
    from mixdepth.models.checkpoints import require_finite_tensors

    path = Path(path)
    _verify_checksums(path)
    state = _read(
        path / "state.pt", lambda p: torch.load(p, map_location="cpu", weights_only=True)
    )
    if not isinstance(state, dict) or not isinstance(state.get("step"), int) or not isinstance(
        state.get("optimizer"), dict
    ):
        raise FileFormatError(path / "state.pt", "not a training state (no step or optimizer)")
    model_tensors = _read(path / "model.safetensors", load_file)
    require_finite_tensors(model_tensors, path / "model.safetensors")
    opt_tensors = _read(path / "optimizer.safetensors", load_file)
    require_finite_tensors(opt_tensors, path / "optimizer.safetensors")
    return state, model_tensors, opt_tensors


def _check_optimizer_shapes(optimizer: torch.optim.Optimizer, state: dict, path: Path) -> None:
    """Raise unless every per-parameter state tensor has its parameter's shape."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, entry in state["state"].items():
        if not 0 <= index < len(params):
            raise FileFormatError(path, f"state for parameter {index}, the optimiser has "
                                  f"{len(params)}")
        for name, value in entry.items():
            if isinstance(value, torch.Tensor) and value.ndim and value.shape != params[
                index
            ].shape:
                raise FileFormatError(
                    path, f"state.{index}.{name} has shape {tuple(value.shape)}, the parameter "
                    f"{tuple(params[index].shape)}"
                )


def load_checkpoint(
    path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> dict:
    """Load model (strict) and optimiser state from a checkpoint dir; returns state.pt data.

    The caller restores the RNG states (`set_rng_state(state["rng"])`), scheduler and sampler.
    Every file is read and checked before anything is loaded into `model` or `optimizer`.
    """
    return apply_checkpoint(path, read_checkpoint(path), model, optimizer)


def apply_checkpoint(
    path: str | Path,
    data: tuple[dict, dict, dict],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
) -> dict:
    """Load what `read_checkpoint(path)` returned into model and optimiser; returns state."""
    path = Path(path)
    state, model_tensors, opt_tensors = data
    missing, unexpected = set(model.state_dict()) - set(model_tensors), set(model_tensors) - set(
        model.state_dict()
    )
    if missing or unexpected:
        raise FileFormatError(
            path / "model.safetensors",
            f"does not match the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}",
        )
    shapes = [k for k, v in model.state_dict().items() if v.shape != model_tensors[k].shape]
    if shapes:
        raise FileFormatError(
            path / "model.safetensors", f"does not match the model: shapes of {shapes[:5]} differ"
        )
    if optimizer is not None:
        try:
            opt_state = _optimizer_join(opt_tensors, state["optimizer"])
        except (KeyError, ValueError, TypeError, AttributeError) as err:
            raise FileFormatError(
                path / "optimizer.safetensors", f"optimiser state does not fit ({err!r})"
            ) from None
        _check_optimizer_shapes(optimizer, opt_state, path / "optimizer.safetensors")
    model.load_state_dict(model_tensors, strict=True)
    if optimizer is not None:
        try:
            optimizer.load_state_dict(opt_state)
        # the optimiser checks group sizes and entries as it loads, raising ValueError,
        # KeyError or TypeError for a state that does not belong to these parameters
        except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as err:
            raise FileFormatError(
                path / "optimizer.safetensors", f"optimiser state does not fit ({err})"
            ) from None
    return state


def write_json(path: str | Path, data: Any) -> None:
    """Atomically write `data` as indented JSON."""
    _atomic_write(Path(path), lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2)))


__all__ = [
    "apply_checkpoint",
    "checkpoint_candidates",
    "latest_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "write_json",
]

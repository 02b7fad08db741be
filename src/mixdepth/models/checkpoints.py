"""Reading, checking and writing model weights.

Native format: safetensors with metadata {"model": name, "options": JSON, "mixdepth_version",
"input_size", "mean", "std"}; input_size is the working size the weights were trained at, mean
and std (JSON lists) the input normalisation they were trained with (see `load_model`).
Also read: PyTorch `.pt`/`.pth` state dicts (the official MiDaS/DPT files), loaded with
`torch.load(weights_only=True)`, plain or wrapped in {"model": ...} / {"state_dict": ...}.
Loading is strict: a file that does not fit the architecture fails with the missing,
unexpected and mis-shaped keys listed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mixdepth.errors import FileFormatError, MixdepthError
from mixdepth.models.registry import create, create_on_meta, list_models

_WRAPPER_KEYS = ("model", "state_dict", "model_state_dict")
_SHOWN = 10
# Buffers a file may lack without harm (filled with their defaults).
_OPTIONAL_SUFFIXES = ("num_batches_tracked",)


def _is_safetensors(path: Path) -> bool:
    return path.suffix.lower() == ".safetensors"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a weights file as {key: tensor} on the CPU.

    .safetensors via safetensors; anything else via torch.load(weights_only=True), unwrapping
    {"model": ...}/{"state_dict": ...} and a "module." prefix. FileFormatError if the file is
    missing, unreadable, holds pickled Python objects or is not a mapping of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(path, "weights file not found")
    if _is_safetensors(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise FileFormatError(path, f"not a readable safetensors file ({err})") from err
        return require_finite_tensors(state, path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        globals_ = [ln.strip() for ln in str(err).splitlines() if "Unsupported global" in ln]
        if not globals_:
            raise FileFormatError(path, "not a readable PyTorch weights file") from err
        raise FileFormatError(
            path,
            "refused: the file holds pickled Python objects other than tensors, which are not "
            f"loaded for safety (weights_only loading: {globals_[0]}). Re-save it as a plain "
            "state dict (torch.save(model.state_dict(), path)) from a trusted environment",
        ) from err
    except Exception as err:  # the unpickler raises KeyError, IndexError, ... on garbage
        raise FileFormatError(
            path, f"not a readable PyTorch weights file ({type(err).__name__}: {err})"
        ) from err
    return require_finite_tensors(_as_state_dict(obj, path), path)


def require_finite_tensors(
    state: Mapping[str, torch.Tensor], path
) -> dict[str, torch.Tensor]:
    """Refuse a state dict with a NaN or inf value (a diverged or corrupt file), naming the
    first such tensor; returns `state` as a dict."""
    for key, value in state.items():
        if value.is_floating_point() or value.is_complex():
            if not bool(torch.isfinite(value).all()):
                bad = int((~torch.isfinite(value)).sum())
                raise FileFormatError(
                    path, f"tensor {key!r} holds {bad} NaN or inf value(s); refusing to load it"
                )
    return dict(state)


def _as_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise FileFormatError(path, "expected a state dict (a mapping of names to tensors)")
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise FileFormatError(
            path, f"expected a state dict of tensors; entries that are not: {_list(not_tensors)}"
        )
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a .safetensors file ({} for other formats or none stored)."""
    path = Path(path)
    if not _is_safetensors(path):
        return {}
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as err:
        raise FileFormatError(path, f"not a readable safetensors file ({err})") from err


def _list(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    return shown + (f", ... ({len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else "")


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(value.shape) if hasattr(value, "shape") else tuple(value)


def state_dict_mismatch(
    expected: Mapping[str, Any], given: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, shape mismatches as 'key: file (..) vs model (..)') between the
    model's state dict `expected` (tensors, meta tensors or shapes) and a file's `given`."""
    missing = [k for k in expected if k not in given and not k.endswith(_OPTIONAL_SUFFIXES)]
    unexpected = [k for k in given if k not in expected]
    shapes = [
        f"{k}: file {_shape(given[k])} vs model {_shape(expected[k])}"
        for k in expected
        if k in given and _shape(given[k]) != _shape(expected[k])
    ]
    return missing, unexpected, shapes


@functools.cache
def default_shapes(name: str) -> dict[str, tuple[int, ...]]:
    """{key: shape} of `create(name)` with default options (built once, on the meta device)."""
    return {k: tuple(v.shape) for k, v in create_on_meta(name).state_dict().items()}


def _mismatch_message(name: str, missing, unexpected, shapes) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {_list(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {_list(unexpected)}")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatch(es): {_list(shapes)}")
    return f"does not fit model {name!r}; " + "; ".join(parts)


def check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], path) -> None:
    """Raise FileFormatError(path, ...) unless `state` strict-fits `model`."""
    missing, unexpected, shapes = state_dict_mismatch(model.state_dict(), state)
    if missing or unexpected or shapes:
        name = getattr(getattr(model, "config", None), "name", type(model).__name__)
        raise FileFormatError(path, _mismatch_message(name, missing, unexpected, shapes))


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Strictly load a weights file into `model` (in place; returns it).

    FileFormatError naming the file, with counts and up to 10 of the missing, unexpected and
    mis-shaped keys, when the file does not fit the architecture.
    """
    state = read_state_dict(path)
    check_state_dict(model, state, path)
    model.load_state_dict(state, strict=False)
    return model


def guess_architecture(state: Mapping[str, torch.Tensor], path="state dict") -> str:
    """The registered model (default options) whose key set and shapes match `state` exactly.

    Architectures are built on the meta device, so nothing is allocated. FileFormatError
    naming the closest model and what differs when none matches.
    """
    best: tuple[int, str, tuple] | None = None
    for name in list_models():
        diff = state_dict_mismatch(default_shapes(name), state)
        if not any(diff):
            return name
        score = sum(len(d) for d in diff)
        if best is None or score < best[0]:
            best = (score, name, diff)
    if best is None:
        raise MixdepthError("no models are registered")
    _, name, diff = best
    raise FileFormatError(
        path,
        "matches no known architecture (pass the model name); closest is "
        + _mismatch_message(name, *diff),
    )


def save_state_dict(
    state: Mapping[str, torch.Tensor],
    path: str | Path,
    name: str,
    options: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write tensors as safetensors with metadata {"model": name, "options": JSON,
    "mixdepth_version": ...} plus `metadata`; `path` must end in .safetensors."""
    from safetensors.torch import save_file

    path = Path(path)
    if not _is_safetensors(path):
        raise FileFormatError(path, "weights are saved as .safetensors; use that extension")
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = weights_metadata(name, options, metadata)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    save_file(tensors, str(path), metadata=meta)
    return path


def weights_metadata(
    name: str, options: Mapping[str, Any] | None = None, metadata: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The safetensors metadata of a weights file: {"model": name, "options": JSON,
    "mixdepth_version": ...} plus `metadata` (which wins)."""
    import mixdepth

    return {
        "model": name,
        "options": json.dumps(dict(options or {}), sort_keys=True),
        "mixdepth_version": mixdepth.__version__,
        **dict(metadata or {}),
    }


def model_metadata(model: nn.Module, metadata: Mapping[str, str] | None = None) -> dict[str, str]:
    """`weights_metadata` for a model made by `create`, from its own `model.config`: name,
    options, "input_size" and the normalisation "mean" and "std" (`metadata` wins)."""
    config = getattr(model, "config", None)
    if config is None:
        raise MixdepthError("saving weights needs a model made by mixdepth.models.create")
    meta = {
        "input_size": str(config.input_size),
        "mean": json.dumps([float(v) for v in config.mean]),
        "std": json.dumps([float(v) for v in config.std]),
        **dict(metadata or {}),
    }
    return weights_metadata(config.name, config.options, meta)


def save_weights(
    model: nn.Module, path: str | Path, metadata: Mapping[str, str] | None = None
) -> Path:
    """Write the model's state dict as safetensors with `model_metadata(model, metadata)`."""
    meta = model_metadata(model, metadata)
    return save_state_dict(model.state_dict(), path, meta["model"], metadata=meta)


def _options_from(meta: Mapping[str, str], path: Path) -> dict[str, Any]:
    try:
        options = json.loads(meta.get("options", "{}"))
    except json.JSONDecodeError as err:
        raise FileFormatError(path, f"metadata 'options' is not valid JSON ({err})") from err
    if not isinstance(options, dict):
        raise FileFormatError(path, "metadata 'options' must be a JSON object")
    return options


def stored_input_size(path: str | Path) -> int | None:
    """The working size recorded in a .safetensors file's metadata ("input_size"), or None."""
    value = read_metadata(path).get("input_size")
    if value is None:
        return None
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 32:
        raise FileFormatError(
            path, f"metadata 'input_size' must be an integer of at least 32, got {value!r}"
        )
    return size


def stored_normalization(path: str | Path) -> dict[str, tuple[float, float, float]]:
    """{"mean": ..., "std": ...} recorded in a .safetensors file's metadata (those present)."""
    found = {}
    for key, value in read_metadata(path).items():
        if key not in ("mean", "std"):
            continue
        try:
            numbers = json.loads(value)
            ok = isinstance(numbers, list) and len(numbers) == 3 and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in numbers
            )
        except json.JSONDecodeError:
            ok = False
        if not ok or (key == "std" and min(numbers) <= 0):
            raise FileFormatError(
                path, f"metadata {key!r} must be a list of 3 numbers (std positive), got {value!r}"
            )
        found[key] = tuple(float(v) for v in numbers)
    return found


def architecture_of(
    path: str | Path, state: Mapping[str, torch.Tensor], name: str | None = None
) -> tuple[str, dict[str, Any]]:
    """(model name, create options) for a weights file: `name` if given, else the safetensors
    metadata, else a guess from the keys and shapes. Stored options apply when the stored
    model name is the one used."""
    path = Path(path)
    meta = read_metadata(path)
    if name is None:
        name = meta.get("model") or guess_architecture(state, path)
    return name, _options_from(meta, path) if meta.get("model") == name else {}


def load_model(
    path: str | Path | None = None, name: str | None = None, **options: Any
) -> nn.Module:
    """Build a model and load its weights, in eval mode.

    path None: `create(name, **options)` with random weights. Otherwise the architecture is
    `name` if given, else the file's safetensors metadata ("model" and "options"), else guessed
    from the key set and shapes (official .pt files); the weights are loaded strictly. A
    stored "input_size" (the size a mixdepth run trained at) replaces the architecture's
    default working size in `model.config`, and a stored "mean" and "std" its normalisation
    (when the stored model name is the one used).
    """
    if path is None:
        if name is None:
            raise MixdepthError("load_model needs a weights path or a model name")
        return create(name, **options).eval()
    state = read_state_dict(path)
    name, stored = architecture_of(path, state, name)
    model = create(name, **{**stored, **options})
    check_state_dict(model, state, path)
    model.load_state_dict(state, strict=False)
    size = stored_input_size(path)
    if size is not None:
        model.config = dataclasses.replace(model.config, input_size=size)
    if read_metadata(path).get("model") == name:
        model.config = dataclasses.replace(model.config, **stored_normalization(path))
    return model.eval()

"""The default CPU runtime of `Predictor`: the model exported to ONNX once, run by onnxruntime.

The export (a few seconds) is paid once per set of weights and stored on disk, so that later
processes start in a fraction of a second:

- where: `$MIXDEPTH_CACHE_DIR` if set, else `$XDG_CACHE_HOME/mixdepth` (default
  `~/.cache/mixdepth`), in the sub-folder `onnx/`;
- key: a hash of the model's weights and buffers (names, dtypes, shapes, bytes), the class and
  plain attributes of each of its modules, its config, the export options and the versions of
  mixdepth, torch, onnx and onnxruntime. The graph has dynamic batch, height and width, so one
  entry serves every input shape;
- format: a header line with the SHA-256 of the ONNX bytes that follow. An entry that is
  truncated, altered or unreadable fails that check (or onnxruntime's) and is rebuilt;
- writes: to a temporary file in the same folder, then `os.replace`: readers see the old
  entry or the complete new one, and two processes exporting at once both succeed;
- size: after each write the least recently used entries beyond $MIXDEPTH_CACHE_MAX_MB
  (default 2048 MiB) are deleted.

A freshly exported graph is compared with PyTorch at two input sizes before it is used or
stored. When any step is impossible (onnxruntime missing, an export or check that fails) the
caller gets None and a one-line reason, and runs PyTorch instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path

import torch
from torch import nn

from mixdepth.inference.graph import max_relative_difference
from mixdepth.inference.onnx import export_onnx
from mixdepth.inference.runtimes import OnnxSession

log = logging.getLogger(__name__)

CACHE_ENV = "MIXDEPTH_CACHE_DIR"
# The least recently used entries are deleted beyond this many MiB (override: the variable).
SIZE_ENV = "MIXDEPTH_CACHE_MAX_MB"
DEFAULT_MAX_MB = 2048
# Temporary files older than this (seconds) were left by a process that died while writing.
STALE_TEMPORARY_S = 3600
HEADER = b"mixdepth-onnx-cache 1 sha256="
EXPORT_OPTIONS = {"exporter": "torchscript", "opset": 17, "shapes": "dynamic batch/height/width"}
# A graph that differs from PyTorch by more than this (max relative) is not used.
CHECK_TOLERANCE = 1e-4


class OnnxUnavailable(Exception):
    """The ONNX runtime path cannot be used; the message says why (one line)."""


def cache_dir() -> Path:
    """Folder of the export cache: $MIXDEPTH_CACHE_DIR, else $XDG_CACHE_HOME/mixdepth/onnx
    (default ~/.cache/mixdepth/onnx)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser() / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "mixdepth" / "onnx"


def versions() -> dict[str, str]:
    """Versions of the libraries that shape an exported graph and how it runs."""
    import onnx
    import onnxruntime

    import mixdepth

    return {"mixdepth": mixdepth.__version__, "torch": torch.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def module_settings(model: nn.Module) -> list[str]:
    """Class and plain attributes (numbers, strings, flags, tuples) of every submodule: what
    changes the computation besides the tensors (e.g. a stride, or a flag of a custom module)."""
    plain = (bool, int, float, str, tuple, type(None))
    settings = []
    for name, module in model.named_modules():
        values = sorted((k, repr(v)) for k, v in vars(module).items()
                        if not k.startswith("_") and isinstance(v, plain))
        settings.append(f"{name}:{type(module).__module__}.{type(module).__qualname__}:{values}")
    return settings


def cache_key(model: nn.Module) -> str:
    """Hex key of `model`'s export: its weights and buffers, the classes and settings of its
    modules, its config, the export options and the library versions (see the module
    docstring)."""
    digest = hashlib.blake2b(digest_size=20)
    config = getattr(model, "config", None)
    described = {"class": f"{type(model).__module__}.{type(model).__qualname__}",
                 "modules": module_settings(model),
                 "config": repr(config), "options": EXPORT_OPTIONS, "versions": versions()}
    digest.update(json.dumps(described, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict(keep_vars=False).items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.view(torch.int16)
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def read_entry(path: Path) -> bytes | None:
    """The ONNX bytes of a cache entry, or None if it is missing, truncated or altered."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    header, newline, payload = data.partition(b"\n")
    if not newline or not header.startswith(HEADER):
        return None
    if hashlib.sha256(payload).hexdigest().encode() != header[len(HEADER):]:
        return None
    return payload


def write_entry(path: Path, payload: bytes) -> None:
    """Store `payload` at `path` atomically (temporary file in the same folder + os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as file:
            file.write(HEADER + hashlib.sha256(payload).hexdigest().encode() + b"\n")
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def prune(directory: Path, keep: Path) -> None:
    """Delete the least recently used entries of `directory` until the entries take at most
    $MIXDEPTH_CACHE_MAX_MB MiB (default 2048), never `keep`; also delete temporary files
    left for an hour by a process that died while writing. Entries are marked used by
    `cached_session` (their modification time). Files that vanish meanwhile are skipped."""
    try:
        limit = float(os.environ.get(SIZE_ENV, DEFAULT_MAX_MB)) * 2**20
    except ValueError:
        limit = DEFAULT_MAX_MB * 2**20
    now = time.time()
    entries = []
    for path in directory.iterdir():
        try:
            stat = path.stat()
        except OSError:
            continue
        if path.name.endswith(".tmp"):
            if now - stat.st_mtime > STALE_TEMPORARY_S:
                path.unlink(missing_ok=True)
        elif path.suffix == ".onnx":
            entries.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries, key=lambda entry: entry[0]):
        if total <= limit:
            break
        if path != keep:
            path.unlink(missing_ok=True)
            total -= size


def export_bytes(model: nn.Module) -> bytes:
    """`model` exported to ONNX (dynamic batch, height and width) as bytes."""
    with tempfile.TemporaryDirectory(prefix="mixdepth-export-") as folder:
        path, _ = export_onnx(model, Path(folder) / "model.onnx",
                              exporter=EXPORT_OPTIONS["exporter"], opset=EXPORT_OPTIONS["opset"])
        return path.read_bytes()


def check_session(session: OnnxSession, model: nn.Module,
                  sizes: tuple[tuple[int, int], ...] = ((64, 96), (96, 64))) -> float:
    """Max relative difference between `session` and `model` on random normalised inputs."""
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randn(1, 3, height, width, generator=generator) for height, width in sizes]
    with torch.inference_mode():
        references = [model(x) for x in inputs]
    worst = 0.0
    for x, expected in zip(inputs, references, strict=True):
        got = session(x)
        if tuple(got.shape) != tuple(expected.shape):
            return float("inf")
        worst = max(worst, max_relative_difference(got, expected))
    return worst


def cached_session(model: nn.Module, directory: Path | None = None) -> tuple[OnnxSession, str]:
    """An onnxruntime session for `model` (eval mode, CPU, float32) and how it was obtained:
    "cached" (read from the cache) or "exported" (exported, checked and stored).

    Raises OnnxUnavailable with a one-line reason when the path cannot be used.
    """
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as err:
        raise OnnxUnavailable(f"{err.name} is not installed") from None
    directory = cache_dir() if directory is None else directory
    name = str(getattr(getattr(model, "config", None), "name", "model"))
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:64] or "model"
    path = directory / f"{name}-{cache_key(model)}.onnx"
    payload = read_entry(path)
    if payload is not None:
        try:
            session = OnnxSession(payload)
            with contextlib.suppress(OSError):
                os.utime(path)  # recently used: pruned last
            return session, "cached"
        except Exception as err:  # readable but not loadable: rebuild it
            log.debug("cache entry %s not loadable (%s); exporting again", path, err)
    try:
        payload = export_bytes(model)
        session = OnnxSession(payload)
        difference = check_session(session, model)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OnnxUnavailable(f"ONNX export failed ({reason[:200]})") from None
    if not difference <= CHECK_TOLERANCE:
        raise OnnxUnavailable(f"the exported graph differs from PyTorch ({difference:.1e})")
    try:
        write_entry(path, payload)
        prune(directory, keep=path)
    except OSError as err:
        log.warning("mixdepth: cannot store the ONNX export in %s (%s); it is rebuilt next time",
                    directory, err.strerror or err)
    return session, "exported"

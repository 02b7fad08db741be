"""Opening paths and file-like objects uniformly, and the checks every reader shares."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mixdepth.errors import FileFormatError

PathOrFile = str | os.PathLike | BinaryIO

# The most values (pixels times channels) a map or image header may claim: 2^28, e.g.
# 16384 x 16384. Larger headers are refused before anything is allocated for them.
MAX_VALUES = 1 << 28


def display_name(source: PathOrFile) -> str:
    """The name used in error messages: the path, or a file object's `name` attribute."""
    if isinstance(source, str | os.PathLike):
        return str(source)
    return str(getattr(source, "name", "<file object>"))


def read_bytes(source: PathOrFile) -> bytes:
    """All bytes of a path or a readable binary file object."""
    if isinstance(source, str | os.PathLike):
        try:
            return Path(source).read_bytes()
        except FileNotFoundError:
            raise FileFormatError(source, "file not found") from None
        except IsADirectoryError:
            raise FileFormatError(source, "is a directory, expected a file") from None
        except OSError as err:
            raise FileFormatError(source, f"cannot read ({err.strerror or err})") from None
    return source.read()


def check_size(
    name: str, shape: tuple[int, ...], itemsize: int = 4, available: int | None = None
) -> int:
    """Refuse a header whose `shape` holds more than MAX_VALUES values or, when `available`
    (bytes left in the file) is given, more bytes than the file holds; returns the count."""
    count = 1
    for dim in shape:
        count *= int(dim)
    if any(int(dim) < 0 for dim in shape):
        raise FileFormatError(name, f"header claims a negative size {tuple(shape)}")
    if count > MAX_VALUES:
        raise FileFormatError(
            name, f"header claims {count} values {tuple(shape)}, more than the {MAX_VALUES} "
            "accepted (a corrupt file?)"
        )
    if available is not None and count * itemsize > available:
        raise FileFormatError(
            name, f"truncated: header claims {tuple(shape)} ({count * itemsize} bytes), the "
            f"file holds {available}"
        )
    return count


def as_file(source: PathOrFile) -> BinaryIO:
    """A seekable binary file object for libraries that take one (Pillow, numpy, h5py)."""
    if isinstance(source, str | os.PathLike):
        data = read_bytes(source)
        buffer = io.BytesIO(data)
        buffer.name = str(source)
        return buffer
    return source


def require_finite(array: np.ndarray, source: PathOrFile) -> np.ndarray:
    """Refuse a map without a single finite value (a broken file, not merely holes)."""
    if array.size and not np.isfinite(array).any():
        raise FileFormatError(display_name(source), "map holds no finite value (all NaN/inf)")
    return array


def require_shape(array: np.ndarray, shape: tuple[int, ...], source: PathOrFile, what: str) -> None:
    """Raise if `array` does not have `shape` (e.g. a depth map that does not match its image)."""
    if tuple(array.shape) != tuple(shape):
        raise FileFormatError(
            display_name(source),
            f"{what} has shape {tuple(array.shape)}, expected {tuple(shape)}",
        )

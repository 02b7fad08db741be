"""Opening paths and file-like objects uniformly, and the checks every reader shares."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mixdepth.errors import FileFormatError

PathOrFile = str | os.PathLike | BinaryIO


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
    return source.read()


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

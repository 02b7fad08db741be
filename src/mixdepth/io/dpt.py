"""MPI Sintel depth (.dpt) and camera (.cam) files.

.dpt: float32 tag 202021.25, int32 width, int32 height, then width*height float32 depths,
row-major, all little endian. .cam: the same tag, then the 3x3 intrinsic matrix and the 3x4
extrinsic matrix as float64, row-major.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mixdepth.errors import FileFormatError
from mixdepth.io._files import PathOrFile, display_name, read_bytes, require_finite

SINTEL_TAG = np.float32(202021.25)


def _check_tag(data: bytes, name: str, what: str) -> None:
    if len(data) < 4:
        raise FileFormatError(name, f"truncated Sintel {what} file ({len(data)} bytes)")
    tag = np.frombuffer(data, dtype="<f4", count=1)[0]
    if tag != SINTEL_TAG:
        raise FileFormatError(name, f"wrong magic number {tag!r} (expected {SINTEL_TAG} tag)")


def read_sintel_dpt(path: PathOrFile) -> np.ndarray:
    """Read a Sintel .dpt depth file -> float32 (H, W) depth."""
    name = display_name(path)
    data = read_bytes(path)
    _check_tag(data, name, ".dpt")
    if len(data) < 12:
        raise FileFormatError(name, "truncated .dpt header")
    width, height = (int(v) for v in np.frombuffer(data, dtype="<i4", count=2, offset=4))
    if width <= 0 or height <= 0 or width * height > 1 << 28:
        raise FileFormatError(name, f"implausible .dpt size {width}x{height}")
    if len(data) - 12 != 4 * width * height:
        raise FileFormatError(
            name,
            f"wrong size: {len(data) - 12} data bytes for {width}x{height} float32 "
            f"({4 * width * height} expected)",
        )
    depth = np.frombuffer(data, dtype="<f4", offset=12).reshape(height, width)
    return require_finite(depth.astype(np.float32), name)


def write_sintel_dpt(path: str | os.PathLike, depth: np.ndarray) -> None:
    """Write float32 (H, W) depth as a Sintel .dpt file."""
    depth = np.asarray(depth, dtype="<f4")
    if depth.ndim != 2:
        raise ValueError(f"write_sintel_dpt expects (H, W), got shape {depth.shape}")
    height, width = depth.shape
    header = SINTEL_TAG.astype("<f4").tobytes() + np.array([width, height], "<i4").tobytes()
    Path(path).write_bytes(header + depth.tobytes())


def read_sintel_cam(path: PathOrFile) -> tuple[np.ndarray, np.ndarray]:
    """Read a Sintel .cam file -> (intrinsics float32 (3, 3), extrinsics float32 (3, 4))."""
    name = display_name(path)
    data = read_bytes(path)
    _check_tag(data, name, ".cam")
    if len(data) < 4 + 8 * 21:
        raise FileFormatError(name, f"truncated .cam file ({len(data)} bytes, 172 expected)")
    values = np.frombuffer(data, dtype="<f8", count=21, offset=4)
    return values[:9].reshape(3, 3).astype(np.float32), values[9:].reshape(3, 4).astype(np.float32)


def write_sintel_cam(path: str | os.PathLike, intrinsics: np.ndarray, extrinsics=None) -> None:
    """Write a Sintel .cam file from a (3, 3) intrinsic and optional (3, 4) extrinsic matrix."""
    if extrinsics is None:
        extrinsics = np.hstack([np.eye(3), np.zeros((3, 1))])
    body = np.concatenate(
        [np.asarray(intrinsics, "<f8").reshape(9), np.asarray(extrinsics, "<f8").reshape(12)]
    )
    Path(path).write_bytes(SINTEL_TAG.astype("<f4").tobytes() + body.tobytes())

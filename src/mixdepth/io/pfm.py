"""Portable Float Map (.pfm): a text header, then float32 rows stored bottom to top.

Header: "PF" (3 channels) or "Pf" (1 channel), then "width height", then a scale whose
sign gives the byte order (negative: little endian, positive: big endian). In memory the
arrays here are top row first: (H, W) for one channel, (H, W, 3) for three.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mixdepth.errors import FileFormatError
from mixdepth.io._files import PathOrFile, display_name, read_bytes


def _header_lines(data: bytes, name: str) -> tuple[list[bytes], int]:
    """The three header fields and the offset of the first data byte."""
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 3:
        end = data.find(b"\n", pos)
        if end < 0 or end - pos > 256:
            raise FileFormatError(name, "truncated or malformed PFM header")
        line = data[pos:end].strip()
        pos = end + 1
        if line.startswith(b"#"):
            continue
        if len(fields) == 0 and b" " in line.strip():
            # Some writers put "Pf W H" on one line; split it.
            parts = line.split()
            fields.append(parts[0])
            line = b" ".join(parts[1:])
        if line:
            fields.append(line)
    return fields, pos


def read_pfm(path: PathOrFile) -> np.ndarray:
    """Read a PFM file -> float32 (H, W) or (H, W, 3), top row first."""
    name = display_name(path)
    data = read_bytes(path)
    if data[:2] not in (b"PF", b"Pf"):
        raise FileFormatError(name, f"not a PFM file (magic {data[:2]!r}, expected b'PF' or b'Pf')")
    fields, offset = _header_lines(data, name)
    channels = 3 if fields[0] == b"PF" else 1
    try:
        width, height = (int(v) for v in fields[1].split())
        scale = float(fields[2])
    except ValueError:
        raise FileFormatError(name, f"malformed PFM header {b' / '.join(fields)!r}") from None
    if width <= 0 or height <= 0 or scale == 0:
        raise FileFormatError(name, f"invalid PFM size {width}x{height} or zero scale")
    count = width * height * channels
    if len(data) - offset < 4 * count:
        raise FileFormatError(
            name,
            f"truncated PFM data: {len(data) - offset} bytes for {width}x{height}x{channels} "
            f"float32 values ({4 * count} bytes)",
        )
    dtype = np.dtype("<f4") if scale < 0 else np.dtype(">f4")
    values = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    shape = (height, width, 3) if channels == 3 else (height, width)
    return np.ascontiguousarray(values.reshape(shape)[::-1]).astype(np.float32)


def write_pfm(
    path: str | os.PathLike, array: np.ndarray, scale: float = 1.0, little_endian: bool = True
) -> None:
    """Write float32 (H, W) or (H, W, 3) (top row first in memory) as PFM."""
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(f"write_pfm expects (H, W) or (H, W, 3), got shape {array.shape}")
    height, width = array.shape[:2]
    magic = b"PF" if array.ndim == 3 else b"Pf"
    scale = -abs(scale) if little_endian else abs(scale)
    header = magic + b"\n" + f"{width} {height}\n{scale}\n".encode("ascii")
    body = array[::-1].astype("<f4" if little_endian else ">f4").tobytes()
    Path(path).write_bytes(header + body)

"""Images as the predictor takes them: paths, PIL images or arrays -> float32 (H, W, 3) RGB in
[0, 1]."""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np

from mixdepth.errors import MixdepthError
from mixdepth.io import pil_to_rgb, read_image

ImageInput = Union[str, Path, np.ndarray, "PIL.Image.Image"]  # noqa: F821  (PIL imported lazily)


def read_image_file(path: str | Path) -> np.ndarray:
    """Read an image file -> float32 (H, W, 3) RGB in [0, 1], EXIF orientation applied.

    Raises MixdepthError for a missing file and FileFormatError for an unreadable one.
    """
    path = Path(path)
    if not path.is_file():
        raise MixdepthError(f"{path}: no such image file")
    return read_image(path, exif_transpose=True)


def to_rgb_array(image: ImageInput) -> np.ndarray:
    """Any supported image -> float32 (H, W, 3) RGB in [0, 1].

    Accepts a path, a PIL image, or an array (H, W, 3) RGB / (H, W, 4) RGBA / (H, W) grey,
    either uint8 (0..255), uint16 (0..65535) or float in [0, 1].
    """
    if isinstance(image, (str, Path)):
        return read_image_file(image)
    if not isinstance(image, np.ndarray):
        if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image
            return pil_to_rgb(image)
        raise MixdepthError(
            f"image must be a path, a PIL image or a numpy array, got {type(image).__name__}"
        )
    arr = image
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise MixdepthError(
            f"image array must be (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grey, got shape "
            f"{arr.shape}" + (" (channels first? use arr.transpose(1, 2, 0))"
                              if arr.ndim == 3 and arr.shape[0] in (3, 4) else "")
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise MixdepthError(f"image array is empty: shape {arr.shape}")
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise MixdepthError(f"image array must be uint8, uint16 or float, got {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise MixdepthError("image array contains NaN or inf")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise MixdepthError(
            f"float image values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}] "
            "(divide 0..255 values by 255)"
        )
    return arr

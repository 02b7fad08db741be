"""Images and PNG-encoded depth/disparity maps (read with Pillow).

16-bit PNG depth stores round(value * scale) with 0 meaning "no measurement": KITTI uses
scale 256 (metres), TUM RGB-D 5000 (metres), NYU extractions 1000 (millimetres).
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mixdepth.errors import FileFormatError
from mixdepth.io._files import PathOrFile, as_file, check_size, display_name

KITTI_DEPTH_SCALE = 256.0
TUM_DEPTH_SCALE = 5000.0
# zlib level of the PNGs we write: level 1 encodes several times faster than the default 6
# for files a few tens of percent larger; the pixels are the same either way.
PNG_COMPRESS_LEVEL = 1


def open_image(path: PathOrFile) -> Image.Image:
    """Open and fully decode an image (the first frame of an animation), turning every
    decoder failure into FileFormatError; images without pixels are refused."""
    name = display_name(path)
    try:
        image = Image.open(as_file(path))
        width, height = image.size
        if width <= 0 or height <= 0:
            raise FileFormatError(name, f"image has no pixels ({width}x{height})")
        check_size(name, (height, width))
        image.load()
    except FileFormatError:
        raise
    except UnidentifiedImageError:
        raise FileFormatError(name, "cannot decode image (not a format Pillow reads)") from None
    except Image.DecompressionBombError as err:
        raise FileFormatError(name, f"refused: {err}") from None
    # Pillow's format plugins raise OSError, SyntaxError and ValueError, but on hostile files
    # also struct.error, IndexError, EOFError, ZeroDivisionError, ...: at this file boundary
    # every failure is a broken image and is reported as one, with Pillow's message.
    except Exception as err:
        raise FileFormatError(name, f"cannot decode image ({type(err).__name__}: {err})") from None
    return image


def read_image(path: PathOrFile, exif_transpose: bool = False) -> np.ndarray:
    """Read an image file -> float32 (H, W, 3) RGB in [0, 1] (see `pil_to_rgb`).

    An animation (GIF, APNG, WebP) gives its first frame. exif_transpose: apply the EXIF
    orientation (photos from phones and cameras). Off by default so that dataset images stay
    pixel-aligned with the depth maps stored next to them.
    """
    image = open_image(path)
    try:
        if exif_transpose:
            image = ImageOps.exif_transpose(image)
        return pil_to_rgb(image)
    # a corrupt EXIF block or an exotic mode fails inside Pillow with assorted types
    except Exception as err:
        raise FileFormatError(
            display_name(path), f"cannot convert image to RGB ({type(err).__name__}: {err})"
        ) from None


def pil_to_rgb(image: Image.Image) -> np.ndarray:
    """A PIL image -> float32 (H, W, 3) RGB in [0, 1].

    Grey images are replicated to three channels, alpha is dropped, 16-bit images are
    divided by 65535 and 8-bit ones by 255.
    """
    if image.mode in ("I;16", "I;16L", "I;16B", "I"):
        array = np.asarray(image).astype(np.float32) / 65535.0
        return np.repeat(np.clip(array, 0.0, 1.0)[:, :, None], 3, axis=2)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8).astype(np.float32) / 255.0


def read_uint_png(path: PathOrFile) -> np.ndarray:
    """Read a single-channel 8- or 16-bit PNG -> its raw integer values as float32 (H, W)."""
    image = open_image(path)
    if image.mode in ("I;16", "I;16L", "I;16B", "I", "L", "1", "P"):
        if image.mode == "P":
            image = image.convert("L")
        return np.asarray(image).astype(np.float32)
    if image.mode in ("RGB", "RGBA", "LA"):
        array = np.asarray(image)
        channels = array[..., :3] if image.mode != "LA" else array[..., :1]
        if not np.all(channels == channels[..., :1]):
            raise FileFormatError(
                display_name(path),
                f"expected a single-channel map, got a colour {image.mode} image",
            )
        return channels[..., 0].astype(np.float32)
    raise FileFormatError(display_name(path), f"unsupported image mode {image.mode} for a map")


def read_png16(path: PathOrFile, scale: float) -> np.ndarray:
    """Read a 16-bit PNG depth map -> float32 (H, W) value / scale; 0 stays 0 (invalid)."""
    image = open_image(path)
    if image.mode not in ("I;16", "I;16L", "I;16B", "I"):
        raise FileFormatError(
            display_name(path), f"expected a 16-bit single-channel PNG, got mode {image.mode}"
        )
    return np.asarray(image).astype(np.float32) / np.float32(scale)


def write_png16(path: str | os.PathLike, array: np.ndarray, scale: float) -> None:
    """Write float (H, W) values as a 16-bit PNG of round(value * scale).

    Non-finite and non-positive values are written as 0 (invalid). Values that would not
    fit in 16 bits raise ValueError rather than being clipped silently.
    """
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"write_png16 expects (H, W), got shape {array.shape}")
    valid = np.isfinite(array) & (array > 0)
    scaled = np.where(valid, np.round(np.where(valid, array, 0) * scale), 0)
    if scaled.max(initial=0) > 65535:
        raise ValueError(
            f"{path}: value {array[valid].max():g} * scale {scale:g} exceeds 65535; use a "
            "smaller scale"
        )
    # A valid value that rounds to 0 would turn into "invalid": keep it at the smallest code.
    scaled = np.where(valid & (scaled < 1), 1, scaled)
    Image.fromarray(scaled.astype(np.uint16)).save(
        path, format="PNG", compress_level=PNG_COMPRESS_LEVEL
    )


def write_uint8_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write uint8 (H, W) or (H, W, 3) as PNG (masks, 8-bit disparity, RGB images)."""
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(
        path, format="PNG", compress_level=PNG_COMPRESS_LEVEL
    )


def write_uint16_png(path: str | os.PathLike, codes: np.ndarray) -> None:
    """Write integer codes (H, W) in [0, 65535] as a 16-bit PNG as they are (disparity PNGs)."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.min(initial=0) < 0 or codes.max(initial=0) > 65535:
        raise ValueError(f"{path}: expected (H, W) codes in [0, 65535], got {codes.shape}")
    Image.fromarray(codes.astype(np.uint16)).save(
        path, format="PNG", compress_level=PNG_COMPRESS_LEVEL
    )


def write_image(path: str | os.PathLike, image: np.ndarray, quality: int = 95) -> None:
    """Write float (H, W, 3) RGB in [0, 1] (or uint8) as PNG or JPEG, chosen by the suffix."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    options = {"quality": quality} if str(path).lower().endswith((".jpg", ".jpeg")) else {}
    Image.fromarray(image).save(path, **options)

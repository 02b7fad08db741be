"""Writing predictions: raw maps, normalised images, colour maps and point clouds.

A prediction is relative inverse depth (disparity up to scale and shift), float32 (H, W).
Formats and the files they give for an output base `OUT/name`:

| format | file                   | content                                                    |
|--------|------------------------|------------------------------------------------------------|
| pfm    | OUT/name.pfm           | raw relative inverse depth, float32                        |
| npy    | OUT/name.npy           | raw relative inverse depth, float32                        |
| png16  | OUT/name.png           | min-max normalised per image to 0..65535 (16-bit grey)     |
| color  | OUT/name_color.png     | min-max normalised per image, through a colour map (8-bit) |
| ply    | OUT/name.ply           | coloured point cloud (see `point_cloud`)                   |

plus OUT/name_side_by_side.png (the RGB image beside the colour map) on request.
Bright / high values mean near in every image output.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from mixdepth.errors import ConfigError

FORMATS = ("pfm", "png16", "color", "npy", "ply")
COLORMAPS = ("inferno", "turbo", "spectral", "gray")
# matplotlib names; spectral is reversed so that near is red, as in the other maps near is warm
MATPLOTLIB_NAMES = {"inferno": "inferno", "turbo": "turbo", "spectral": "Spectral_r"}
SUFFIXES = {
    "pfm": ".pfm",
    "npy": ".npy",
    "ply": ".ply",
    "png16": ".png",
    "color": "_color.png",
    "side_by_side": "_side_by_side.png",
}
# Point clouds keep pixels whose disparity is at least this fraction of the image's maximum,
# i.e. points up to 100 times farther than the nearest one.
MIN_RELATIVE_DISPARITY = 0.01


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """'pfm,color' (or a list) -> ('pfm', 'color'), validated, duplicates removed."""
    items = text.split(",") if isinstance(text, str) else list(text)
    formats = tuple(dict.fromkeys(item.strip().lower() for item in items if item.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(
            f"--format: unknown format(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(FORMATS)}"
        )
    return formats


def check_colormap(name: str) -> str:
    """The colour map name, validated (ConfigError otherwise)."""
    if name not in COLORMAPS:
        raise ConfigError(f"--colormap must be one of {', '.join(COLORMAPS)}, got {name!r}")
    return name


def minmax_normalize(
    disparity: np.ndarray, lo: float | None = None, hi: float | None = None
) -> np.ndarray:
    """(H, W) -> float32 (H, W) in [0, 1]: (d - lo) / (hi - lo), lo/hi default to the finite
    min/max. A constant (or empty, or all non-finite) map gives zeros; non-finite pixels 0."""
    d = np.asarray(disparity, dtype=np.float32)
    finite = np.isfinite(d)
    if lo is None or hi is None:
        if not finite.any():
            return np.zeros(d.shape, np.float32)
        lo = float(d[finite].min()) if lo is None else lo
        hi = float(d[finite].max()) if hi is None else hi
    span = hi - lo
    if not span > 0:
        return np.zeros(d.shape, np.float32)
    return np.where(finite, np.clip((d - lo) / span, 0.0, 1.0), 0.0).astype(np.float32)


@functools.lru_cache(maxsize=8)
def colormap_lut(name: str) -> np.ndarray:
    """uint8 (256, 3) RGB lookup table of a colour map."""
    check_colormap(name)
    if name == "gray":
        ramp = np.arange(256, dtype=np.uint8)
        return np.stack([ramp, ramp, ramp], axis=1)
    import matplotlib

    rgba = matplotlib.colormaps[MATPLOTLIB_NAMES[name]](np.linspace(0.0, 1.0, 256))
    return np.round(rgba[:, :3] * 255).astype(np.uint8)


def colorize(
    disparity: np.ndarray,
    colormap: str = "inferno",
    lo: float | None = None,
    hi: float | None = None,
) -> np.ndarray:
    """(H, W) disparity -> uint8 (H, W, 3) RGB colour image, min-max normalised (or lo/hi)."""
    codes = np.round(minmax_normalize(disparity, lo, hi) * 255).astype(np.uint8)
    return colormap_lut(colormap)[codes]


def to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """float (H, W, 3) RGB in [0, 1] (or uint8) -> uint8 (H, W, 3)."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def side_by_side(
    image: np.ndarray,
    disparity: np.ndarray,
    colormap: str = "inferno",
    lo: float | None = None,
    hi: float | None = None,
) -> np.ndarray:
    """The RGB image (H, W, 3) left of the colour-mapped disparity (H, W): uint8 (H, 2W, 3)."""
    return np.concatenate([to_uint8_rgb(image), colorize(disparity, colormap, lo, hi)], axis=1)


def camera_from_fov(width: int, height: int, fov: float) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of a pinhole camera with horizontal field of view `fov` degrees,
    square pixels and the principal point at the image centre (pixel centres at integers)."""
    if not 0 < fov < 180:
        raise ConfigError(f"--fov must be between 0 and 180 degrees, got {fov}")
    focal = (width / 2.0) / math.tan(math.radians(fov) / 2.0)
    return focal, focal, (width - 1) / 2.0, (height - 1) / 2.0


def back_project(
    depth: np.ndarray, fx: float, fy: float, cx: float, cy: float
) -> tuple[np.ndarray, np.ndarray]:
    """Back-project a depth map (H, W) (0 or non-finite = no point) -> points float32 (N, 3)
    in the depth's units and the flat pixel indices (N,) they come from.

    z-depth, pinhole intrinsics in pixels (pixel centres at integers); coordinates: x right,
    y up, camera looking down -z (the OpenGL convention viewers expect).
    """
    for name, value in (("fx", fx), ("fy", fy)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"--{name} must be a positive focal length in pixels, got {value}")
    depth = np.asarray(depth, np.float32)
    keep = np.isfinite(depth) & (depth > 0)
    v, u = np.nonzero(keep)
    z = depth[v, u].astype(np.float64)
    points = np.stack([(u - cx) * z / fx, -(v - cy) * z / fy, -z], axis=1).astype(np.float32)
    return points, np.flatnonzero(keep)


def point_cloud(
    disparity: np.ndarray, image: np.ndarray, fov: float = 60.0
) -> tuple[np.ndarray, np.ndarray]:
    """Back-project a relative inverse depth map -> (points float32 (N, 3), colours uint8 (N, 3)).

    The prediction is disparity up to an unknown scale AND shift, so the geometry is relative
    only: the disparity is divided by its maximum (the nearest pixel gets depth 1) and
    depth = 1 / disparity, ignoring the unknown shift. Pixels with disparity below
    MIN_RELATIVE_DISPARITY of the maximum (sky, far background) are dropped. A pinhole camera
    with horizontal field of view `fov` degrees, principal point at the image centre and square
    pixels; coordinates: x right, y up, camera looking down -z (the OpenGL convention viewers
    expect).
    """
    d = np.asarray(disparity, dtype=np.float32)
    camera = camera_from_fov(d.shape[1], d.shape[0], fov)
    finite = np.isfinite(d)
    peak = float(d[finite].max()) if finite.any() else 0.0
    if not peak > 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
    relative = np.where(finite, d / peak, 0.0)
    keep = relative >= MIN_RELATIVE_DISPARITY
    depth = np.zeros_like(relative)
    depth[keep] = 1.0 / relative[keep]
    points, index = back_project(depth, *camera)
    return points, to_uint8_rgb(image).reshape(-1, 3)[index]


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray) -> None:
    """Write points float (N, 3) with colours uint8 (N, 3) as a binary little-endian PLY."""
    vertex = np.empty(
        len(points),
        dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
               ("red", "u1"), ("green", "u1"), ("blue", "u1")],
    )
    for i, axis in enumerate("xyz"):
        vertex[axis] = points[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        vertex[channel] = colors[:, i]
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment mixdepth relative point cloud\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(vertex.tobytes())


def output_path(base: Path, kind: str) -> Path:
    """OUT/name + the suffix of a format (or 'side_by_side')."""
    return base.with_name(base.name + SUFFIXES[kind])


def write_outputs(
    base: str | Path,
    disparity: np.ndarray,
    image: np.ndarray,
    formats: Iterable[str],
    colormap: str = "inferno",
    with_side_by_side: bool = False,
    fov: float = 60.0,
) -> list[Path]:
    """Write one prediction in every requested format; returns the files written.

    base: output path without suffix (OUT/name); disparity float32 (H, W) at the resolution
    of `image` (H, W, 3) RGB [0, 1] or uint8 (the image colours point clouds and the
    side-by-side view).
    """
    from mixdepth.io import write_pfm, write_png16, write_uint8_png

    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    disparity = np.asarray(disparity, dtype=np.float32)
    written = []
    for kind in formats:
        path = output_path(base, kind)
        if kind == "pfm":
            write_pfm(path, disparity)
        elif kind == "npy":
            np.save(path, disparity)
        elif kind == "png16":
            write_png16(path, minmax_normalize(disparity), scale=65535.0)
        elif kind == "color":
            write_uint8_png(path, colorize(disparity, colormap))
        elif kind == "ply":
            write_ply(path, *point_cloud(disparity, image, fov))
        else:
            raise ConfigError(f"unknown output format {kind!r}; choose from {', '.join(FORMATS)}")
        written.append(path)
    if with_side_by_side:
        path = output_path(base, "side_by_side")
        write_uint8_png(path, side_by_side(image, disparity, colormap))
        written.append(path)
    return written

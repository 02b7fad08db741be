"""`read_depth`: one entry point for every ground-truth map format, and the named readers
of the real datasets' files. Returned maps keep the file's invalid markers (0, NaN, inf);
datasets turn them into masks.
"""

from __future__ import annotations

from pathlib import PurePath

import numpy as np

from mixdepth.errors import FileFormatError
from mixdepth.io._files import PathOrFile, display_name, require_shape
from mixdepth.io.arrays import read_exr, read_h5, read_mask_npy, read_npy, read_raw_float32
from mixdepth.io.dpt import read_sintel_dpt
from mixdepth.io.pfm import read_pfm
from mixdepth.io.png import KITTI_DEPTH_SCALE, TUM_DEPTH_SCALE, read_png16, read_uint_png

ETH3D_DEPTH_SHAPE = (4032, 6048)  # (H, W) of the undistorted DSLR images and their depth

SUFFIX_FORMATS = {
    ".pfm": "pfm",
    ".dpt": "dpt",
    ".npy": "npy",
    ".npz": "npz",
    ".exr": "exr",
    ".h5": "h5",
    ".hdf5": "h5",
    ".png": "png",
}


def read_kitti_depth(path: PathOrFile) -> np.ndarray:
    """KITTI depth benchmark PNG (uint16, metres * 256, 0 = no LiDAR point) -> (H, W) metres."""
    return read_png16(path, KITTI_DEPTH_SCALE)


def read_tum_depth(path: PathOrFile) -> np.ndarray:
    """TUM RGB-D depth PNG (uint16, metres * 5000, 0 = missing) -> (H, W) metres."""
    return read_png16(path, TUM_DEPTH_SCALE)


def read_megadepth_depth(path: PathOrFile) -> np.ndarray:
    """MegaDepth .h5 depth (dataset 'depth', up to scale, 0 = no reconstruction) -> (H, W)."""
    return read_h5(path, "depth")


def read_diode_depth(
    depth_path: PathOrFile, mask_path: PathOrFile
) -> tuple[np.ndarray, np.ndarray]:
    """DIODE `*_depth.npy` (H, W, 1) metres + `*_depth_mask.npy` (H, W) -> (depth, bool mask)."""
    depth = read_npy(depth_path)
    mask = read_mask_npy(mask_path)
    require_shape(mask, depth.shape, mask_path, "depth mask")
    return depth, mask


def read_eth3d_depth(path: PathOrFile, shape: tuple[int, int] = ETH3D_DEPTH_SHAPE) -> np.ndarray:
    """ETH3D ground_truth_depth file: headerless float32 (H, W), metres, inf = no data."""
    return read_raw_float32(path, shape)


def read_tartanair_depth(path: PathOrFile) -> np.ndarray:
    """TartanAir `depth_left/*_left_depth.npy`: float32 (H, W) metres."""
    return read_npy(path)


def read_blendedmvs_depth(path: PathOrFile) -> np.ndarray:
    """BlendedMVS `rendered_depth_maps/*.pfm`: float32 (H, W) depth up to scale, 0 = none."""
    return read_pfm(path)


def read_disparity_png(path: PathOrFile) -> np.ndarray:
    """ReDWeb `RDs/*.png` / HRWSI `gts/*.png`: 8- or 16-bit disparity codes -> float32 (H, W)."""
    return read_uint_png(path)


def read_depth(
    path: PathOrFile,
    format: str = "auto",
    *,
    scale: float | None = None,
    shape: tuple[int, int] | None = None,
    key: str | None = None,
) -> np.ndarray:
    """Read one ground-truth map -> float32 (H, W), values as stored divided by `scale`.

    format: auto (by suffix), pfm, dpt (Sintel), npy, npz, exr, h5, png (raw integer codes),
    png16 (16-bit PNG, requires scale), kitti (png / 256), tum (png / 5000), nyu_png
    (png / 1000), megadepth (h5 key 'depth'), eth3d (raw float32, `shape` (H, W)),
    tartanair (npy), blendedmvs (pfm), redweb / hrwsi (disparity png).
    """
    name = display_name(path)
    if format == "auto":
        suffix = PurePath(name).suffix.lower()
        if suffix not in SUFFIX_FORMATS:
            raise FileFormatError(
                name, f"cannot tell the map format from suffix {suffix!r}; pass format="
            )
        format = SUFFIX_FORMATS[suffix]
    if format in ("png", "redweb", "hrwsi"):
        values = read_uint_png(path)
    elif format == "png16":
        if scale is None:
            raise ValueError("read_depth(format='png16') needs scale=")
        return read_png16(path, scale)
    elif format in ("kitti", "tum", "nyu_png"):
        scales = {"kitti": KITTI_DEPTH_SCALE, "tum": TUM_DEPTH_SCALE, "nyu_png": 1000.0}
        return read_png16(path, scales[format])
    elif format in ("pfm", "blendedmvs"):
        values = read_pfm(path)
        if values.ndim == 3:
            raise FileFormatError(name, "3-channel PFM where a single-channel map was expected")
    elif format in ("dpt", "sintel"):
        values = read_sintel_dpt(path)
    elif format in ("npy", "npz", "tartanair"):
        values = read_npy(path, key)
    elif format == "exr":
        values = read_exr(path, key)
    elif format in ("h5", "megadepth"):
        values = read_h5(path, key or "depth")
    elif format == "eth3d":
        values = read_eth3d_depth(path, shape or ETH3D_DEPTH_SHAPE)
    else:
        raise ValueError(f"unknown depth format {format!r}")
    return values / np.float32(scale) if scale not in (None, 1, 1.0) else values

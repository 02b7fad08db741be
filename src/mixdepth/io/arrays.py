"""Float maps stored as numpy (.npy/.npz), raw float32, HDF5 and OpenEXR files."""

from __future__ import annotations

import os
import tempfile

import numpy as np

from mixdepth.errors import FileFormatError
from mixdepth.io._files import (
    PathOrFile,
    as_file,
    display_name,
    read_bytes,
    require_finite,
)


def _squeeze_map(array: np.ndarray, name: str) -> np.ndarray:
    """(H, W), (H, W, 1) or (1, H, W) -> (H, W); anything else is an error."""
    if array.ndim == 3 and 1 in (array.shape[0], array.shape[2]):
        array = array.reshape(array.shape[:2] if array.shape[2] == 1 else array.shape[1:])
    if array.ndim != 2 or min(array.shape) == 0:
        raise FileFormatError(name, f"expected a (H, W) map, got shape {array.shape}")
    return array


def read_npy(path: PathOrFile, key: str | None = None) -> np.ndarray:
    """Read a .npy map (or one array of a .npz, `key` or the only/first one) -> float32 (H, W).

    Object arrays are refused (no pickle). (H, W, 1) and (1, H, W) are squeezed.
    """
    name = display_name(path)
    try:
        loaded = np.load(as_file(path), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise FileFormatError(name, f"cannot read numpy file ({err})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            keys = list(loaded.keys())
            if not keys:
                raise FileFormatError(name, "empty .npz archive")
            chosen = key if key is not None else keys[0]
            if chosen not in keys:
                raise FileFormatError(name, f"no array {chosen!r} in .npz (has {keys})")
            array = loaded[chosen]
    else:
        array = loaded
    if array.dtype.kind not in "fiub":
        raise FileFormatError(name, f"unsupported dtype {array.dtype} for a map")
    return require_finite(_squeeze_map(array, name).astype(np.float32), name)


def read_mask_npy(path: PathOrFile) -> np.ndarray:
    """Read a .npy validity mask (bool or 0/1 numbers) -> bool (H, W)."""
    name = display_name(path)
    try:
        array = np.load(as_file(path), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise FileFormatError(name, f"cannot read numpy mask ({err})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiub":
        raise FileFormatError(name, "not a numeric .npy mask")
    return _squeeze_map(array, name) > 0


def read_raw_float32(path: PathOrFile, shape: tuple[int, int], byteorder: str = "<") -> np.ndarray:
    """Read headerless row-major float32 values -> (H, W) (ETH3D ground-truth depth)."""
    name = display_name(path)
    data = read_bytes(path)
    height, width = shape
    if len(data) != 4 * height * width:
        raise FileFormatError(
            name,
            f"wrong size: {len(data)} bytes, expected {4 * height * width} for {width}x{height} "
            "float32",
        )
    array = np.frombuffer(data, dtype=f"{byteorder}f4").reshape(height, width)
    return require_finite(array.astype(np.float32), name)


def read_h5(path: PathOrFile, key: str) -> np.ndarray:
    """Read the dataset `key` of an HDF5 file -> float32 (H, W) (MegaDepth: key 'depth')."""
    import h5py

    name = display_name(path)
    try:
        with h5py.File(as_file(path), "r") as f:
            if key not in f:
                raise FileFormatError(name, f"no dataset {key!r} in HDF5 file (has {list(f)})")
            array = np.asarray(f[key])
    except FileFormatError:
        raise
    except (OSError, ValueError, KeyError) as err:
        raise FileFormatError(name, f"cannot read HDF5 file ({err})") from None
    return require_finite(_squeeze_map(array, name).astype(np.float32), name)


def write_h5(path: str | os.PathLike, array: np.ndarray, key: str = "depth") -> None:
    """Write one float32 array under `key` into a new HDF5 file."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset(key, data=np.asarray(array, dtype=np.float32))


def read_exr(path: PathOrFile, channel: str | None = None) -> np.ndarray:
    """Read one channel of an OpenEXR file -> float32 (H, W).

    `channel` defaults to 'Z', then 'Y', 'R', or the only channel present.
    """
    import OpenEXR

    name = display_name(path)
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(path, str | os.PathLike):
            filename = str(path)
            if not os.path.isfile(filename):
                raise FileFormatError(name, "file not found")
        else:
            filename = os.path.join(tmp, "map.exr")
            with open(filename, "wb") as out:
                out.write(read_bytes(path))
        try:
            with OpenEXR.File(filename, separate_channels=True) as f:
                channels = {k: np.asarray(v.pixels) for k, v in f.channels().items()}
        except Exception as err:  # the binding raises plain RuntimeError/Exception
            raise FileFormatError(name, f"cannot read OpenEXR file ({err})") from None
    if channel is None:
        channel = next((c for c in ("Z", "Y", "R") if c in channels), next(iter(channels)))
    if channel not in channels:
        raise FileFormatError(name, f"no channel {channel!r} (has {sorted(channels)})")
    return require_finite(_squeeze_map(channels[channel], name).astype(np.float32), name)


def write_exr(path: str | os.PathLike, array: np.ndarray, channel: str = "Z") -> None:
    """Write float32 (H, W) as a one-channel OpenEXR file."""
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    pixels = np.ascontiguousarray(array, dtype=np.float32)
    with OpenEXR.File(header, {channel: pixels}) as f:
        f.write(str(path))

"""Float maps stored as numpy (.npy/.npz), raw float32, HDF5 and OpenEXR files."""

from __future__ import annotations

import io
import os
import tempfile
import tokenize
import zipfile
import zlib

import numpy as np

from mixdepth.errors import FileFormatError
from mixdepth.io._files import (
    MAX_VALUES,
    PathOrFile,
    as_file,
    check_size,
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


def parse_npy(data: bytes, name: str) -> np.ndarray:
    """The array of .npy bytes (numeric and bool dtypes only, no pickle), header checked first.

    The header's shape must fit in the bytes that follow it, so a corrupt header never makes
    this allocate more than the file holds.
    """
    buffer = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buffer)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(buffer)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(buffer)
    # numpy parses the header dict with Python's tokenizer and literal_eval, which raise
    # these on garbage besides its own ValueError
    except (ValueError, SyntaxError, TypeError, OverflowError, tokenize.TokenError) as err:
        raise FileFormatError(name, f"not a numpy .npy file ({err})") from None
    if dtype.hasobject or dtype.kind not in "fiub":
        raise FileFormatError(name, f"unsupported dtype {dtype} (numbers or bool only)")
    offset = buffer.tell()
    count = check_size(name, shape, dtype.itemsize, len(data) - offset)
    array = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return array.reshape(shape, order="F" if fortran else "C")


# An .npz member may decompress to at most this many bytes (MAX_VALUES float64 values).
_MAX_NPZ_MEMBER = 8 * MAX_VALUES


def _npz_array(data: bytes, name: str, key: str | None) -> np.ndarray:
    """Array `key` (or the first) of .npz bytes; members are decompressed with a size cap."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            keys = [n[: -len(".npy")] for n in archive.namelist() if n.endswith(".npy")]
            if not keys:
                raise FileFormatError(name, "empty .npz archive")
            chosen = key if key is not None else keys[0]
            if chosen not in keys:
                raise FileFormatError(name, f"no array {chosen!r} in .npz (has {keys})")
            with archive.open(chosen + ".npy") as member:
                raw = member.read(_MAX_NPZ_MEMBER + 1)
    except FileFormatError:
        raise
    # zipfile and zlib raise these for corrupt archives (bad CRC, bad offsets, bad streams;
    # RuntimeError when a flipped flag marks a member as encrypted)
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, RuntimeError,
            NotImplementedError, OverflowError) as err:
        raise FileFormatError(name, f"cannot read .npz archive ({err})") from None
    if len(raw) > _MAX_NPZ_MEMBER:
        raise FileFormatError(name, f"array {chosen!r} is larger than {_MAX_NPZ_MEMBER} bytes")
    return parse_npy(raw, f"{name}:{chosen}")


def read_npy(path: PathOrFile, key: str | None = None) -> np.ndarray:
    """Read a .npy map (or one array of a .npz, `key` or the only/first one) -> float32 (H, W).

    Object arrays are refused (no pickle). (H, W, 1) and (1, H, W) are squeezed.
    """
    name = display_name(path)
    data = read_bytes(path)
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        array = _npz_array(data, name, key)
    else:
        array = parse_npy(data, name)
    return require_finite(_squeeze_map(array, name).astype(np.float32), name)


def read_mask_npy(path: PathOrFile) -> np.ndarray:
    """Read a .npy validity mask (bool or 0/1 numbers) -> bool (H, W)."""
    name = display_name(path)
    return _squeeze_map(parse_npy(read_bytes(path), name), name) > 0


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
            dataset = f[key]
            if not isinstance(dataset, h5py.Dataset):
                raise FileFormatError(name, f"{key!r} is a group, not a dataset")
            check_size(name, dataset.shape, 1)
            array = np.asarray(dataset)
    except FileFormatError:
        raise
    # HDF5 reports a corrupt file from deep inside the library as RuntimeError, KeyError,
    # OSError, ValueError, OverflowError or TypeError depending on where it trips, so any
    # exception here is a broken file: convert it, keeping HDF5's message.
    except Exception as err:
        problem = f"cannot read HDF5 file ({type(err).__name__}: {err})"
        raise FileFormatError(name, problem) from None
    if array.dtype.kind not in "fiub":
        raise FileFormatError(name, f"unsupported dtype {array.dtype} for a map")
    return require_finite(_squeeze_map(array, name).astype(np.float32), name)


def write_h5(path: str | os.PathLike, array: np.ndarray, key: str = "depth") -> None:
    """Write one float32 array under `key` into a new HDF5 file."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset(key, data=np.asarray(array, dtype=np.float32))


def _exr_data_window(data: bytes) -> tuple[int, int] | None:
    """(height, width) from the first header's dataWindow of OpenEXR bytes, if found."""
    if data[:4] != b"\x76\x2f\x31\x01":
        return None
    pos = 8
    while pos < len(data):
        end = data.find(b"\0", pos, pos + 256)
        if end <= pos:  # the empty name closing the header, or a malformed one
            return None
        attribute = data[pos:end]
        type_end = data.find(b"\0", end + 1, end + 257)
        if type_end < 0 or type_end + 5 > len(data):
            return None
        size = int.from_bytes(data[type_end + 1 : type_end + 5], "little", signed=True)
        value = type_end + 5
        if attribute == b"dataWindow" and size == 16 and value + 16 <= len(data):
            x0, y0, x1, y1 = (int(v) for v in np.frombuffer(data, "<i4", 4, value))
            return y1 - y0 + 1, x1 - x0 + 1
        if size < 0:
            return None
        pos = value + size
    return None


def read_exr(path: PathOrFile, channel: str | None = None) -> np.ndarray:
    """Read one channel of an OpenEXR file -> float32 (H, W).

    `channel` defaults to 'Z', then 'Y', 'R', or the only channel present.
    """
    import OpenEXR

    name = display_name(path)
    data = read_bytes(path)
    window = _exr_data_window(data)
    if window is not None:
        if min(window) <= 0:
            raise FileFormatError(name, f"invalid OpenEXR data window {window[1]}x{window[0]}")
        check_size(name, window)
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(path, str | os.PathLike):
            filename = str(path)
        else:
            filename = os.path.join(tmp, "map.exr")
            with open(filename, "wb") as out:
                out.write(data)
        try:
            with OpenEXR.File(filename, separate_channels=True) as f:
                channels = {k: np.asarray(v.pixels) for k, v in f.channels().items()}
        # the binding raises plain RuntimeError/Exception (and others) for a broken file
        except Exception as err:
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

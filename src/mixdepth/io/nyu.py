"""NYU Depth v2 labeled set: `nyu_depth_v2_labeled.mat`, a MATLAB v7.3 (HDF5) file.

MATLAB stores arrays column-major, so in the HDF5 file `images` is uint8 (N, 3, W, H) and
`depths` float32 (N, W, H) in metres; image i is images[i].transpose(2, 1, 0) -> (H, W, 3)
and its depth depths[i].T -> (H, W), with H, W = 480, 640.
"""

from __future__ import annotations

import os

import numpy as np

from mixdepth.errors import FileFormatError
from mixdepth.io._files import PathOrFile, check_size, display_name


class NyuLabeledMat:
    """Random access to the labeled NYUv2 .mat file; the HDF5 handle opens lazily per process.

    `source` is a path or a seekable binary file object (e.g. a member of a tar archive);
    `name` overrides the name used in error messages.
    """

    def __init__(self, source: PathOrFile, depth_key: str = "depths", name: str | None = None):
        self.source = source
        self.name = name or display_name(source)
        self.depth_key = depth_key
        self._file = None
        self._pid = None
        try:
            self._check()
        except FileFormatError:
            raise
        # HDF5 reports a corrupt file as RuntimeError, KeyError, OSError, ValueError, ...
        # depending on where it trips: any exception here is a broken file.
        except Exception as err:
            raise FileFormatError(self.name, f"cannot read HDF5 file ({err})") from None

    def _check(self) -> None:
        images, depths = self._datasets()
        if images.ndim != 4 or images.shape[1] != 3:
            raise FileFormatError(
                self.name, f"'images' has shape {images.shape}, expected (N, 3, W, H)"
            )
        expected = (images.shape[0], *images.shape[2:])
        if depths.shape != expected:
            raise FileFormatError(
                self.name, f"'{self.depth_key}' has shape {depths.shape}, expected {expected}"
            )
        check_size(self.name, images.shape[1:], 1)
        self.count = int(images.shape[0])

    def _datasets(self):
        import h5py

        if self._file is None or self._pid != os.getpid():
            try:
                self._file = h5py.File(self.source, "r")
            except Exception as err:  # any failure to open is a broken or foreign file
                raise FileFormatError(
                    self.name, f"cannot open as MATLAB v7.3/HDF5 file ({err})"
                ) from None
            self._pid = os.getpid()
        for key in ("images", self.depth_key):
            if key not in self._file:
                raise FileFormatError(self.name, f"no '{key}' array (has {sorted(self._file)})")
            if not isinstance(self._file[key], h5py.Dataset):
                raise FileFormatError(self.name, f"'{key}' is a group, not an array")
        return self._file["images"], self._file[self.depth_key]

    def __len__(self) -> int:
        return self.count

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image `index` (0-based) -> (float32 (H, W, 3) RGB in [0, 1], float32 (H, W) depth)."""
        if not 0 <= index < self.count:
            raise FileFormatError(self.name, f"index {index} outside 0..{self.count - 1}")
        try:
            images, depths = self._datasets()
            image = np.asarray(images[index]).transpose(2, 1, 0).astype(np.float32) / 255.0
            depth = np.asarray(depths[index]).T.astype(np.float32)
        except FileFormatError:
            raise
        except Exception as err:  # as in __init__: HDF5's errors on a corrupt file
            raise FileFormatError(
                self.name, f"cannot read image {index} ({type(err).__name__}: {err})"
            ) from None
        return np.ascontiguousarray(image), np.ascontiguousarray(depth)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = None
        return state


def read_nyu_labeled(path: PathOrFile, index: int) -> tuple[np.ndarray, np.ndarray]:
    """One (image, depth) pair of the labeled NYUv2 .mat file; `index` is 0-based."""
    return NyuLabeledMat(path).read(index)

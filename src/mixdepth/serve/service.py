"""What the web app does, without the web: uploads in, depth maps and download files out.

Each upload gets a folder below one temporary folder of the service: the uploaded bytes, the
prediction (`prediction.npy`) and, when asked for, the download files, written by
`mixdepth.outputs.write_outputs` exactly as `mixdepth predict` writes them. The oldest
results are deleted beyond `keep`; `close()` removes the whole folder.
"""

from __future__ import annotations

import functools
import io
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixdepth.errors import FileFormatError, MixdepthError
from mixdepth.outputs import (
    COLORMAPS,
    check_colormap,
    colormap_lut,
    minmax_normalize,
    output_path,
    write_outputs,
)

MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 50_000_000
KEEP_RESULTS = 32
# the depth sent to the page for display is at most this many pixels on its longer side
PREVIEW_SIDE = 1600
DOWNLOADS = ("png16", "pfm", "color", "ply")
EXAMPLES = ("coffee", "chelsea", "astronaut")


class UploadError(MixdepthError):
    """An upload that cannot be used; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Result:
    """One predicted upload."""

    id: str
    stem: str
    folder: Path
    upload: Path
    width: int
    height: int
    network: tuple[int, int]
    seconds: float

    @property
    def prediction(self) -> Path:
        return self.folder / "prediction.npy"


def safe_stem(filename: str) -> str:
    """The uploaded file's name without folders and suffix, reduced to [A-Za-z0-9_.-]."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.splitext(name)[0]).strip("._")
    return stem[:100] or "photo"


def megabytes(n: int) -> str:
    return f"{n / 2**20:.3g} MB"


@functools.lru_cache(maxsize=len(EXAMPLES))
def example_png(name: str) -> bytes:
    """One of scikit-image's bundled photos, encoded as PNG."""
    import skimage.data
    from PIL import Image

    if name not in EXAMPLES:
        raise KeyError(name)
    buffer = io.BytesIO()
    Image.fromarray(getattr(skimage.data, name)()).save(buffer, format="PNG")
    return buffer.getvalue()


class DepthService:
    """Predicts uploads one at a time with a shared Predictor and keeps their results."""

    def __init__(self, predictor, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS,
                 keep: int = KEEP_RESULTS):
        self.predictor = predictor
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.keep = keep
        self.folder = Path(tempfile.mkdtemp(prefix="mixdepth-serve-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.folder, True)
        self._results: OrderedDict[str, Result] = OrderedDict()
        self._model_lock = threading.Lock()  # one prediction at a time: the cores are shared
        self._files_lock = threading.Lock()  # writing download files and deleting results

    def close(self) -> None:
        """Delete every result and the temporary folder."""
        with self._files_lock:
            self._cleanup()

    def info(self) -> dict:
        """What the page shows before any upload."""
        return {
            "model": self.predictor.config.name,
            "input_size": self.predictor.config.input_size,
            "max_bytes": self.max_bytes,
            "max_pixels": self.max_pixels,
            "colormaps": list(COLORMAPS),
            "examples": list(EXAMPLES),
            "downloads": list(DOWNLOADS),
        }

    @staticmethod
    def colormaps() -> dict[str, list[int]]:
        """Each colour map's 256 RGB entries, flat: the tables the colour PNG is made with."""
        return {name: colormap_lut(name).ravel().tolist() for name in COLORMAPS}

    def predict(self, data: bytes, filename: str) -> Result:
        """Decode an uploaded file as `mixdepth predict` reads a photo and predict its depth."""
        from mixdepth.inference import to_rgb_array

        name = filename.replace("\\", "/").rsplit("/", 1)[-1] or "upload"
        if not data:
            raise UploadError(f"{name}: the file is empty (0 bytes)")
        if len(data) > self.max_bytes:
            raise UploadError(f"{name}: {megabytes(len(data))} is over the limit of "
                              f"{megabytes(self.max_bytes)}", 413)
        rid = uuid.uuid4().hex
        folder = self.folder / rid
        folder.mkdir()
        upload = folder / "upload"
        try:
            upload.write_bytes(data)
            self._check_pixels(upload, name)
            try:
                rgb = to_rgb_array(upload)
            except FileFormatError as err:
                raise UploadError(f"{name}: {err.problem}") from None
            height, width = rgb.shape[:2]
            with self._model_lock:
                start = time.perf_counter()
                prediction = self.predictor.predict_batch([rgb])[0]
                seconds = time.perf_counter() - start
            np.save(folder / "prediction.npy", prediction)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        result = Result(rid, safe_stem(name), folder, upload, width, height,
                        self.predictor.network_shape(height, width), seconds)
        with self._files_lock:
            self._results[rid] = result
            while len(self._results) > self.keep:
                _, old = self._results.popitem(last=False)
                shutil.rmtree(old.folder, ignore_errors=True)
        return result

    def _check_pixels(self, path: Path, name: str) -> None:
        """Refuse an image over the pixel limit from its header, before decoding it."""
        from PIL import Image

        try:
            with Image.open(path) as image:
                width, height = image.size
        except Exception:
            return  # not an image: decoding says so
        if width * height > self.max_pixels:
            raise UploadError(f"{name}: {width}x{height} is {width * height / 1e6:.1f} "
                              f"megapixels, over the limit of {self.max_pixels / 1e6:g}", 413)

    def result(self, rid: str) -> Result:
        """A kept result, KeyError if unknown or deleted."""
        with self._files_lock:
            return self._results[rid]

    def preview(self, rid: str) -> tuple[bytes, int, int]:
        """The depth for display: uint16 little-endian, min-max normalised like the 16-bit
        PNG, at most PREVIEW_SIDE pixels on the longer side; (bytes, width, height)."""
        from PIL import Image

        result = self.result(rid)
        prediction = np.load(result.prediction)
        finite = prediction[np.isfinite(prediction)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        height, width = prediction.shape
        factor = PREVIEW_SIDE / max(height, width)
        if factor < 1:
            size = (max(1, round(width * factor)), max(1, round(height * factor)))
            small = Image.fromarray(prediction.astype(np.float32)).resize(size, Image.BOX)
            prediction = np.asarray(small)
        codes = np.round(minmax_normalize(prediction, lo, hi) * 65535).astype("<u2")
        return codes.tobytes(), codes.shape[1], codes.shape[0]

    def download(self, rid: str, kind: str, colormap: str = "inferno") -> Path:
        """The file `mixdepth predict --format KIND --colormap COLORMAP` writes for the upload,
        named as it names it; KeyError for an unknown result or kind."""
        from mixdepth.inference import to_rgb_array

        if kind not in DOWNLOADS:
            raise KeyError(kind)
        check_colormap(colormap)
        result = self.result(rid)
        base = result.folder / (colormap if kind == "color" else "out") / result.stem
        path = output_path(base, kind)
        with self._files_lock:
            if rid not in self._results:
                raise KeyError(rid)
            if not path.is_file():
                prediction = np.load(result.prediction)
                rgb = to_rgb_array(result.upload) if kind == "ply" else None
                write_outputs(base, prediction, rgb, [kind], colormap)
        return path

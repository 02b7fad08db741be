"""Inference: `Predictor` turns RGB images into relative inverse depth.

The pre- and post-processing follow the reference implementation so that the same weights give
the same output as the official code:

1. the image as RGB float32 in [0, 1] (paths, PIL images and arrays are converted; RGB order),
2. resized bicubically (align_corners=False, no clamping) to
   `network_input_shape(h, w, config.input_size, mode=config.resize_mode)` (multiples of 32,
   aspect ratio kept),
3. normalised with the model's mean/std (`mixdepth.models.normalize`),
4. the network's (B, h, w) relative inverse depth resized back to the input resolution
   bicubically (align_corners=False), as the official `run.py` does.

The output is relative inverse depth (disparity up to an unknown scale and shift): larger means
closer. Bicubic resizing may produce values slightly below zero next to strong edges, exactly as
the reference does.

`predict_batch` groups images by their network input shape ("buckets"): images that resize to
the same (h, w) are stacked into one forward pass of up to `batch_size` images; every image is
resized back to its own resolution. No padding is involved, so each result equals the
one-by-one prediction.

The default path on the CPU in float32 (`optimize=True, runtime="auto"`) runs the network in
onnxruntime: it is exported to ONNX once per set of weights and the export is cached on disk
for later processes (`mixdepth.inference.onnx_cache`). Where that is impossible (onnxruntime
missing, an export that fails its check, another device or dtype) it runs a copy of the model
prepared for PyTorch inference: batch norm folded into the preceding convolutions, channels-last
memory layout, 1x1 convolutions as matrix products (`runtime="torch"` chooses it). Both match
the eager model within a max relative difference of 1e-4 (see benchmarks/bench_inference.py).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mixdepth.data.transforms import network_input_shape
from mixdepth.errors import ConfigError, MixdepthError
from mixdepth.inference.config import InferenceConfig, build_model
from mixdepth.inference.graph import compile_for_inference, optimize_for_inference
from mixdepth.inference.images import ImageInput, to_rgb_array
from mixdepth.inference.runtimes import OnnxFileRunner

log = logging.getLogger(__name__)

INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "area")
RUNTIMES = ("auto", "torch")


@functools.lru_cache(maxsize=8)  # a few sizes (a video's frames share one); bounded memory
def bicubic_matrix(size_in: int, size_out: int) -> Tensor:
    """(size_out, size_in) float32 matrix of torch's bicubic resampling along one axis.

    Column j is `F.interpolate(mode="bicubic", align_corners=False)` of the j-th unit vector
    (as an image one pixel wide, whose horizontal weights sum to 1), so the matrix holds the
    kernel's own weights, border clamping included.
    """
    unit_columns = torch.eye(size_in)[:, None, :, None]  # (size_in, 1, size_in, 1)
    with torch.inference_mode():
        out = F.interpolate(unit_columns, size=(size_out, 1), mode="bicubic",
                            align_corners=False)
    return out[:, 0, :, 0].T.contiguous()


def bicubic_resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """float32 (h, w) CPU map -> (H, W) = `size`: F.interpolate(mode="bicubic",
    align_corners=False) as two matrix products with the resampling matrices of
    `bicubic_matrix` (in the cheaper order; equal up to float rounding, about 2e-7 relative),
    which on a CPU is faster than the direct 16-tap kernel."""
    (h, w), (height, width) = image.shape, size
    rows, columns = bicubic_matrix(h, height), bicubic_matrix(w, width).T
    with torch.inference_mode():
        if height * h * w + height * w * width <= h * w * width + height * h * width:
            return (rows @ image) @ columns
        return rows @ (image @ columns)


# --------------------------------------------------------------------------- predictor


class Predictor:
    """Relative inverse depth from RGB images with a mixdepth model or an exported ONNX file.

    Predictor(model="tiny" | nn.Module | None, weights=None, device="cpu",
    dtype=torch.float32, optimize=True, compile=False, onnx=None, input_size=None,
    runtime="auto")

    - model/weights: see `build_model`; with neither, the bundled default weights are used.
    - input_size: working size for the resize rule instead of the model's (the size its
      weights file records, else the architecture's default; see `self.config`).
    - dtype=torch.bfloat16 runs the network under CPU/CUDA autocast (output stays float32).
    - optimize: run the fastest exact path (False: the eager model as it is). On the CPU in
      float32 with runtime="auto" that is onnxruntime on the model's cached ONNX export
      (`mixdepth.inference.onnx_cache`); otherwise, or if that path cannot be used (a one-line
      notice says why), the copy prepared by `optimize_for_inference`.
    - runtime: "auto" (above) or "torch" (always the `optimize_for_inference` copy).
    - compile: run `compile_for_inference` instead (fastest for many same-size inputs, after
      a one-off compilation per input shape).
    - onnx: path of a model written by `mixdepth export`; runs with onnxruntime on CPU with
      the same pre/post-processing (model config read from the file's metadata).
    """

    def __init__(
        self,
        model: str | nn.Module | None = None,
        weights: str | Path | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        optimize: bool = True,
        compile: bool = False,
        onnx: str | Path | None = None,
        input_size: int | None = None,
        runtime: str = "auto",
    ):
        if runtime not in RUNTIMES:
            raise ConfigError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        if dtype not in (torch.float32, torch.bfloat16):
            raise ConfigError(f"dtype must be torch.float32 or torch.bfloat16, got {dtype}")
        if input_size is not None and (isinstance(input_size, bool) or
                                       not isinstance(input_size, int) or input_size < 32):
            raise ConfigError(f"input_size must be an integer of at least 32, got {input_size!r}")
        self.device = torch.device(device)
        self.dtype = dtype
        self.model: nn.Module | None = None
        self._run: Callable[[Tensor], Tensor]
        self._fast: nn.Module | None = None
        self.runtime = "onnxruntime"  # what runs the network: see `runtime` below
        if onnx is not None:
            if model is not None or weights is not None:
                raise ConfigError("pass either an ONNX file or a model/weights, not both")
            if dtype != torch.float32 or self.device.type != "cpu":
                raise ConfigError("ONNX inference runs on the CPU in float32 only")
            onnx = Path(onnx)
            if not onnx.is_file():
                raise MixdepthError(f"{onnx}: ONNX file not found")
            runner = OnnxFileRunner(onnx)
            self.config = runner.config.with_input_size(input_size)
            self._run = runner
            return
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device cuda requested but torch finds no CUDA device")
        net = build_model(model, weights).to(self.device)
        self.model = net
        self.config = InferenceConfig.of(net.config).with_input_size(input_size)
        self._run = self._run_torch
        if compile:
            self._fast, self.runtime = compile_for_inference(net), "torch-compiled"
        elif not optimize:
            self.runtime = "torch-eager"
        elif runtime == "auto" and self.device.type == "cpu" and dtype == torch.float32:
            self._use_cached_onnx(net)
        else:
            self._fast, self.runtime = optimize_for_inference(net), "torch-fast"

    def _use_cached_onnx(self, net: nn.Module) -> None:
        """Run `net` through its cached ONNX export, or the torch fast path with a notice."""
        from mixdepth.inference.onnx_cache import OnnxUnavailable, cached_session

        try:
            session, how = cached_session(net)
        except OnnxUnavailable as err:
            log.warning("mixdepth: onnxruntime path unavailable (%s); running PyTorch", err)
            self._fast, self.runtime = optimize_for_inference(net), "torch-fast"
            return
        log.debug("onnxruntime session %s", how)
        self._run, self.runtime = session, "onnxruntime"

    def __repr__(self) -> str:
        backend = self.runtime if self.runtime == "onnxruntime" else \
            f"{self.runtime} {self.device} {self.dtype}"
        return f"Predictor({self.config.name}, {backend})"

    # -- network input and output

    def network_shape(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) the network sees for an input of (height, width)."""
        return network_input_shape(
            height, width, self.config.input_size, mode=self.config.resize_mode
        )

    def preprocess(self, image: np.ndarray) -> Tensor:
        """float32 (H, W, 3) RGB [0, 1] -> normalised (1, 3, h, w) at the network shape."""
        from mixdepth.models import normalize

        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        size = self.network_shape(*image.shape[:2])
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False)
        return normalize(x, self.config)

    def _run_torch(self, x: Tensor) -> Tensor:
        net = self._fast if self._fast is not None else self.model
        x = x.to(self.device)
        if self._fast is not None:
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if self.dtype == torch.bfloat16
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            return net(x).float()

    def forward(self, x: Tensor) -> Tensor:
        """Normalised (B, 3, h, w) -> (B, h, w) float32 relative inverse depth (CPU tensor)."""
        with torch.inference_mode():
            out = self._run(x)
        if out.ndim == 4 and out.shape[1] == 1:
            out = out[:, 0]
        return out.float().cpu()

    @staticmethod
    def resize_output(
        pred: Tensor, size: tuple[int, int], interpolation: str = "bicubic"
    ) -> np.ndarray:
        """(h, w) prediction -> float32 (H, W) numpy at `size` (height, width)."""
        if interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}"
            )
        size = (int(size[0]), int(size[1]))
        if tuple(pred.shape[-2:]) != size and interpolation == "bicubic" \
                and pred.dtype == torch.float32 and pred.device.type == "cpu":
            pred = bicubic_resize(pred, size)
        elif tuple(pred.shape[-2:]) != size:
            corners = {"align_corners": False} if interpolation in ("bicubic", "bilinear") else {}
            with torch.inference_mode():
                pred = F.interpolate(pred[None, None], size=size, mode=interpolation, **corners)[
                    0, 0
                ]
        return np.ascontiguousarray(pred.numpy(), dtype=np.float32)

    # -- public API

    def predict(
        self,
        image: ImageInput,
        output_size: tuple[int, int] | None = None,
        interpolation: str = "bicubic",
    ) -> np.ndarray:
        """One image -> float32 (H, W) relative inverse depth at the input resolution.

        image: a path, PIL image or RGB array (see `to_rgb_array`). output_size: (height, width)
        to resize the prediction to instead of the input's. interpolation: bicubic (reference),
        bilinear, nearest or area.
        """
        rgb = to_rgb_array(image)
        pred = self.forward(self.preprocess(rgb))[0]
        return self.resize_output(pred, output_size or rgb.shape[:2], interpolation)

    def predict_batch(
        self,
        images: Iterable[ImageInput],
        batch_size: int = 8,
        output_size: tuple[int, int] | None = None,
        interpolation: str = "bicubic",
    ) -> list[np.ndarray]:
        """Images of any sizes -> list of float32 (H_i, W_i) predictions in input order.

        Images are bucketed by network input shape and each bucket runs in forward passes of
        up to `batch_size` images, so mixed sizes need no padding.
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        arrays = [to_rgb_array(image) for image in images]
        results: list[np.ndarray | None] = [None] * len(arrays)
        for indices, preds in self._bucketed_forward(arrays, batch_size):
            for i, pred in zip(indices, preds, strict=True):
                size = output_size or arrays[i].shape[:2]
                results[i] = self.resize_output(pred, size, interpolation)
        return results  # type: ignore[return-value]

    def _bucketed_forward(
        self, arrays: Sequence[np.ndarray], batch_size: int
    ) -> Iterable[tuple[list[int], Tensor]]:
        """Yield (indices, (n, h, w) predictions) per forward pass over shape buckets."""
        buckets: dict[tuple[int, int], list[int]] = {}
        for i, rgb in enumerate(arrays):
            buckets.setdefault(self.network_shape(*rgb.shape[:2]), []).append(i)
        for indices in buckets.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                x = torch.cat([self.preprocess(arrays[i]) for i in chunk])
                yield chunk, self.forward(x)

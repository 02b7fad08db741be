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
for later processes (`mixdepth.onnx_cache`). Where that is impossible (onnxruntime missing, an
export that fails its check, another device or dtype) it runs a copy of the model prepared
for PyTorch inference: batch norm folded into the preceding convolutions, channels-last
memory layout, 1x1 convolutions as matrix products (`runtime="torch"` chooses it). Both match
the eager model within a max relative difference of 1e-4 (see benchmarks/bench_inference.py).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.resources
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mixdepth.data.transforms import network_input_shape
from mixdepth.errors import ConfigError, FileFormatError, MixdepthError
from mixdepth.io import pil_to_rgb, read_image

log = logging.getLogger(__name__)

ImageInput = Union[str, Path, np.ndarray, "PIL.Image.Image"]  # noqa: F821  (PIL imported lazily)
INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "area")
RUNTIMES = ("auto", "torch")


def default_weights_path() -> Path | None:
    """The bundled default weights (mixdepth/weights/default.safetensors) or None if absent."""
    ref = importlib.resources.files("mixdepth") / "weights" / "default.safetensors"
    return Path(str(ref)) if ref.is_file() else None


def max_relative_difference(a: np.ndarray | Tensor, b: np.ndarray | Tensor) -> float:
    """max |a - b| / max |b| (b is the reference); 0 when both are all zero."""
    a = np.asarray(a.detach().cpu() if isinstance(a, Tensor) else a, dtype=np.float64)
    b = np.asarray(b.detach().cpu() if isinstance(b, Tensor) else b, dtype=np.float64)
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    ref = float(np.max(np.abs(b))) if b.size else 0.0
    return diff / ref if ref > 0 else (0.0 if diff == 0 else float("inf"))


# --------------------------------------------------------------------------- images


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


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class InferenceConfig:
    """What inference needs to know about a model: its working size, resize rule, mean/std."""

    name: str
    input_size: int
    resize_mode: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def of(cls, config: Any) -> InferenceConfig:
        """The inference part of a model's `config`."""
        return cls(
            name=str(config.name),
            input_size=int(config.input_size),
            resize_mode=str(config.resize_mode),
            mean=tuple(float(v) for v in config.mean),
            std=tuple(float(v) for v in config.std),
        )

    def with_input_size(self, input_size: int | None) -> InferenceConfig:
        """This config with another working size (None: unchanged)."""
        return self if input_size is None else replace(self, input_size=input_size)


def build_model(model: str | nn.Module | None, weights: str | Path | None) -> nn.Module:
    """The network a Predictor runs, in eval mode.

    - an nn.Module: used as is (weights, if given, are loaded strictly into it);
    - a registry name without weights: constructed with random weights;
    - weights (with or without a name): loaded with `mixdepth.models.load_model`;
    - neither: the bundled default weights, or a MixdepthError saying what to pass.
    """
    from mixdepth import models

    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise MixdepthError(f"{weights}: weights file not found")
    if isinstance(model, nn.Module):
        if not hasattr(model, "config"):
            raise ConfigError(
                f"{type(model).__name__} has no .config (name, input_size, resize_mode, mean, "
                "std): build it with mixdepth.models.create or attach one"
            )
        if weights is not None:
            models.load_weights(model, weights)
        return model.eval()
    if model is None and weights is None:
        weights = default_weights_path()
        if weights is None:
            raise MixdepthError(
                "no model given and this installation ships no default weights: pass "
                "--weights PATH (a .safetensors or official .pt checkpoint) and/or --model NAME "
                f"(one of {', '.join(models.list_models())})"
            )
    if weights is None:
        return models.create(model).eval()
    return models.load_model(weights, name=model).eval()


def fold_batch_norm(model: nn.Module, example: Tensor | None = None) -> nn.Module:
    """A copy of `model` (eval mode) with each BatchNorm2d folded into the conv feeding it.

    Which conv feeds which batch norm is observed on one forward pass of `example` (default a
    random (1, 3, 64, 64) image): a BatchNorm2d whose input tensor is the output of a Conv2d is
    folded into it (the conv gets the normalisation as weight scale and bias) and replaced by
    nn.Identity. The folded copy is then checked against the original on the same example; if
    the outputs differ by more than 1e-4 relative (a conv output used elsewhere too), the
    unfolded copy is returned. The original model is not modified.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fused = copy.deepcopy(model).eval()
    if example is None:
        example = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    example = example.to(next(fused.parameters(), torch.empty(0)).device)
    conv_outputs: dict[int, tuple[str, Tensor]] = {}
    pairs: list[tuple[str, str]] = []

    def after_conv(name):
        def hook(module, args, output):
            conv_outputs[id(output)] = (name, output)  # keep the tensor alive: ids stay unique
        return hook

    def before_bn(name):
        def hook(module, args):
            if id(args[0]) in conv_outputs:
                pairs.append((conv_outputs[id(args[0])][0], name))
        return hook

    handles = []
    for name, module in fused.named_modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(after_conv(name)))
        elif isinstance(module, nn.BatchNorm2d) and module.track_running_stats:
            handles.append(module.register_forward_pre_hook(before_bn(name)))
    with torch.inference_mode():
        reference = fused(example)
    for handle in handles:
        handle.remove()
    conv_outputs.clear()

    for conv_name, bn_name in dict(pairs).items():  # each conv once
        conv, bn = fused.get_submodule(conv_name), fused.get_submodule(bn_name)
        _set_submodule(fused, conv_name, fuse_conv_bn_eval(conv, bn))
        _set_submodule(fused, bn_name, nn.Identity())
    with torch.inference_mode():
        difference = max_relative_difference(fused(example), reference)
    if difference > 1e-4:
        log.warning("batch-norm folding changed the output (%.2g); running unfolded", difference)
        return copy.deepcopy(model).eval()
    return fused


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def conv1x1_as_matmul(model: nn.Module, example: Tensor | None = None) -> nn.Module:
    """`model` (a copy made for inference, modified in place) with its 1x1 convolutions (stride
    1, no padding, one group, float32) run as matrix products over the channels.

    On a channels-last (B, C, H, W) input that is `F.linear` on the (B, H, W, C) view, with no
    copy, instead of PyTorch's generic im2col path for small 1x1 convolutions. A call with
    another weight than the module's own (e.g. weight standardisation) runs the plain conv. The
    result is checked against the unmodified forward on `example` (default a random
    (1, 3, 64, 64) image); if they differ by more than 1e-4 relative, the module is restored.
    """
    convs = [
        m for m in model.modules()
        if isinstance(m, nn.Conv2d) and m.padding_mode == "zeros"
        and not isinstance(m.padding, str) and m.weight.device.type == "cpu"
        and m.weight.dtype == torch.float32
    ]
    if not convs:
        return model
    if example is None:
        example = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    example = example.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        reference = model(example)
    for conv in convs:
        forward = _conv_as_matmul(conv)
        if forward is not None:
            conv._conv_forward = forward
    with torch.inference_mode():
        difference = max_relative_difference(model(example), reference)
    if difference > 1e-4:
        log.warning("1x1 convs as matmul changed the output (%.2g); running plain ones", difference)
        for conv in convs:
            conv.__dict__.pop("_conv_forward", None)
    return model


def _conv_as_matmul(conv: nn.Conv2d) -> Callable | None:
    if conv.kernel_size != (1, 1) or conv.stride != (1, 1) or conv.padding != (0, 0) \
            or conv.groups != 1:
        return None
    matrix = conv.weight.detach()[:, :, 0, 0].contiguous()  # (out, in)

    def forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if weight is not conv.weight:  # a subclass passing a derived weight
            return F.conv2d(x, weight, bias)
        # (B, C, H, W) channels-last is a (B, H, W, C) contiguous tensor: no copy either way
        return F.linear(x.permute(0, 2, 3, 1), matrix, bias).permute(0, 3, 1, 2)

    return forward


def optimize_for_inference(model: nn.Module, channels_last: bool = True) -> nn.Module:
    """The fast inference copy: batch norm folded, channels-last weights, 1x1 convolutions as
    matrix products (see `conv1x1_as_matmul`), eval mode.

    A model without BatchNorm2d (the ViT-based DPT models) has nothing to fold and is returned
    as it is, in eval mode, rather than doubling its memory with a copy.
    """
    if not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        return model.eval()
    fast = pad_into_kernels(fold_batch_norm(model))
    if channels_last:
        fast = conv1x1_as_matmul(fast.to(memory_format=torch.channels_last))
    return fast.eval()


def pad_into_kernels(model: nn.Module) -> nn.Module:
    """`model` (a copy made for inference, modified in place) with the strided TensorFlow-"same"
    convolutions of its EfficientNet encoder padding their kernel rather than their input
    (`SamePadConv2d._forward_padded_kernel`, exact)."""
    from mixdepth.models.efficientnet import SamePadConv2d

    for module in model.modules():
        if isinstance(module, SamePadConv2d):
            module.pad_into_kernel = True
    return model


def compile_for_inference(model: nn.Module) -> nn.Module:
    """`torch.compile` (inductor, weights frozen into the graph) of the batch-norm-folded,
    channels-last model: the fastest CPU path for many inputs of one size (video frames, one
    camera's photos). Compiling happens at the first call and again for each new input shape
    (seconds to tens of seconds each on a CPU) and needs a C++ compiler; call it under
    inference mode. As in `optimize_for_inference`, a model without BatchNorm2d is used as it
    is (no copy, and its memory layout is left alone)."""
    if any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        model = pad_into_kernels(fold_batch_norm(model)).to(memory_format=torch.channels_last)
    return FrozenCompiled(model.eval())


class FrozenCompiled(nn.Module):
    """A module compiled by inductor with freezing: parameters become constants of the graph, so
    that convolutions run as prepacked oneDNN kernels with their bias and activation fused.
    Inductor reads its freezing switch from its global config when it compiles, which happens
    lazily at calls with a new input shape, so every call runs with the switch set (a
    compile-time `options={"freezing": True}` is not enough) and the global config is left
    as it was."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.compiled = torch.compile(model, dynamic=False)

    def forward(self, x: Tensor) -> Tensor:
        import torch._inductor.config as inductor_config

        with inductor_config.patch(freezing=True):
            return self.compiled(x)


class _OnnxRunner:
    """Runs an exported model (see mixdepth.export) with onnxruntime: (B,3,h,w) -> (B,h,w)."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        from mixdepth.export import read_onnx_config

        self.config = read_onnx_config(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:
            raise FileFormatError(path, f"onnxruntime cannot load it ({err})") from None
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: Tensor) -> Tensor:
        out = self.session.run(None, {self.input_name: x.float().contiguous().numpy()})[0]
        return torch.from_numpy(out)


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
      (`mixdepth.onnx_cache`); otherwise, or if that path cannot be used (a one-line notice
      says why), the copy prepared by `optimize_for_inference`.
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
            runner = _OnnxRunner(onnx)
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
        from mixdepth.onnx_cache import OnnxUnavailable, cached_session

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


__all__ = [
    "InferenceConfig",
    "Predictor",
    "build_model",
    "default_weights_path",
    "conv1x1_as_matmul",
    "fold_batch_norm",
    "max_relative_difference",
    "optimize_for_inference",
    "read_image_file",
    "to_rgb_array",
]

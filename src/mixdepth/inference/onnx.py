"""Export a model to ONNX with dynamic batch, height and width.

The graph takes the normalised image `image` float32 (B, 3, H, W), H and W multiples of 32,
and returns `inverse_depth` float32 (B, H, W): exactly the model's `forward`. Resizing and
normalisation stay outside the graph; the model's name, working size, resize rule and mean/std
are stored in the file's metadata (key "mixdepth.config", JSON) so that
`Predictor(onnx=PATH)` / `mixdepth predict --onnx PATH` apply the same pre/post-processing.

The torch.export-based exporter is tried first, with H = 32*h and W = 32*w symbolic; if it
fails, the TorchScript-based exporter with dynamic axes is used. Either way the result is checked
against PyTorch by `compare_onnx` at two sizes (a traced graph that baked in a shape would fail).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mixdepth.data.transforms import network_input_shape
from mixdepth.errors import ConfigError, FileFormatError, MixdepthError
from mixdepth.inference.config import InferenceConfig
from mixdepth.inference.graph import max_relative_difference

log = logging.getLogger(__name__)

METADATA_KEY = "mixdepth.config"
INPUT_NAME = "image"
OUTPUT_NAME = "inverse_depth"
MAX_SIDE = 8192  # largest height/width the dynamic shapes admit


EXPORTERS = ("auto", "dynamo", "torchscript")


def export_onnx(
    model: nn.Module,
    path: str | Path,
    height: int | None = None,
    width: int | None = None,
    opset: int | None = None,
    exporter: str = "auto",
) -> tuple[Path, str]:
    """Write `model` (with a `.config`) as ONNX; returns (path, exporter used).

    height/width: the example input size used for tracing (multiples of 32; default the
    model's working size); the exported graph accepts any batch and any multiple-of-32 size.
    exporter: "dynamo" (torch.export with symbolic H = 32*h, W = 32*w; slow to trace but
    shape-exact), "torchscript" (traced, dynamic axes; fast) or "auto" (dynamo, falling back
    to torchscript if it fails). Check the result with `compare_onnx` at sizes other than
    the example (the CLI does).
    """
    if exporter not in EXPORTERS:
        raise ConfigError(f"exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}")
    config = InferenceConfig.of(model.config)
    height, width = _example_size(config, height, width)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    example = torch.rand(2, 3, height, width)
    if exporter == "torchscript":
        used = _export_torchscript(model, example, path, opset)
    elif exporter == "dynamo":
        used = _export_dynamo(model, example, path, opset)
    else:
        try:
            used = _export_dynamo(model, example, path, opset)
        except Exception as err:  # the dynamo exporter fails on some Python control flow
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            log.warning("torch.export-based ONNX export failed (%s); using TorchScript", reason)
            used = _export_torchscript(model, example, path, opset)
    _write_metadata(path, config)
    return path, used


def _example_size(config, height: int | None, width: int | None) -> tuple[int, int]:
    if height is None and width is None:
        return network_input_shape(config.input_size, config.input_size, config.input_size,
                                   mode=config.resize_mode)
    height = height or width
    width = width or height
    if height % 32 or width % 32 or height < 32 or width < 32:
        raise ConfigError(f"--height and --width must be multiples of 32, got {height}x{width}")
    return height, width


def _export_dynamo(model: nn.Module, example: torch.Tensor, path: Path, opset) -> str:
    from torch.export import Dim

    blocks = MAX_SIDE // 32
    dynamic = {0: Dim("batch", min=1, max=1024), 2: 32 * Dim("h", min=1, max=blocks),
               3: 32 * Dim("w", min=1, max=blocks)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), str(path), dynamo=True, external_data=False, verbose=False,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_shapes=(dynamic,),
            opset_version=opset,
        )
    return "dynamo"


def _export_torchscript(model: nn.Module, example: torch.Tensor, path: Path, opset) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), str(path), dynamo=False, input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME], opset_version=opset or 17,
            dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                          OUTPUT_NAME: {0: "batch", 1: "height", 2: "width"}},
        )
    return "torchscript"


def _write_metadata(path: Path, config) -> None:
    import onnx

    import mixdepth

    proto = onnx.load(str(path))
    entries = {METADATA_KEY: json.dumps(dataclasses.asdict(config)),
               "mixdepth.version": mixdepth.__version__}
    kept = [p for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))


def read_onnx_config(path: str | Path):
    """The InferenceConfig stored in an ONNX file written by `export_onnx`."""
    import onnx

    path = Path(path)
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:
        raise FileFormatError(path, f"not an ONNX model ({err})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise FileFormatError(
            path, f"no '{METADATA_KEY}' metadata: export the model with `mixdepth export`"
        )
    try:
        fields = json.loads(props[METADATA_KEY])
        return InferenceConfig(
            name=fields["name"], input_size=int(fields["input_size"]),
            resize_mode=fields["resize_mode"], mean=tuple(fields["mean"]), std=tuple(fields["std"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise FileFormatError(path, f"malformed '{METADATA_KEY}' metadata ({err})") from None


def compare_onnx(
    path: str | Path, model: nn.Module, sizes: tuple[tuple[int, int], ...] = ((64, 96), (96, 64)),
    seed: int = 0,
) -> float:
    """Max relative difference between onnxruntime and PyTorch outputs over random normalised
    images of the given (height, width) sizes (the worst over the sizes)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for height, width in sizes:
        x = torch.randn(1, 3, height, width, generator=generator)
        with torch.inference_mode():
            expected = model.eval()(x)
        got = session.run(None, {INPUT_NAME: x.numpy()})[0]
        if got.shape != tuple(expected.shape):
            raise MixdepthError(
                f"{path}: ONNX output shape {got.shape} differs from PyTorch's "
                f"{tuple(expected.shape)}"
            )
        worst = max(worst, max_relative_difference(np.asarray(got), expected))
    return worst

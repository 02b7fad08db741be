"""Inference: images in, relative inverse depth out.

- `predictor`: `Predictor` (pre-processing, the network, resizing back);
- `config`: `InferenceConfig` (working size, resize rule, mean/std) and `build_model`;
- `images`: paths, PIL images and arrays -> float32 RGB in [0, 1];
- `graph`: exact rewrites for speed (batch norm folding, 1x1 convolutions as matrix products,
  the compiled variant);
- `onnx`: export to ONNX with the config in the file's metadata, and its check;
- `runtimes`: onnxruntime sessions over an exported file or over the cached export;
- `onnx_cache`: the on-disk cache of exports behind the default CPU path.

`mixdepth export` and the CLI build on this package; nothing here imports them.
"""

from mixdepth.inference.config import InferenceConfig, build_model, default_weights_path
from mixdepth.inference.graph import (
    compile_for_inference,
    conv1x1_as_matmul,
    fold_batch_norm,
    max_relative_difference,
    optimize_for_inference,
)
from mixdepth.inference.images import ImageInput, read_image_file, to_rgb_array
from mixdepth.inference.onnx import compare_onnx, export_onnx, read_onnx_config
from mixdepth.inference.predictor import Predictor

__all__ = [
    "ImageInput",
    "InferenceConfig",
    "Predictor",
    "build_model",
    "compare_onnx",
    "compile_for_inference",
    "conv1x1_as_matmul",
    "default_weights_path",
    "export_onnx",
    "fold_batch_norm",
    "max_relative_difference",
    "optimize_for_inference",
    "read_image_file",
    "read_onnx_config",
    "to_rgb_array",
]

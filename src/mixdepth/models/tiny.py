"""`tiny`: a small MobileNet-like encoder with the same fusion decoder, for CPU training.

Encoder under `pretrained.layer1..4` (strides 4/8/16/32), decoder under `scratch.*`; under a
million parameters at the defaults, fast enough to train in minutes on 2 CPU cores at
128-256 px.
"""

from __future__ import annotations

import torch
from torch import nn

from mixdepth.errors import ConfigError
from mixdepth.models.blocks import FusionDecoder
from mixdepth.models.efficientnet import DepthwiseSeparable, InvertedResidual, make_divisible
from mixdepth.models.midas import MidasNet
from mixdepth.models.registry import IMAGENET_MEAN, IMAGENET_STD, register
from mixdepth.models.timm_encoder import TimmEncoder

# per level: (output channels, number of blocks, kernel) at width 1.0; the first block strides
TINY_LEVELS = ((24, 2, 3), (40, 2, 5), (80, 3, 3), (160, 2, 5))
BN_EPS = 1e-5


class TinyEncoder(nn.Module):
    """stem conv s2 (16 ch) + depthwise-separable, then inverted-residual levels (expansion 4)
    -> 4 maps at strides 4/8/16/32 with `out_channels` (24, 40, 80, 160) x width."""

    def __init__(self, width: float = 1.0, expand_ratio: int = 4):
        super().__init__()
        stem_ch = make_divisible(16 * width)
        stem = [
            nn.Conv2d(3, stem_ch, 3, 2, 1, bias=False),
            nn.BatchNorm2d(stem_ch, eps=BN_EPS),
            nn.ReLU6(),
            DepthwiseSeparable(stem_ch, stem_ch, 3, 1, BN_EPS, tf_same=False),
        ]
        levels, in_ch, channels = [], stem_ch, []
        for out_ch, blocks, kernel in TINY_LEVELS:
            out_ch = make_divisible(out_ch * width)
            level = [
                InvertedResidual(in_ch if b == 0 else out_ch, out_ch, kernel, 2 if b == 0 else 1,
                                 expand_ratio, BN_EPS, tf_same=False)
                for b in range(blocks)
            ]
            levels.append(level)
            channels.append(out_ch)
            in_ch = out_ch
        self.layer1 = nn.Sequential(*stem, *levels[0])
        self.layer2 = nn.Sequential(*levels[1])
        self.layer3 = nn.Sequential(*levels[2])
        self.layer4 = nn.Sequential(*levels[3])
        self.out_channels = tuple(channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        l1 = self.layer1(x)
        l2 = self.layer2(l1)
        l3 = self.layer3(l2)
        return [l1, l2, l3, self.layer4(l3)]


@register("tiny", input_size=256, mean=IMAGENET_MEAN, std=IMAGENET_STD)
def tiny(
    *, width: float = 1.0, features: int = 32, expand: bool = False, non_negative: bool = True,
    head_hidden: int = 16, head_activation: str = "relu", backbone: str = "tiny",
) -> MidasNet:
    """Tiny CNN (MobileNet-like encoder, fusion decoder width 32), ~0.7 M params, 256 px.

    head_activation: final activation, "relu" or "softplus" (see blocks.make_head).
    backbone="timm:NAME" swaps the encoder for a timm features_only model (needs timm).
    """
    if backbone.startswith("timm:"):
        encoder = TimmEncoder(backbone.removeprefix("timm:"))
    elif backbone == "tiny":
        encoder = TinyEncoder(width)
    else:
        raise ConfigError(f"backbone must be 'tiny' or 'timm:NAME', got {backbone!r}")
    decoder = FusionDecoder(
        encoder.out_channels, features, expand=expand, non_negative=non_negative,
        head_hidden=head_hidden, head_activation=head_activation,
    )
    return MidasNet(encoder, decoder)

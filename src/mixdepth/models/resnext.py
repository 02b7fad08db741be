"""ResNeXt encoders with torchvision's module names, split into 4 levels as MiDaS v2.1 does.

`layer1` = Sequential(conv1, bn1, relu, maxpool, resnet.layer1) (stride 4); `layer2..4` are the
resnet's layer2..4 (strides 8, 16, 32). Inside each: Bottleneck blocks with `conv1, bn1, conv2,
bn2, conv3, bn3` and `downsample.0/1` on the first block (stride on the 3x3 conv).
"""

from __future__ import annotations

import torch
from torch import nn


class Bottleneck(nn.Module):
    """1x1 -> grouped 3x3 (stride) -> 1x1 (x4 channels), BN after each, ReLU, identity or
    projected shortcut."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1, groups: int = 32,
                 width_per_group: int = 8):
        super().__init__()
        width = int(planes * width_per_group / 64) * groups
        out_ch = planes * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def _stage(in_ch: int, planes: int, blocks: int, stride: int, groups: int, width: int):
    layers = [Bottleneck(in_ch, planes, stride, groups, width)]
    layers += [Bottleneck(planes * 4, planes, 1, groups, width) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNeXtEncoder(nn.Module):
    """ResNeXt (default 101 32x8d: blocks (3, 4, 23, 3)) -> 4 maps with (256, 512, 1024, 2048)
    channels at strides 4/8/16/32. forward(x (B,3,H,W)) -> list of 4 tensors."""

    def __init__(self, blocks=(3, 4, 23, 3), groups: int = 32, width_per_group: int = 8):
        super().__init__()
        stem = [
            nn.Conv2d(3, 64, 7, 2, 3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        ]
        g, w = groups, width_per_group
        self.layer1 = nn.Sequential(*stem, _stage(64, 64, blocks[0], 1, g, w))
        self.layer2 = _stage(256, 128, blocks[1], 2, g, w)
        self.layer3 = _stage(512, 256, blocks[2], 2, g, w)
        self.layer4 = _stage(1024, 512, blocks[3], 2, g, w)
        self.out_channels = (256, 512, 1024, 2048)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        l1 = self.layer1(x)
        l2 = self.layer2(l1)
        l3 = self.layer3(l2)
        return [l1, l2, l3, self.layer4(l3)]

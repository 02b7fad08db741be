"""DPT (MiDaS v3): a ViT encoder, reassemble blocks and the fusion decoder.

Two registered models, both 384 px, resize mode "minimal", mean = std = 0.5:

* ``dpt_large``: ViT-L/16, tokens taken after blocks 5, 11, 17, 23 (~344 M parameters);
* ``dpt_hybrid``: ViT-B/16 on a BiT ResNet-50 stem; the two finest levels are the stem's
  stage outputs (stride 4 and 8), the two coarsest the tokens after blocks 8 and 11 (~123 M).

Reassembling: each token level drops the class token after mixing it into every patch token
("project" readout: concatenate the class token and project 2D -> D with GELU), reshapes the
tokens to their (H/16, W/16) grid, projects with a 1x1 conv and resamples to strides
4, 8, 16, 32 (transposed conv x4, x2, identity, 3x3 stride-2 conv).

Parameter names are those of the official checkpoints: ``pretrained.model.*`` (the ViT),
``pretrained.act_postprocess1..4.*`` (reassemble), ``scratch.layerK_rn``,
``scratch.refinenetK.*`` and ``scratch.output_conv.*``.
"""

from __future__ import annotations

import torch
from torch import nn

from mixdepth.models.blocks import FusionDecoder
from mixdepth.models.registry import HALF, register
from mixdepth.models.vit import VisionTransformer, vit_base_resnet50_384, vit_large_patch16_384

__all__ = ["DPT", "DPTEncoder", "ProjectReadout", "Reassemble", "dpt_hybrid", "dpt_large"]


class ProjectReadout(nn.Module):
    """Mix the class token into the patch tokens: (B, 1 + N, D) -> (B, N, D).

    ``project`` = Linear(2D -> D) + GELU applied to [patch token, class token].
    """

    def __init__(self, dim: int):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, 1:]
        readout = tokens[:, :1].expand_as(patches)
        return self.project(torch.cat([patches, readout], dim=-1))


class Reassemble(nn.Sequential):
    """Tokens (B, 1 + h*w, D) -> feature map (B, C, h*s, w*s) for one decoder level.

    Children keep the official indices: 0 readout, 1 and 2 the (parameter-free) transpose and
    unflatten steps, 3 the 1x1 projection D -> C, 4 the optional resampling layer.
    """

    def __init__(self, dim: int, channels: int, resample: nn.Module | None = None):
        layers = [ProjectReadout(dim), nn.Identity(), nn.Identity(), nn.Conv2d(dim, channels, 1)]
        if resample is not None:
            layers.append(resample)
        super().__init__(*layers)

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:  # type: ignore[override]
        x = self[0](tokens).transpose(1, 2).unflatten(2, grid)  # (B, D, h, w)
        for layer in list(self)[3:]:
            x = layer(x)
        return x


def _upsample(channels: int, factor: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(channels, channels, kernel_size=factor, stride=factor)


def _downsample(channels: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1)


class DPTEncoder(nn.Module):
    """The ``pretrained`` part of DPT: ViT ``model`` + ``act_postprocess1..4``.

    ``forward`` maps x (B, 3, H, W), H and W multiples of 32, to four feature maps at strides
    4, 8, 16, 32 with ``self.out_channels`` channels.
    """

    def __init__(self, kind: str):
        super().__init__()
        if kind == "vitl16_384":
            self.model: VisionTransformer = vit_large_patch16_384()
            self.hooks = [5, 11, 17, 23]
            self.out_channels = [256, 512, 1024, 1024]
            self.stem_levels = 0
            dim, c = 1024, self.out_channels
            self.act_postprocess1: nn.Module = Reassemble(dim, c[0], _upsample(c[0], 4))
            self.act_postprocess2: nn.Module = Reassemble(dim, c[1], _upsample(c[1], 2))
        elif kind == "vitb_rn50_384":
            self.model = vit_base_resnet50_384()
            self.hooks = [8, 11]  # levels 1 and 2 come from the ResNet stem
            self.out_channels = [256, 512, 768, 768]
            self.stem_levels = 2
            dim, c = 768, self.out_channels
            self.act_postprocess1 = nn.Identity()
            self.act_postprocess2 = nn.Identity()
        else:
            raise ValueError(f"unknown DPT backbone {kind!r}")
        self.act_postprocess3 = Reassemble(dim, c[2])
        self.act_postprocess4 = Reassemble(dim, c[3], _downsample(c[3]))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        grid = (x.shape[-2] // self.model.patch_size, x.shape[-1] // self.model.patch_size)
        tokens, stem_features = self.model.forward_features(x, self.hooks)
        levels = stem_features[: self.stem_levels] + tokens
        postprocess = [
            self.act_postprocess1,
            self.act_postprocess2,
            self.act_postprocess3,
            self.act_postprocess4,
        ]
        out = []
        for level, (features, reassemble) in enumerate(zip(levels, postprocess, strict=True)):
            out.append(features if level < self.stem_levels else reassemble(features, grid))
        return out


class DPT(nn.Module):
    """DPT depth model: ``pretrained`` (:class:`DPTEncoder`) + ``scratch`` (fusion decoder).

    The decoder is the official DPT one: 3x3 projections to ``features`` channels, fusion blocks
    with a 1x1 ``out_conv`` and bilinear x2 upsampling (align_corners=True), and the head
    conv 3x3 -> x2 bilinear (align_corners=True) -> conv 3x3 -> ReLU -> conv 1x1 -> ReLU.
    forward: x (B, 3, H, W), normalised with mean = std = 0.5, H and W multiples of 32
    -> (B, H, W) relative inverse depth (non-negative unless ``non_negative=False``).
    """

    def __init__(self, backbone: str, features: int = 256, non_negative: bool = True):
        super().__init__()
        self.pretrained = DPTEncoder(backbone)
        self.scratch = FusionDecoder(
            self.pretrained.out_channels,
            features,
            non_negative=non_negative,
            align_corners=True,
            head_align_corners=True,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scratch(self.pretrained(x))


@register("dpt_large", input_size=384, resize_mode="minimal", mean=HALF, std=HALF)
def dpt_large(*, features: int = 256, non_negative: bool = True) -> DPT:
    """DPT-Large (MiDaS v3): ViT-L/16 encoder + fusion decoder, 384 px, ~344 M parameters."""
    return DPT("vitl16_384", features, non_negative)


@register("dpt_hybrid", input_size=384, resize_mode="minimal", mean=HALF, std=HALF)
def dpt_hybrid(*, features: int = 256, non_negative: bool = True) -> DPT:
    """DPT-Hybrid (MiDaS v3): ViT-B/16 on a ResNet-50 stem + fusion decoder, 384 px, ~123 M."""
    return DPT("vitb_rn50_384", features, non_negative)

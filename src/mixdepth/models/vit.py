"""Vision Transformer encoders for DPT: ViT-L/16 and ViT-B/16 with a ResNet-50 (BiT) stem.

Module and parameter names follow the ViT and ResNet-V2 modules the official DPT / MiDaS v3
checkpoints were saved from (``cls_token``, ``pos_embed``, ``patch_embed.proj`` or
``patch_embed.backbone.stem.conv``, ``blocks.N.attn.qkv`` ...), so an official state dict
loads into :class:`VisionTransformer` under ``pretrained.model.`` without renaming.

The transformer runs at any input size that is a multiple of the patch size: the learned
position embeddings of the 384 px grid are resized bilinearly to the input's token grid, as the
official DPT code does. Everything here constructs offline with random weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Attention",
    "Block",
    "Bottleneck",
    "GroupNormAct",
    "HybridEmbed",
    "MaxPool2dSame",
    "Mlp",
    "PatchEmbed",
    "ResNetV2Backbone",
    "StdConv2dSame",
    "VisionTransformer",
    "resize_pos_embed",
    "same_padding",
    "vit_base_resnet50_384",
    "vit_large_patch16_384",
]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one axis for TensorFlow-style 'SAME' convolution or pooling.

    The output then has ceil(size / stride) entries. For kernel >= stride the total padding is
    ``kernel - 1 - (size - 1) % stride``; a kernel smaller than its stride needs none.
    """
    if kernel < stride:
        return 0, 0
    total = kernel - 1 - (size - 1) % stride
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """Pad (B, C, H, W) so a kernel/stride window op gives a (ceil(H/s), ceil(W/s)) output."""
    top, bottom = same_padding(x.shape[-2], kernel, stride)
    left, right = same_padding(x.shape[-1], kernel, stride)
    return F.pad(x, (left, right, top, bottom), value=value)


class StdConv2dSame(nn.Conv2d):
    """Conv2d with weight standardisation and TensorFlow 'SAME' padding (BiT ResNet convs).

    Each output filter is standardised over (in, kh, kw) as ``(w - mean) / sqrt(var + eps)``
    (biased variance, eps = 1e-8) before the convolution, as in the timm release the official
    MiDaS v3.1 code runs with. (The older timm 0.4.5 of the DPT repository used
    ``(w - mean) / (std + 1e-5)``; the outputs differ by about 1e-4 relative.) Stride-1 convs
    use the equivalent symmetric padding; strided ones pad asymmetrically at run time (extra
    row/column at the bottom/right).

    With gradients disabled (``torch.no_grad``/``inference_mode``) the standardised weight is
    cached until the weight changes (in-place update, new tensor, dtype or device), which saves
    about a tenth of DPT-Hybrid's inference time; with gradients on it is always recomputed.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        bias: bool = False,
        eps: float = 1e-8,
    ):
        self.dynamic_pad = not (stride == 1 and (kernel_size - 1) % 2 == 0)
        padding = 0 if self.dynamic_pad else (kernel_size - 1) // 2
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias
        )
        self.eps = eps
        self._cached: tuple[tuple, torch.Tensor] | None = None

    def standardized_weight(self) -> torch.Tensor:
        """The standardised filters, computed in at least float32 (also for bf16 weights)."""
        use_cache = not torch.is_grad_enabled() and not torch.compiler.is_compiling()
        if use_cache:
            w = self.weight  # the cache keeps w alive, so its storage cannot be reused
            key = (w, w.data_ptr(), w._version, w.dtype, w.device, self.eps)
            if self._cached is not None and _same_key(self._cached[0], key):
                return self._cached[1]
        weight = self.weight.to(torch.promote_types(self.weight.dtype, torch.float32))
        var, mean = torch.var_mean(weight, dim=(1, 2, 3), keepdim=True, unbiased=False)
        standardized = ((weight - mean) * torch.rsqrt(var + self.eps)).to(self.weight.dtype)
        self._cached = (key, standardized) if use_cache else None
        return standardized

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic_pad:
            x = _pad_same(x, self.kernel_size[0], self.stride[0])
        return F.conv2d(x, self.standardized_weight(), self.bias, self.stride, self.padding)


def _same_key(a: tuple, b: tuple) -> bool:
    """Cache keys of StdConv2dSame: the same weight object, storage, version, dtype, device."""
    return a[0] is b[0] and a[1:] == b[1:]


class MaxPool2dSame(nn.Module):
    """Max pooling with TensorFlow 'SAME' padding (padded cells are -inf, never selected)."""

    def __init__(self, kernel_size: int = 3, stride: int = 2):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _pad_same(x, self.kernel_size, self.stride, value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)


class GroupNormAct(nn.GroupNorm):
    """GroupNorm (32 groups, eps 1e-5), optionally followed by ReLU; params ``weight``, ``bias``."""

    def __init__(self, num_channels: int, apply_act: bool = True, num_groups: int = 32):
        super().__init__(num_groups, num_channels, eps=1e-5)
        self.act = nn.ReLU(inplace=True) if apply_act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class DownsampleConv(nn.Module):
    """Projection shortcut: strided 1x1 standardised conv + GroupNorm (no activation)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv = StdConv2dSame(in_channels, out_channels, 1, stride=stride)
        self.norm = GroupNormAct(out_channels, apply_act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class Bottleneck(nn.Module):
    """Post-activation bottleneck (1x1 -> 3x3 strided -> 1x1, width out/4) with GroupNorm."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        mid = out_channels // 4
        self.downsample = (
            DownsampleConv(in_channels, out_channels, stride)
            if stride != 1 or in_channels != out_channels
            else None
        )
        self.conv1 = StdConv2dSame(in_channels, mid, 1)
        self.norm1 = GroupNormAct(mid)
        self.conv2 = StdConv2dSame(mid, mid, 3, stride=stride)
        self.norm2 = GroupNormAct(mid)
        self.conv3 = StdConv2dSame(mid, out_channels, 1)
        self.norm3 = GroupNormAct(out_channels, apply_act=False)
        self.act3 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.norm1(self.conv1(x))
        x = self.norm2(self.conv2(x))
        x = self.norm3(self.conv3(x))
        return self.act3(x + shortcut)


class ResNetStage(nn.Module):
    """``depth`` bottlenecks; the first one changes width and applies the stride."""

    def __init__(self, in_channels: int, out_channels: int, depth: int, stride: int):
        super().__init__()
        blocks = [Bottleneck(in_channels, out_channels, stride)]
        blocks += [Bottleneck(out_channels, out_channels) for _ in range(depth - 1)]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class ResNetV2Backbone(nn.Module):
    """BiT ResNet-50 trunk without pre-activation, as the stem of the ViT-hybrid.

    Stem: 7x7/2 standardised conv (64) + GroupNorm + ReLU + 3x3/2 max pool, all 'SAME' padded;
    then stages of (3, 4, 9) bottlenecks with widths (256, 512, 1024) at strides (4, 8, 16).
    ``forward`` maps x (B, 3, H, W) to the list of stage outputs
    [(B, 256, H/4, W/4), (B, 512, H/8, W/8), (B, 1024, H/16, W/16)] (ceil for odd sizes).
    """

    def __init__(
        self,
        layers: tuple[int, ...] = (3, 4, 9),
        channels: tuple[int, ...] = (256, 512, 1024),
        stem_channels: int = 64,
    ):
        super().__init__()
        self.stem = nn.Sequential()
        self.stem.add_module("conv", StdConv2dSame(3, stem_channels, 7, stride=2))
        self.stem.add_module("norm", GroupNormAct(stem_channels))
        self.stem.add_module("pool", MaxPool2dSame(3, 2))
        self.stages = nn.Sequential()
        in_channels = stem_channels
        for i, (depth, width) in enumerate(zip(layers, channels, strict=True)):
            stride = 1 if i == 0 else 2
            self.stages.add_module(str(i), ResNetStage(in_channels, width, depth, stride))
            in_channels = width
        self.num_features = in_channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens: (B, 3, H, W) -> (B, D, H/p, W/p) via ``proj``."""

    def __init__(self, embed_dim: int, patch_size: int = 16, in_channels: int = 3):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return the token map (B, D, h, w) and the (empty) list of CNN stage features."""
        return self.proj(x), []


class HybridEmbed(nn.Module):
    """CNN trunk then a 1x1 ``proj`` of its last (stride-16) feature map to the embedding width."""

    def __init__(self, backbone: ResNetV2Backbone, embed_dim: int):
        super().__init__()
        self.backbone = backbone
        self.proj = nn.Conv2d(backbone.num_features, embed_dim, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return the token map (B, D, h, w) and every stage output of the trunk."""
        features = self.backbone(x)
        return self.proj(features[-1]), features


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection and an output ``proj``."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
        x = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(head_dim)) v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """fc1 -> GELU (exact) -> fc2."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm block: x + attn(norm1(x)), then x + mlp(norm2(x)); LayerNorm eps 1e-6."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def resize_pos_embed(pos_embed: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """Resize (1, 1 + g*g, D) position embeddings to a (grid_h, grid_w) token grid.

    The class-token embedding is kept; the square g x g grid is resized bilinearly
    (align_corners=False, no antialiasing), as the official DPT ``_resize_pos_embed``; the
    native grid comes back unchanged.
    Returns (1, 1 + grid_h * grid_w, D).
    """
    cls_pos, grid = pos_embed[:, :1], pos_embed[:, 1:]
    side = round(grid.shape[1] ** 0.5)
    # Resizing to the same grid is exact (sample positions fall on the cells), so there is no
    # shortcut branch: the graph stays free of shape-dependent control flow for export.
    grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(grid_h, grid_w), mode="bilinear", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)
    return torch.cat([cls_pos, grid], dim=1)


class VisionTransformer(nn.Module):
    """ViT with a class token, optionally with a CNN (hybrid) patch embedding.

    Parameters: ``cls_token`` (1, 1, D), ``pos_embed`` (1, 1 + (img_size/16)^2, D),
    ``patch_embed.*``, ``blocks.N.*``, final ``norm`` and the ImageNet classifier ``head``
    (D -> 1000). ``norm`` and ``head`` are not used by :meth:`forward_features`; they are kept
    so checkpoints of the official layout load strictly.
    """

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        num_heads: int,
        img_size: int = 384,
        patch_size: int = 16,
        mlp_ratio: float = 4.0,
        num_classes: int = 1000,
        hybrid_backbone: ResNetV2Backbone | None = None,
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.patch_size = patch_size
        if hybrid_backbone is None:
            self.patch_embed: nn.Module = PatchEmbed(embed_dim, patch_size)
        else:
            self.patch_embed = HybridEmbed(hybrid_backbone, embed_dim)
        num_patches = (img_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Random init of the embeddings: truncated normal, std 0.02.

        Linear layers keep PyTorch's default init (uniform, std 1/sqrt(3 fan_in), about 0.018
        for width 1024); a second pass over the 300 M weights of ViT-L would double the
        construction time. Useful encoder weights come from a file.
        """
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward_features(
        self, x: torch.Tensor, block_indices: list[int]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Run the encoder on x (B, 3, H, W), H and W multiples of the patch size.

        Returns (tokens, stem_features): ``tokens[i]`` is the output of block
        ``block_indices[i]``, (B, 1 + H/16 * W/16, D) with the class token first (blocks after
        the last requested one are skipped); ``stem_features`` are the hybrid trunk's stage
        outputs (empty for plain patch embedding).
        """
        grid_h, grid_w = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        tokens, stem_features = self.patch_embed(x)
        tokens = tokens.flatten(2).transpose(1, 2)  # (B, N, D)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1)
        tokens = tokens + resize_pos_embed(self.pos_embed, grid_h, grid_w)
        wanted = {index: position for position, index in enumerate(block_indices)}
        outputs: list[torch.Tensor | None] = [None] * len(block_indices)
        for index, block in enumerate(self.blocks[: max(block_indices) + 1]):
            tokens = block(tokens)
            if index in wanted:
                outputs[wanted[index]] = tokens
        return outputs, stem_features  # type: ignore[return-value]


def vit_large_patch16_384() -> VisionTransformer:
    """ViT-L/16 at 384 px: width 1024, 24 blocks, 16 heads (~304.7 M parameters with head)."""
    return VisionTransformer(embed_dim=1024, depth=24, num_heads=16)


def vit_base_resnet50_384() -> VisionTransformer:
    """ViT-B/16 (width 768, 12 blocks, 12 heads) on a BiT ResNet-50 stem (3 stages), 384 px."""
    return VisionTransformer(
        embed_dim=768, depth=12, num_heads=12, hybrid_backbone=ResNetV2Backbone()
    )

"""DPT-Large / DPT-Hybrid: construction, forward shapes, official key layout and strict loading.

The official key layout below is written out from the module definitions the official DPT /
MiDaS v3 checkpoints were saved from (timm 0.4.5 VisionTransformer and ResNetV2, DPT's
``_make_vit_b16_backbone`` / ``_make_vit_b_rn50_backbone``, ``_make_scratch``,
``FeatureFusionBlock_custom`` and the depth head), independently of mixdepth's modules.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mixdepth.errors import FileFormatError
from mixdepth.models import create, default_config, guess_architecture, load_weights
from mixdepth.models.checkpoints import read_state_dict
from mixdepth.models.dpt import Reassemble
from mixdepth.models.registry import create_on_meta
from mixdepth.models.vit import (
    Attention,
    MaxPool2dSame,
    StdConv2dSame,
    resize_pos_embed,
    same_padding,
)

# ---------------------------------------------------------------------------------------------
# The official key layout, {key: shape}.


def _official_vit(dim: int, depth: int, hybrid: bool) -> dict[str, tuple[int, ...]]:
    p = "pretrained.model."
    keys: dict[str, tuple[int, ...]] = {
        p + "cls_token": (1, 1, dim),
        p + "pos_embed": (1, 577, dim),
    }
    if hybrid:
        bb = p + "patch_embed.backbone."
        keys[bb + "stem.conv.weight"] = (64, 3, 7, 7)
        keys[bb + "stem.norm.weight"] = keys[bb + "stem.norm.bias"] = (64,)
        in_ch = 64
        for s, (n_blocks, out) in enumerate(zip((3, 4, 9), (256, 512, 1024), strict=True)):
            mid = out // 4
            for b in range(n_blocks):
                q = f"{bb}stages.{s}.blocks.{b}."
                cin = in_ch if b == 0 else out
                if b == 0:
                    keys[q + "downsample.conv.weight"] = (out, cin, 1, 1)
                    keys[q + "downsample.norm.weight"] = keys[q + "downsample.norm.bias"] = (out,)
                keys[q + "conv1.weight"] = (mid, cin, 1, 1)
                keys[q + "conv2.weight"] = (mid, mid, 3, 3)
                keys[q + "conv3.weight"] = (out, mid, 1, 1)
                for norm, ch in (("norm1", mid), ("norm2", mid), ("norm3", out)):
                    keys[f"{q}{norm}.weight"] = keys[f"{q}{norm}.bias"] = (ch,)
            in_ch = out
        keys[p + "patch_embed.proj.weight"] = (dim, 1024, 1, 1)
    else:
        keys[p + "patch_embed.proj.weight"] = (dim, 3, 16, 16)
    keys[p + "patch_embed.proj.bias"] = (dim,)
    for i in range(depth):
        q = f"{p}blocks.{i}."
        for norm in ("norm1", "norm2"):
            keys[f"{q}{norm}.weight"] = keys[f"{q}{norm}.bias"] = (dim,)
        keys[q + "attn.qkv.weight"], keys[q + "attn.qkv.bias"] = (3 * dim, dim), (3 * dim,)
        keys[q + "attn.proj.weight"], keys[q + "attn.proj.bias"] = (dim, dim), (dim,)
        keys[q + "mlp.fc1.weight"], keys[q + "mlp.fc1.bias"] = (4 * dim, dim), (4 * dim,)
        keys[q + "mlp.fc2.weight"], keys[q + "mlp.fc2.bias"] = (dim, 4 * dim), (dim,)
    keys[p + "norm.weight"] = keys[p + "norm.bias"] = (dim,)
    keys[p + "head.weight"], keys[p + "head.bias"] = (1000, dim), (1000,)
    return keys


def official_dpt_keys(name: str) -> dict[str, tuple[int, ...]]:
    """Every key of an official dpt_large_384.pt / dpt_hybrid_384.pt with its shape."""
    hybrid = name == "dpt_hybrid"
    dim, depth = (768, 12) if hybrid else (1024, 24)
    channels = (256, 512, 768, 768) if hybrid else (256, 512, 1024, 1024)
    keys = _official_vit(dim, depth, hybrid)
    for k in (3, 4) if hybrid else (1, 2, 3, 4):
        c, q = channels[k - 1], f"pretrained.act_postprocess{k}."
        keys[q + "0.project.0.weight"], keys[q + "0.project.0.bias"] = (dim, 2 * dim), (dim,)
        keys[q + "3.weight"], keys[q + "3.bias"] = (c, dim, 1, 1), (c,)
        resample = {1: (c, c, 4, 4), 2: (c, c, 2, 2), 4: (c, c, 3, 3)}.get(k)
        if resample:
            keys[q + "4.weight"], keys[q + "4.bias"] = resample, (c,)
    for k, c in enumerate(channels, start=1):
        keys[f"scratch.layer{k}_rn.weight"] = (256, c, 3, 3)
        q = f"scratch.refinenet{k}."
        for unit in ("resConfUnit1", "resConfUnit2"):
            for conv in ("conv1", "conv2"):
                keys[f"{q}{unit}.{conv}.weight"] = (256, 256, 3, 3)
                keys[f"{q}{unit}.{conv}.bias"] = (256,)
        keys[q + "out_conv.weight"], keys[q + "out_conv.bias"] = (256, 256, 1, 1), (256,)
    head = {0: (128, 256, 3, 3), 2: (32, 128, 3, 3), 4: (1, 32, 1, 1)}
    for i, shape in head.items():
        keys[f"scratch.output_conv.{i}.weight"] = shape
        keys[f"scratch.output_conv.{i}.bias"] = (shape[0],)
    return keys


# A few keys spelled out literally, as they appear in the official files.
REPRESENTATIVE = {
    "dpt_large": {
        "pretrained.model.pos_embed": (1, 577, 1024),
        "pretrained.model.patch_embed.proj.weight": (1024, 3, 16, 16),
        "pretrained.model.blocks.23.attn.qkv.weight": (3072, 1024),
        "pretrained.model.blocks.0.mlp.fc2.weight": (1024, 4096),
        "pretrained.model.head.weight": (1000, 1024),
        "pretrained.act_postprocess1.0.project.0.weight": (1024, 2048),
        "pretrained.act_postprocess1.4.weight": (256, 256, 4, 4),
        "pretrained.act_postprocess2.4.weight": (512, 512, 2, 2),
        "pretrained.act_postprocess4.4.weight": (1024, 1024, 3, 3),
        "scratch.layer4_rn.weight": (256, 1024, 3, 3),
        "scratch.refinenet4.resConfUnit1.conv1.bias": (256,),
        "scratch.refinenet1.out_conv.weight": (256, 256, 1, 1),
        "scratch.output_conv.4.weight": (1, 32, 1, 1),
    },
    "dpt_hybrid": {
        "pretrained.model.patch_embed.backbone.stem.conv.weight": (64, 3, 7, 7),
        "pretrained.model.patch_embed.backbone.stages.0.blocks.0.downsample.conv.weight": (
            256,
            64,
            1,
            1,
        ),
        "pretrained.model.patch_embed.backbone.stages.2.blocks.8.conv3.weight": (1024, 256, 1, 1),
        "pretrained.model.patch_embed.backbone.stages.1.blocks.0.norm2.bias": (128,),
        "pretrained.model.patch_embed.proj.weight": (768, 1024, 1, 1),
        "pretrained.model.blocks.11.attn.proj.weight": (768, 768),
        "pretrained.act_postprocess3.0.project.0.weight": (768, 1536),
        "pretrained.act_postprocess4.4.weight": (768, 768, 3, 3),
        "scratch.layer1_rn.weight": (256, 256, 3, 3),
        "scratch.layer3_rn.weight": (256, 768, 3, 3),
        "scratch.output_conv.0.weight": (128, 256, 3, 3),
    },
}

NAMES = ("dpt_large", "dpt_hybrid")


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _official_file(path, name: str) -> dict[str, float]:
    """Write an official-layout .pt whose tensor k is filled with a distinct small constant.

    Each tensor is a stride-0 view of one value, so even the 344 M-parameter layout is a
    file of a few hundred kilobytes. Returns {key: constant}.
    """
    keys = official_dpt_keys(name)
    values = {k: (i + 1) * 1e-4 for i, k in enumerate(keys)}
    state = {k: torch.full((1,), values[k]).expand(shape) for k, shape in keys.items()}
    torch.save(state, path)
    return values


# ---------------------------------------------------------------------------------------------
# Models (built once per module; the ViT-L one is 1.4 GB).


@pytest.fixture(scope="module")
def hybrid() -> torch.nn.Module:
    torch.manual_seed(0)
    return create("dpt_hybrid").eval()


@pytest.fixture(scope="module")
def large() -> torch.nn.Module:
    """Random dpt_large; test_official_file_strict_loads_into_dpt_large overwrites its weights
    with constants, so it runs last in this file."""
    torch.manual_seed(0)
    return create("dpt_large").eval()


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_is_exactly_the_official_layout(offline, name):
    mine = _shapes(create_on_meta(name))  # the same construction code, without allocation
    official = official_dpt_keys(name)
    assert sorted(set(official) - set(mine)) == []
    assert sorted(set(mine) - set(official)) == []
    assert {k: v for k, v in mine.items() if official[k] != v} == {}
    for key, shape in REPRESENTATIVE[name].items():
        assert mine[key] == shape, key


@pytest.mark.parametrize(
    ("name", "low", "high"), [("dpt_large", 340e6, 348e6), ("dpt_hybrid", 120e6, 126e6)]
)
def test_parameter_count(name, low, high):
    count = sum(p.numel() for p in create_on_meta(name).parameters())
    assert low < count < high


@pytest.mark.parametrize("name", NAMES)
def test_config_is_the_official_transform(name):
    config = default_config(name)
    assert config.input_size == 384
    assert config.resize_mode == "minimal"
    assert config.mean == config.std == (0.5, 0.5, 0.5)


def test_hybrid_forward_non_square(hybrid):
    x = torch.randn(2, 3, 64, 96)
    with torch.inference_mode():
        features = hybrid.pretrained(x)
        y = hybrid.scratch(features)  # = hybrid(x), without running the encoder twice
    assert y.shape == (2, 64, 96)
    assert torch.isfinite(y).all() and (y >= 0).all()
    assert y.std() > 0
    assert [tuple(f.shape) for f in features] == [
        (2, 256, 16, 24),
        (2, 512, 8, 12),
        (2, 768, 4, 6),
        (2, 768, 2, 3),
    ]


def test_non_negative_false_drops_only_the_final_relu(hybrid):
    free = create_on_meta("dpt_hybrid", non_negative=False).to_empty(device="cpu").eval()
    free.load_state_dict(hybrid.state_dict())
    x = torch.randn(1, 3, 32, 64)
    with torch.inference_mode():
        y_free, y = free(x), hybrid(x)
    assert y_free.shape == (1, 32, 64)
    assert (y_free < 0).any()
    assert torch.allclose(y_free.clamp(min=0), y, atol=1e-6)


def test_large_forward_non_square(large):
    x = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        features = large.pretrained(x)
        y = large.scratch(features)
    assert [tuple(f.shape) for f in features] == [
        (1, 256, 16, 24),
        (1, 512, 8, 12),
        (1, 1024, 4, 6),
        (1, 1024, 2, 3),
    ]
    assert y.shape == (1, 64, 96)
    assert torch.isfinite(y).all() and (y >= 0).all()


def test_official_file_loads_into_hybrid(offline, tmp_path):
    path = tmp_path / "dpt_hybrid_384.pt"
    values = _official_file(path, "dpt_hybrid")
    model = create_on_meta("dpt_hybrid").to_empty(device="cpu")
    load_weights(model, path)
    state = model.state_dict()
    for key in REPRESENTATIVE["dpt_hybrid"]:
        assert torch.all(state[key] == values[key]), key
    assert guess_architecture(read_state_dict(path)) == "dpt_hybrid"


@pytest.mark.parametrize("name", NAMES)
def test_wrong_files_fail_naming_the_keys(tmp_path, name):
    keys = official_dpt_keys(name)
    state = {k: torch.zeros(1).expand(shape) for k, shape in keys.items()}
    renamed = "pretrained.model.blocks.0.attn.qkv.weight"
    state["pretrained.model.blocks.0.attn.in_proj.weight"] = state.pop(renamed)
    del state["scratch.output_conv.4.bias"]
    state["scratch.layer1_rn.weight"] = torch.zeros(1).expand(256, 128, 3, 3)
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    with pytest.raises(FileFormatError) as info:
        load_weights(create_on_meta(name), path)
    message = str(info.value)
    assert str(path) in message
    assert renamed in message and "scratch.output_conv.4.bias" in message
    assert "attn.in_proj.weight" in message
    assert "scratch.layer1_rn.weight" in message


def test_hybrid_file_does_not_load_into_large(tmp_path):
    path = tmp_path / "hybrid.pt"
    _official_file(path, "dpt_hybrid")
    with pytest.raises(FileFormatError, match="missing key"):
        load_weights(create_on_meta("dpt_large"), path)


# ---------------------------------------------------------------------------------------------
# Encoder pieces.


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 100), kernel=st.sampled_from([1, 3, 7]), stride=st.sampled_from([1, 2]))
def test_same_padding_is_tensorflow_same(size, kernel, stride):
    before, after = same_padding(size, kernel, stride)
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    assert (before, after) == (total // 2, total - total // 2)
    assert (size + before + after - kernel) // stride + 1 == math.ceil(size / stride)


def test_std_conv_standardises_weights_and_pads_bottom_right():
    torch.manual_seed(0)
    conv = StdConv2dSame(3, 4, 3, stride=2)
    x = torch.randn(1, 3, 8, 10)
    w = conv.weight.detach()
    standardised = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (
        w.var(dim=(1, 2, 3), unbiased=False, keepdim=True) + 1e-8
    ).sqrt()
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), standardised, stride=2)
    assert torch.allclose(conv(x), expected, atol=1e-5)
    assert conv(x).shape == (1, 4, 4, 5)
    # weight standardisation: per-filter affine changes of the weights do not change the output
    with torch.no_grad():
        conv.weight.mul_(torch.tensor([3.0, 0.5, 2.0, 7.0]).view(4, 1, 1, 1)).add_(0.25)
    assert torch.allclose(conv(x), expected, rtol=1e-3, atol=1e-3)


def test_std_conv_gradients():
    torch.manual_seed(0)
    conv = StdConv2dSame(2, 3, 3, stride=2).double()
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    weight = conv.weight.detach().clone().requires_grad_(True)

    def run(inputs, w):
        return torch.func.functional_call(conv, {"weight": w}, (inputs,))

    assert torch.autograd.gradcheck(run, (x, weight))


def test_std_conv_cache_follows_weight_changes():
    torch.manual_seed(0)
    conv = StdConv2dSame(3, 4, 3)
    x = torch.randn(1, 3, 6, 6)
    with torch.no_grad():
        before = conv(x)
        assert torch.equal(conv(x), before)  # served from the cache
        conv.weight[0].neg_()  # in-place change: the cache must not be reused
        after = conv(x)
    assert torch.allclose(after[0, 0], -before[0, 0], atol=1e-5)
    assert torch.allclose(after[0, 1:], before[0, 1:])
    with torch.no_grad():
        conv.weight = torch.nn.Parameter(torch.randn_like(conv.weight))  # a new tensor
        fresh = conv(x)
    conv.weight.grad = None
    out = conv(x)  # gradients on: recomputed, differentiable
    assert torch.allclose(out, fresh)
    out.sum().backward()
    assert conv.weight.grad is not None


def test_max_pool_same_never_picks_padding():
    x = -torch.rand(1, 2, 9, 6) - 1.0  # all values below -1; zero padding would win
    y = MaxPool2dSame(3, 2)(x)
    assert y.shape == (1, 2, 5, 3)
    assert (y < -1).all()
    # rows: 2 padded cells split (1, 1); columns: 1 padded cell, at the right
    assert torch.equal(y[..., 0, 0], x[..., :2, :3].amax(dim=(-2, -1)))
    assert torch.equal(y[..., 4, 2], x[..., 7:, 4:].amax(dim=(-2, -1)))


def test_resize_pos_embed():
    torch.manual_seed(0)
    pos = torch.randn(1, 1 + 24 * 24, 8)
    assert torch.equal(resize_pos_embed(pos, 24, 24), pos)
    resized = resize_pos_embed(pos, 4, 6)
    assert resized.shape == (1, 1 + 24, 8)
    assert torch.equal(resized[:, 0], pos[:, 0])  # class token untouched
    constant = torch.ones(1, 1 + 24 * 24, 8)
    assert torch.allclose(resize_pos_embed(constant, 5, 7), torch.ones(1, 1 + 35, 8))


def test_attention_matches_explicit_softmax_with_official_qkv_layout():
    torch.manual_seed(0)
    attn = Attention(16, num_heads=4)
    x = torch.randn(2, 5, 16)
    qkv = attn.qkv(x).reshape(2, 5, 3, 4, 4).permute(2, 0, 3, 1, 4)  # (3, B, heads, N, hd)
    q, k, v = qkv[0], qkv[1], qkv[2]
    weights = (q @ k.transpose(-2, -1) * 4**-0.5).softmax(dim=-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(2, 5, 16))
    assert torch.allclose(attn(x), expected, atol=1e-5)


def test_reassemble_puts_tokens_row_major_on_the_grid():
    reassemble = Reassemble(dim=4, channels=4)
    reassemble[0] = torch.nn.Identity()
    with torch.no_grad():
        reassemble[3].weight.copy_(torch.eye(4).view(4, 4, 1, 1))
        reassemble[3].bias.zero_()
    tokens = torch.randn(1, 2 * 3, 4)  # readout replaced by identity: patch tokens only
    grid = reassemble(tokens, (2, 3))
    assert grid.shape == (1, 4, 2, 3)
    for y in range(2):
        for x in range(3):
            assert torch.allclose(grid[0, :, y, x], tokens[0, y * 3 + x])


# ---------------------------------------------------------------------------------------------
# Last: overwrites the weights of the shared dpt_large fixture.


def test_official_file_strict_loads_into_dpt_large(tmp_path, large):
    path = tmp_path / "dpt_large_384.pt"
    values = _official_file(path, "dpt_large")
    assert path.stat().st_size < 2_000_000
    load_weights(large, path)
    state = large.state_dict()
    for key in REPRESENTATIVE["dpt_large"]:
        assert torch.all(state[key] == values[key]), key
    assert guess_architecture(read_state_dict(path)) == "dpt_large"

"""Decoder blocks and encoders: shapes, padding rules, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mixdepth.models.blocks import (
    FeatureFusionBlock,
    FusionDecoder,
    ResidualConvUnit,
    _bilinear_transposed_conv,
    make_head,
)
from mixdepth.models.efficientnet import EfficientNetLiteEncoder, SamePadConv2d, make_divisible
from mixdepth.models.resnext import ResNeXtEncoder
from mixdepth.models.tiny import TinyEncoder


@settings(max_examples=25, deadline=None)
@given(
    size=st.tuples(st.integers(5, 40), st.integers(5, 40)),
    kernel=st.sampled_from([3, 5]),
    stride=st.sampled_from([1, 2]),
)
def test_same_padding_output_size(size, kernel, stride):
    conv = SamePadConv2d(1, 1, kernel, stride)
    out = conv(torch.zeros(1, 1, *size))
    assert out.shape[-2:] == tuple(-(-s // stride) for s in size)


@settings(max_examples=30, deadline=None)
@given(
    size=st.tuples(st.integers(1, 21), st.integers(1, 21)),
    kernel=st.sampled_from([1, 3, 5]),
    stride=st.sampled_from([1, 2, 3]),
    groups=st.sampled_from([1, 4]),
)
def test_padding_the_kernel_gives_the_same_output_as_padding_the_input(
        size, kernel, stride, groups):
    torch.manual_seed(0)
    conv = SamePadConv2d(4, 8, kernel, stride, groups).double()
    x = torch.randn(2, 4, *size, dtype=torch.float64)
    with torch.no_grad():
        reference = conv(x)
        conv.pad_into_kernel = True
        padded_kernel = conv(x)
    assert padded_kernel.shape == reference.shape
    torch.testing.assert_close(padded_kernel, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", [3, 5])
def test_same_padding_puts_the_extra_pixel_bottom_right(kernel):
    """TF "same" with stride 2 on an even size pads (k-2)//2 before: with a kernel that picks
    tap ((k-2)//2, (k-2)//2), output (i, j) is input (2i, 2j)."""
    conv = SamePadConv2d(1, 1, kernel, 2)
    tap = (kernel - 2) // 2
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, tap, tap] = 1.0
    x = torch.randn(1, 1, 12, 16)
    assert torch.equal(conv(x), x[..., ::2, ::2])


def test_make_divisible_gives_lite3_channels():
    widths = [make_divisible(c * 1.2) for c in (16, 24, 40, 80, 112, 192, 320)]
    assert widths == [24, 32, 48, 96, 136, 232, 384]


def test_encoders_strides_and_channels():
    x = torch.randn(1, 3, 64, 96)
    encoders = [
        EfficientNetLiteEncoder(3),
        TinyEncoder(),
        ResNeXtEncoder(blocks=(1, 1, 1, 1), groups=4, width_per_group=4),
    ]
    with torch.no_grad():
        for enc in encoders:
            feats = enc.eval()(x)
            assert [f.shape[-2:] for f in feats] == [(64 // s, 96 // s) for s in (4, 8, 16, 32)]
            assert tuple(f.shape[1] for f in feats) == enc.out_channels
    assert encoders[0].out_channels == (32, 48, 136, 384)


def test_residual_unit_relu_skip():
    x = torch.randn(1, 4, 5, 5)
    for relu_skip, expected in ((False, x), (True, F.relu(x))):
        unit = ResidualConvUnit(4, relu_skip=relu_skip)
        with torch.no_grad():
            unit.conv2.weight.zero_()
            unit.conv2.bias.zero_()
            assert torch.equal(unit(x), expected)


@pytest.mark.parametrize(
    "options",
    [dict(), dict(bn=True), dict(relu_skip=True, out_conv=False), dict(expand=True),
     dict(align_corners=False), dict(deconv=True)],
)
def test_fusion_block_gradcheck(options):
    torch.manual_seed(0)
    block = FeatureFusionBlock(2, **options).double().eval()
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    skip = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    out = block(x, skip)
    assert out.shape == (1, 1 if options.get("expand") else 2, 6, 8)
    assert torch.autograd.gradcheck(lambda a, b: block(a, b), (x, skip))


def test_fusion_block_size_argument():
    block = FeatureFusionBlock(3)
    assert block(torch.randn(1, 3, 4, 4), size=(7, 9)).shape == (1, 3, 7, 9)
    assert block(torch.randn(1, 3, 4, 4)).shape == (1, 3, 8, 8)
    with pytest.raises(ValueError, match="expand"):
        FeatureFusionBlock(4, expand=True, out_conv=False)


def test_deconv_starts_as_bilinear_upsampling():
    x = torch.randn(1, 3, 6, 7)
    up = _bilinear_transposed_conv(3)(x)
    ref = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert up.shape == ref.shape
    assert torch.allclose(up[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-6)


def test_decoder_widths_and_output():
    dec = FusionDecoder((8, 16, 24, 32), 4, expand=True, head_hidden=8)
    assert [getattr(dec, f"layer{k}_rn").out_channels for k in (1, 2, 3, 4)] == [4, 8, 16, 32]
    assert [getattr(dec, f"refinenet{k}").out_features for k in (4, 3, 2, 1)] == [16, 8, 4, 4]
    feats = [torch.randn(2, c, 16 // 2**i, 24 // 2**i) for i, c in enumerate((8, 16, 24, 32))]
    out = dec(feats)
    assert out.shape == (2, 64, 96) and (out >= 0).all()
    with pytest.raises(ValueError, match="4 encoder levels"):
        FusionDecoder((8, 16, 24), 4)


def test_head_layout():
    head = make_head(64, non_negative=False)
    assert [type(m).__name__ for m in head] == [
        "Conv2d", "Interpolate", "Conv2d", "ReLU", "Conv2d", "Identity"
    ]
    assert head[0].out_channels == 32 and head[2].out_channels == 32
    assert head(torch.randn(1, 64, 4, 4)).shape == (1, 1, 8, 8)


def test_softplus_head_keeps_a_gradient_where_relu_has_none():
    from mixdepth.losses import ordinal_ranking_loss

    torch.manual_seed(0)
    relu_head = make_head(8, hidden=4)
    soft_head = make_head(8, hidden=4, activation="softplus")
    soft_head.load_state_dict(relu_head.state_dict())
    with torch.no_grad():  # a strongly negative final bias: every ReLU output is 0
        relu_head[4].bias.fill_(-50.0)
        soft_head[4].bias.fill_(-50.0)
    x = torch.randn(1, 8, 4, 4)
    pairs = [torch.tensor([[0, 0, 7, 7, 1]])]
    grads = []
    for head in (relu_head, soft_head):
        out = head(x)[:, 0]
        assert (out >= 0).all()
        ordinal_ranking_loss(out, pairs, normalize=False).backward()
        grads.append(head[4].bias.grad.abs().item())
    assert grads[0] == 0.0 and grads[1] > 0.0
    assert (soft_head(x) > 0).all()
    with pytest.raises(Exception, match="head activation must be one of relu, softplus"):
        make_head(8, activation="gelu")

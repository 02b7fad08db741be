import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mixdepth.losses import gradient_matching


def row(values, mask=None):
    values = torch.tensor([[values]], dtype=torch.float64)
    mask = torch.ones_like(values, dtype=torch.bool) if mask is None else torch.tensor([[mask]])
    return values, torch.zeros_like(values), mask


def test_hand_computed_single_scale():
    pred, target, mask = row([0.0, 1.0, 3.0])
    # |1 - 0| + |3 - 1| over 3 valid pixels
    assert gradient_matching(pred, target, mask, scales=1).item() == pytest.approx(1.0)


def test_a_difference_counts_only_when_both_pixels_are_valid():
    pred, target, mask = row([0.0, 1.0, 3.0, 10.0], [True, True, False, True])
    # only |1 - 0| is a valid difference; 3 valid pixels
    assert gradient_matching(pred, target, mask, scales=1).item() == pytest.approx(1.0 / 3)


def test_coarser_scales_take_every_second_pixel():
    pred, target, mask = row([0.0, 1.0, 3.0, 7.0])
    # scale 0: (1 + 2 + 4) / 4; scale 1 sees [0, 3]: 3 / 2; scale 2 sees [0]: nothing
    expected = 7 / 4 + 3 / 2
    assert gradient_matching(pred, target, mask, scales=2).item() == pytest.approx(expected)
    assert gradient_matching(pred, target, mask, scales=3).item() == pytest.approx(expected)
    # the subsampled mask follows the same pixels: hiding pixel 2 removes the scale-1 term
    pred, target, mask = row([0.0, 1.0, 3.0, 7.0], [True, True, False, True])
    assert gradient_matching(pred, target, mask, scales=2).item() == pytest.approx(1 / 3)


def test_vertical_differences_and_batch_normalisation():
    pred = torch.tensor([[[0.0, 0.0], [2.0, 2.0]], [[1.0, 1.0], [1.0, 1.0]]], dtype=torch.float64)
    target = torch.zeros_like(pred)
    mask = torch.ones_like(pred, dtype=torch.bool)
    # image 0: two vertical differences of 2 -> 4; image 1: flat -> 0; 8 valid pixels in all
    assert gradient_matching(pred, target, mask, scales=1).item() == pytest.approx(4 / 8)
    assert gradient_matching(pred, target, mask, 1, "image").item() == pytest.approx(0.5)
    assert gradient_matching(pred, target, mask, 1, "none").tolist() == [1.0, 0.0]


def numpy_gradient_matching(residual, mask, scales):
    total = 0.0
    for k in range(scales):
        r = residual[:, :: 2**k, :: 2**k]
        m = mask[:, :: 2**k, :: 2**k]
        gx = np.abs(np.diff(r, axis=2)) * (m[:, :, 1:] & m[:, :, :-1])
        gy = np.abs(np.diff(r, axis=1)) * (m[:, 1:, :] & m[:, :-1, :])
        total += (gx.sum() + gy.sum()) / max(m.sum(), 1)
    return total


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    height=st.integers(1, 20),
    width=st.integers(1, 20),
    scales=st.integers(1, 4),
)
def test_matches_a_plain_numpy_implementation(seed, height, width, scales):
    rng = np.random.default_rng(seed)
    pred = rng.normal(size=(2, height, width))
    target = rng.normal(size=(2, height, width))
    mask = rng.uniform(size=(2, height, width)) < 0.7
    target_with_holes = np.where(mask, target, np.nan)
    value = gradient_matching(
        torch.tensor(pred), torch.tensor(target_with_holes), torch.tensor(mask), scales
    )
    residual = np.where(mask, pred - target, 0.0)
    assert value.item() == pytest.approx(numpy_gradient_matching(residual, mask, scales))


def test_gradcheck_and_finite_gradients_with_holes():
    rng = np.random.default_rng(0)
    pred = torch.tensor(rng.normal(size=(2, 6, 5)), requires_grad=True)
    target = torch.tensor(rng.normal(size=(2, 6, 5)), requires_grad=True)
    mask = torch.tensor(rng.uniform(size=(2, 6, 5)) < 0.7)
    assert torch.autograd.gradcheck(
        lambda p, t: gradient_matching(p, t, mask, scales=3), (pred, target), eps=1e-6
    )
    empty = torch.zeros_like(mask)
    value = gradient_matching(pred, target, empty)
    value.backward()
    assert value.item() == 0.0 and (pred.grad == 0).all()

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mixdepth.errors import MixdepthError
from mixdepth.losses import (
    mae_loss,
    mse_loss,
    ordinal_ranking_loss,
    shift_invariant_loss,
    silog_loss,
)

BASELINES = [mse_loss, mae_loss, silog_loss, shift_invariant_loss]


def random_batch(seed, batch=2, height=5, width=6):
    rng = np.random.default_rng(seed)
    pred = torch.tensor(rng.uniform(0.1, 1.0, (batch, height, width)))
    target = torch.tensor(rng.uniform(0.1, 2.0, (batch, height, width)))
    mask = torch.tensor(rng.uniform(size=(batch, height, width)) < 0.7)
    mask[:, 0, :2] = True
    return pred, target, mask


def test_plain_losses_match_numpy():
    pred, target, mask = random_batch(0)
    p, t, m = pred.numpy(), target.numpy(), mask.numpy()
    assert mse_loss(pred, target, mask).item() == pytest.approx(np.mean((p - t)[m] ** 2))
    assert mae_loss(pred, target, mask).item() == pytest.approx(np.mean(np.abs(p - t)[m]))
    per_image = [np.mean(np.abs(p[n] - t[n])[m[n]]) for n in range(2)]
    assert mae_loss(pred, target, mask, "image").item() == pytest.approx(np.mean(per_image))


def test_silog_matches_eigen_formula_and_is_scale_invariant_at_full_focus():
    pred, target, mask = random_batch(1, batch=1)
    g = np.log(pred.numpy()[mask.numpy()]) - np.log(target.numpy()[mask.numpy()])
    expected = np.mean(g**2) - 0.5 * np.mean(g) ** 2
    assert silog_loss(pred, target, mask).item() == pytest.approx(expected)
    full = silog_loss(pred, target, mask, variance_focus=1.0)
    assert silog_loss(7.0 * pred, target, mask, variance_focus=1.0).item() == pytest.approx(
        full.item()
    )
    assert silog_loss(7.0 * pred, target, mask).item() != pytest.approx(
        silog_loss(pred, target, mask).item()
    )
    with pytest.raises(MixdepthError, match="variance_focus"):
        silog_loss(pred, target, mask, variance_focus=2.0)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shift=st.floats(-10, 10))
def test_shift_invariant_loss_is_half_the_residual_variance_and_ignores_shifts(seed, shift):
    pred, target, mask = random_batch(seed)
    value = shift_invariant_loss(pred, target, mask, reduction="none")
    for n in range(2):
        residual = (pred[n] - target[n])[mask[n]].numpy()
        assert value[n].item() == pytest.approx(0.5 * np.var(residual), abs=1e-12)
    moved = shift_invariant_loss(pred + shift, target, mask, reduction="none")
    torch.testing.assert_close(moved, value, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("loss", BASELINES)
def test_baselines_gradcheck(loss):
    pred, target, mask = random_batch(2)
    pred.requires_grad_(True)
    target.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, t: loss(p, t, mask), (pred, target), eps=1e-6)


@pytest.mark.parametrize("loss", BASELINES)
@pytest.mark.parametrize("reduction", ["batch", "image", "none"])
def test_baselines_degenerate_inputs_are_finite(loss, reduction):
    pred = torch.rand(4, 3, 3, dtype=torch.float64)
    pred[1] = 0.0  # dead ReLU: the log loss must stay finite
    pred.requires_grad_(True)
    target = torch.rand(4, 3, 3, dtype=torch.float64)
    mask = torch.ones(4, 3, 3, dtype=torch.bool)
    mask[0] = False
    target[0] = float("nan")
    mask[2] = False
    mask[2, 1, 1] = True
    mask[3, 0] = False
    target[3, 0] = float("inf")
    value = loss(pred, target, mask, reduction=reduction)
    assert torch.isfinite(value).all()
    value.sum().backward()
    assert torch.isfinite(pred.grad).all()
    assert (pred.grad[~mask] == 0).all()


@pytest.mark.parametrize("loss", BASELINES)
def test_baselines_ignore_masked_pixels(loss):
    pred, target, mask = random_batch(3)
    other_pred = torch.where(mask, pred, torch.full_like(pred, 123.0))
    other_target = torch.where(mask, target, torch.full_like(target, float("nan")))
    assert loss(other_pred, other_target, mask).item() == pytest.approx(
        loss(pred, target, mask).item()
    )


def test_ordinal_ranking_loss_hand_computed():
    pred = torch.tensor([[[2.0, 1.0], [0.0, 5.0]]], requires_grad=True)
    closer = [torch.tensor([[0, 0, 0, 1, 1]])]  # a = 2.0 is closer than b = 1.0: agrees
    further = [torch.tensor([[0, 0, 0, 1, -1]])]
    raw = {"normalize": False}
    assert ordinal_ranking_loss(pred, closer, **raw).item() == pytest.approx(
        math.log1p(math.exp(-1)))
    assert ordinal_ranking_loss(pred, further, **raw).item() == pytest.approx(
        math.log1p(math.exp(1)))
    both = [torch.tensor([[0, 0, 0, 1, 1], [1, 0, 1, 1, -1]])]
    value = ordinal_ranking_loss(pred, both, **raw)
    expected = (math.log1p(math.exp(-1)) + math.log1p(math.exp(-5))) / 2
    assert value.item() == pytest.approx(expected)
    value.backward()
    assert pred.grad[0, 0, 0] < 0 and pred.grad[0, 1, 1] < 0  # pushes the closer points up


def test_ordinal_ranking_loss_reductions_and_empty_images():
    pred = torch.randn(3, 4, 4, dtype=torch.float64)
    pairs = [
        torch.tensor([[0, 0, 1, 1, 1], [2, 2, 3, 3, -1], [0, 3, 3, 0, 1]]),
        torch.zeros((0, 5), dtype=torch.int64),
        torch.tensor([[1, 2, 2, 1, -1]]),
    ]
    per_image = ordinal_ranking_loss(pred, pairs, "none")
    assert per_image[1].item() == 0.0
    batch = ordinal_ranking_loss(pred, pairs, "batch")
    assert batch.item() == pytest.approx((3 * per_image[0] + per_image[2]).item() / 4)
    image = ordinal_ranking_loss(pred, pairs, "image")
    assert image.item() == pytest.approx((per_image[0] + per_image[2]).item() / 2)
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: ordinal_ranking_loss(p, pairs), (pred,))
    no_pairs = ordinal_ranking_loss(pred, [torch.zeros((0, 5), dtype=torch.int64)] * 3)
    no_pairs.backward()
    assert no_pairs.item() == 0.0 and (pred.grad == 0).all()


def test_ordinal_ranking_loss_is_finite_for_huge_differences():
    pred = torch.tensor([[[1e6, -1e6]]], requires_grad=True)
    value = ordinal_ranking_loss(pred, [torch.tensor([[0, 0, 0, 1, -1]])], normalize=False)
    value.backward()
    assert value.item() == pytest.approx(2e6) and torch.isfinite(pred.grad).all()


def test_normalized_ordinal_loss_hand_computed():
    # pixels 2, 1, 0, 5: lower median 1, MAD (1 + 0 + 1 + 4) / 4 = 1.5
    pred = torch.tensor([[[2.0, 1.0], [0.0, 5.0]]])
    pairs = [torch.tensor([[0, 0, 1, 1, 1]])]  # 2 closer than 5: disagrees
    expected = math.log1p(math.exp((5.0 - 2.0) / 1.5))
    assert ordinal_ranking_loss(pred, pairs).item() == pytest.approx(expected)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3), shift=st.floats(-1e3, 1e3))
def test_normalized_ordinal_loss_is_scale_and_shift_invariant(seed, scale, shift):
    generator = torch.Generator().manual_seed(seed)
    pred = torch.rand(2, 6, 5, generator=generator, dtype=torch.float64)
    pairs = [torch.tensor([[0, 0, 5, 4, 1], [2, 3, 1, 1, -1]]), torch.tensor([[4, 4, 0, 1, -1]])]
    for reduction in ("batch", "image", "none"):
        reference = ordinal_ranking_loss(pred, pairs, reduction)
        moved = ordinal_ranking_loss(scale * pred + shift, pairs, reduction)
        torch.testing.assert_close(moved, reference, rtol=1e-6, atol=1e-9)


def test_normalized_ordinal_loss_gradcheck_and_constant_prediction():
    pred = torch.rand(2, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    pairs = [torch.tensor([[0, 0, 3, 4, 1], [1, 2, 2, 1, -1]]), torch.tensor([[3, 3, 0, 0, 1]])]
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: ordinal_ranking_loss(p, pairs), (pred,))
    constant = torch.full((2, 4, 5), 7.0, requires_grad=True)
    value = ordinal_ranking_loss(constant, pairs)
    value.backward()
    assert value.item() == pytest.approx(math.log(2.0))
    assert (constant.grad == 0).all()
    single = torch.ones(1, 1, 1, requires_grad=True)  # a one-pixel image
    value = ordinal_ranking_loss(single, [torch.tensor([[0, 0, 0, 0, 1]])])
    value.backward()
    assert math.isfinite(value.item()) and torch.isfinite(single.grad).all()


def test_ordinal_ranking_loss_rejects_malformed_pairs():
    pred = torch.zeros(1, 3, 3)
    with pytest.raises(MixdepthError, match="outside"):
        ordinal_ranking_loss(pred, [torch.tensor([[0, 0, 3, 0, 1]])])
    with pytest.raises(MixdepthError, match="labels"):
        ordinal_ranking_loss(pred, [torch.tensor([[0, 0, 1, 0, 0]])])
    with pytest.raises(MixdepthError, match=r"\(N, 5\)"):
        ordinal_ranking_loss(pred, [torch.tensor([[0, 0, 1, 0]])])
    with pytest.raises(MixdepthError, match="batch of 1"):
        ordinal_ranking_loss(pred, [])

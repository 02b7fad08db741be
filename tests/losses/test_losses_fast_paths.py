"""The fast paths of the losses against the general ones and against plain formulas.

- kind "mse"/"mse-norm" with a target that needs no gradient runs `lstsq_loss_sums` (one
  autograd node); with `target.requires_grad` it runs the general path (`align_lstsq`,
  `aligned_residual`, `GradientSums`), which serves as the reference here.
- `select_rank` (sampled selection) is used for rows of at least 8 * SAMPLE_SIZE values, so
  images here are large enough to reach it.
"""

import pytest
import torch

from mixdepth.losses import ScaleShiftInvariantLoss, ssi_mse
from mixdepth.losses import alignment as alignment_module
from mixdepth.losses.alignment import masked_median, select_rank, select_valid_rank


def batch(seed, size=24, dtype=torch.float64, valid=0.6, offset=0.0):
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(4, size, size, generator=generator, dtype=dtype) + 0.1
    pred = 2.0 * target + 0.3 * torch.rand(4, size, size, generator=generator, dtype=dtype)
    mask = torch.rand(4, size, size, generator=generator) < valid
    mask[1] = False  # empty
    mask[2] = False
    mask[2, 3, 4] = True  # one pixel
    return pred + offset, target, mask


def loss_and_grad(loss, pred, target, mask, general, part="total"):
    pred = pred.clone().requires_grad_(True)
    target = target.clone().requires_grad_(general)
    total, parts = loss(pred, target, mask)
    value = {"total": total, **parts}[part]
    value.sum().backward()
    return value.detach(), pred.grad


@pytest.mark.parametrize("kind", ["mse", "mse-norm"])
@pytest.mark.parametrize("reduction", ["batch", "image", "none"])
@pytest.mark.parametrize("part", ["total", "data", "grad"])
def test_fused_least_squares_equals_the_general_path(kind, reduction, part):
    pred, target, mask = batch(0)
    target = target.masked_fill(~mask, float("nan"))  # never read
    loss = ScaleShiftInvariantLoss(kind=kind, reduction=reduction, scales=3)
    fused = loss_and_grad(loss, pred, target, mask, general=False, part=part)
    general = loss_and_grad(loss, pred, target, mask, general=True, part=part)
    torch.testing.assert_close(fused[0], general[0], rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(fused[1], general[1], rtol=1e-10, atol=1e-13)
    assert torch.isfinite(fused[1]).all()


@pytest.mark.parametrize("kind", ["mse", "mse-norm"])
def test_fused_least_squares_gradcheck(kind):
    pred, target, mask = batch(1, size=6)
    pred.requires_grad_(True)
    loss = ScaleShiftInvariantLoss(kind=kind, scales=2, reduction="image")
    assert torch.autograd.gradcheck(lambda p: loss(p, target, mask)[0], (pred,), eps=1e-6)
    assert torch.autograd.gradcheck(lambda p: ssi_mse(p, target, mask), (pred,), eps=1e-6)


@pytest.mark.parametrize("kind", ["mse", "trim"])
def test_empty_and_one_pixel_masks_give_finite_values_and_gradients(kind):
    pred, target, mask = batch(2, size=160, dtype=torch.float32)
    mask[0] = False
    loss = ScaleShiftInvariantLoss(kind=kind)
    for masks in (mask, torch.zeros_like(mask)):
        value, grad = loss_and_grad(loss, pred, target, masks, general=False)
        assert torch.isfinite(value).all() and torch.isfinite(grad).all()


@pytest.mark.parametrize("offset, spread", [(1e3, 1.0), (1e4, 10.0), (0.0, 1e-6)])
def test_badly_scaled_float32_inputs_keep_float64_accuracy(offset, spread):
    """A large common offset (or a tiny scale) in float32: the loss equals the float64 loss
    of the same float32 numbers to 1e-5, where plain float32 moment sums would not."""
    generator = torch.Generator().manual_seed(3)
    target = torch.rand(2, 64, 64, generator=generator) * spread + 0.1 * spread
    noise = torch.rand(2, 64, 64, generator=generator)
    pred = (offset + 3.0 * target + 0.2 * spread * noise).float()
    mask = torch.rand(2, 64, 64, generator=generator) < 0.7
    loss = ScaleShiftInvariantLoss(kind="mse")
    value32, grad32 = loss_and_grad(loss, pred, target, mask, general=False)
    value64, grad64 = loss_and_grad(loss, pred.double(), target.double(), mask, general=False)
    assert abs(value32.item() - value64.item()) <= 1e-5 * value64.item()
    assert (grad32.double() - grad64).abs().max() <= 1e-3 * grad64.abs().max()


@pytest.mark.parametrize("seed", range(4))
def test_sampled_selection_is_exact(seed):
    generator = torch.Generator().manual_seed(seed)
    values = torch.rand(5, 40_000, generator=generator)
    values[1] = torch.randint(0, 500, (40_000,), generator=generator).float()  # many ties
    values[2] = torch.linspace(0, 1, 40_000)  # sorted: a strided sample is biased
    values[3, ::2] = float("inf")
    rank = torch.randint(0, 20_000, (5,), generator=generator)
    rank[0] = 0
    index = select_rank(values, rank)
    assert index is not None
    expected = values.sort(dim=1).values.gather(1, rank[:, None])[:, 0]
    assert torch.equal(values.gather(1, index[:, None])[:, 0], expected)


def test_sampled_selection_declines_short_rows_and_nan():
    assert select_rank(torch.rand(2, 1000), torch.tensor([3, 4])) is None
    values = torch.rand(2, 40_000)
    values[0, 5] = float("nan")
    rank = torch.tensor([20_000, 20_000])
    index = select_rank(values, rank)
    assert index is None or torch.equal(index[1:], values[1:].kthvalue(20_001, 1).indices)


def test_median_of_large_images_by_both_selections(monkeypatch):
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(3, 150, 150, generator=generator)
    mask = torch.rand(3, 150, 150, generator=generator) < 0.4
    mask[2] = False
    mask[2, :2] = True
    expected = torch.stack([x[b][mask[b]].median() if mask[b].any() else x.new_zeros(())
                            for b in range(3)])
    fast = masked_median(x, mask)
    monkeypatch.setattr(alignment_module, "select_rank", lambda values, rank: None)
    slow = masked_median(x, mask)
    assert torch.equal(fast, expected) and torch.equal(slow, expected)


def test_selection_ignores_what_lies_outside_the_mask():
    generator = torch.Generator().manual_seed(6)
    x = torch.rand(2, 200, 200, generator=generator)
    mask = torch.rand(2, 200, 200, generator=generator) < 0.5
    poisoned = x.masked_fill(~mask, float("nan"))
    poisoned[0][~mask[0]] = -float("inf")
    count = mask.flatten(1).sum(1)
    rank = (count - 1) // 2
    common = (200 * 200 - 1) // 2
    assert torch.equal(select_valid_rank(x, mask, rank, common),
                       select_valid_rank(poisoned, mask, rank, common))

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mixdepth.errors import MixdepthError
from mixdepth.losses import align_lstsq, masked_median, normalize_median_mad

SETTINGS = settings(max_examples=40, deadline=None)


def random_batch(seed, batch=3, height=6, width=7, valid=0.7, dtype=torch.float64):
    rng = np.random.default_rng(seed)
    pred = torch.tensor(rng.uniform(0.0, 1.0, (batch, height, width)), dtype=dtype)
    target = torch.tensor(rng.uniform(0.1, 2.0, (batch, height, width)), dtype=dtype)
    mask = torch.tensor(rng.uniform(size=(batch, height, width)) < valid)
    return pred, target, mask


def numpy_lstsq(pred, target, mask):
    design = np.stack([pred[mask], np.ones(mask.sum())], axis=1)
    return np.linalg.lstsq(design, target[mask], rcond=None)[0]


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), height=st.integers(2, 8), width=st.integers(2, 8))
def test_align_lstsq_matches_numpy_lstsq(seed, height, width):
    pred, target, mask = random_batch(seed, height=height, width=width)
    mask[:, 0, :2] = True  # at least two distinct valid pixels per image
    scale, shift = align_lstsq(pred, target, mask)
    for n in range(pred.shape[0]):
        expected = numpy_lstsq(pred[n].numpy(), target[n].numpy(), mask[n].numpy())
        np.testing.assert_allclose([scale[n].item(), shift[n].item()], expected, atol=1e-9)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(-20, 20).filter(lambda v: abs(v) > 1e-3),
    shift=st.floats(-50, 50),
)
def test_align_lstsq_recovers_an_affine_map(seed, scale, shift):
    pred, _, mask = random_batch(seed)
    mask[:, 0, :2] = True
    s, t = align_lstsq(pred, scale * pred + shift, mask)
    np.testing.assert_allclose(s.numpy(), scale, rtol=1e-9)
    np.testing.assert_allclose(t.numpy(), shift, atol=1e-8)


def test_align_lstsq_float32_with_a_large_offset_stays_accurate():
    pred, _, mask = random_batch(0, batch=2, height=64, width=64, dtype=torch.float32)
    pred = pred + 1000.0
    target = 3.0 * pred.double() - 2500.0
    s, t = align_lstsq(pred, target.float(), mask)
    assert s.dtype == torch.float32
    np.testing.assert_allclose(s.numpy(), 3.0, rtol=2e-4)


def test_align_lstsq_degenerate_images_are_finite():
    pred = torch.rand(4, 3, 3, dtype=torch.float64, requires_grad=True)
    target = torch.rand(4, 3, 3, dtype=torch.float64)
    mask = torch.zeros(4, 3, 3, dtype=torch.bool)
    mask[1, 1, 1] = True  # one valid pixel
    mask[2] = True  # constant prediction, see below
    mask[3] = True
    target = target.clone()
    target[0] = float("nan")  # no valid pixel at all, target all NaN
    target[1, 0, 0] = float("inf")
    constant = torch.where(torch.arange(4)[:, None, None] == 2, torch.full_like(pred, 0.7), pred)
    scale, shift = align_lstsq(constant, target, mask)
    assert scale[0] == 0 and shift[0] == 0
    assert scale[1] == 0 and shift[1].item() == pytest.approx(target[1, 1, 1].item())
    assert scale[2] == 0 and shift[2].item() == pytest.approx(target[2].mean().item())
    assert scale[3] != 0
    (scale.sum() + shift.sum()).backward()
    assert torch.isfinite(pred.grad).all()


def test_align_lstsq_one_by_one_and_zero_prediction():
    pred = torch.zeros(2, 1, 1, requires_grad=True)
    target = torch.tensor([[[5.0]], [[float("nan")]]])
    mask = torch.tensor([[[True]], [[False]]])
    scale, shift = align_lstsq(pred, target, mask)
    assert scale.tolist() == [0.0, 0.0] and shift.tolist() == [5.0, 0.0]
    shift.sum().backward()
    assert torch.isfinite(pred.grad).all()


def test_align_lstsq_is_differentiated_through_gradcheck():
    pred, target, mask = random_batch(3, batch=2, height=4, width=5)
    pred.requires_grad_(True)
    target.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda p, t: align_lstsq(p, t, mask), (pred, target), eps=1e-6, atol=1e-6
    )


def test_align_lstsq_rejects_bad_inputs():
    pred, target, mask = random_batch(0)
    with pytest.raises(MixdepthError, match="same shape"):
        align_lstsq(pred, target[:, :-1], mask)
    with pytest.raises(MixdepthError, match="bool"):
        align_lstsq(pred, target, mask.float())
    with pytest.raises(MixdepthError, match=r"\(B, H, W\)"):
        align_lstsq(pred[0], target[0], mask[0])


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), height=st.integers(1, 7), width=st.integers(1, 7))
def test_masked_median_is_the_lower_median_of_valid_pixels(seed, height, width):
    pred, _, mask = random_batch(seed, height=height, width=width)
    pred = torch.where(mask, pred, torch.full_like(pred, -1e6))  # invalid values far below
    median = masked_median(pred, mask)
    for n in range(pred.shape[0]):
        values = np.sort(pred[n][mask[n]].numpy())
        expected = values[(len(values) - 1) // 2] if len(values) else 0.0
        assert median[n].item() == expected


def numpy_normalize(x, mask):
    values = np.sort(x[mask])
    median = values[(len(values) - 1) // 2]
    mad = np.mean(np.abs(values - median))
    return np.where(mask, (x - median) / max(mad, 1e-8), 0.0)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.1, 10), shift=st.floats(-5, 5))
def test_normalize_median_mad_uses_valid_pixels_only_and_is_affine_invariant(seed, scale, shift):
    x, _, mask = random_batch(seed)
    mask[:, 0, :2] = True
    poisoned = torch.where(mask, x, torch.full_like(x, float("nan")))
    out = normalize_median_mad(poisoned, mask)
    for n in range(x.shape[0]):
        np.testing.assert_allclose(
            out[n].numpy(), numpy_normalize(x[n].numpy(), mask[n].numpy()), atol=1e-12
        )
        valid = out[n][mask[n]]
        assert masked_median(out[n : n + 1], mask[n : n + 1]).item() == pytest.approx(0, abs=1e-12)
        assert valid.abs().mean().item() == pytest.approx(1.0)
    assert (out[~mask] == 0).all()
    np.testing.assert_allclose(normalize_median_mad(scale * x + shift, mask), out, atol=1e-9)


def test_normalize_median_mad_constant_empty_and_single_pixel_are_finite():
    x = torch.full((3, 4, 4), 2.5, dtype=torch.float64, requires_grad=True)
    mask = torch.zeros(3, 4, 4, dtype=torch.bool)
    mask[1] = True
    mask[2, 2, 2] = True
    out = normalize_median_mad(x, mask)
    assert (out == 0).all()
    (out * torch.rand_like(out)).sum().backward()
    assert (x.grad == 0).all()  # no usable spread: zero output and zero gradient


def test_normalize_median_mad_gradcheck():
    x, _, mask = random_batch(5, batch=2, height=4, width=4)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: normalize_median_mad(v, mask), (x,), eps=1e-6)


def test_align_lstsq_singular_images_gradcheck_through_the_target():
    # constant prediction and a single valid pixel: scale 0 and shift = mean target, whose
    # gradient is 1/M on the valid target pixels
    pred = torch.tensor([[[0.5, 0.5], [0.5, 0.5]], [[0.1, 0.9], [0.3, 0.7]]], dtype=torch.float64)
    mask = torch.tensor([[[True, True], [True, False]], [[False, True], [False, False]]])
    target = torch.rand(2, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: align_lstsq(pred, t, mask), (target,))
    scale, shift = align_lstsq(pred, target, mask)
    (grad,) = torch.autograd.grad(shift[0], target)
    np.testing.assert_allclose(grad[0].numpy(), [[1 / 3, 1 / 3], [1 / 3, 0]])


def autograd_reference_normalize(x, mask):
    """The normalisation written with plain autograd operations, for comparison."""
    out = []
    for n in range(x.shape[0]):
        values = x[n][mask[n]]
        median = values.sort().values[(values.numel() - 1) // 2]
        mad = (values - median).abs().mean()
        out.append(torch.where(mask[n], (x[n] - median) / mad, torch.zeros_like(x[n])))
    return torch.stack(out)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), height=st.integers(1, 8), width=st.integers(2, 8))
def test_closed_form_backward_matches_autograd(seed, height, width):
    x, target, mask = random_batch(seed, height=height, width=width)
    mask[:, 0, :2] = True
    weights = torch.rand(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    (normalize_median_mad(x1, mask) * weights).sum().backward()
    (autograd_reference_normalize(x2, mask) * weights).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-9, atol=1e-9)
    p1 = x.clone().requires_grad_(True)
    t1 = target.clone().requires_grad_(True)
    scale, shift = align_lstsq(p1, t1, mask)
    (2.0 * scale.sum() - 3.0 * shift.sum()).backward()
    for n in range(x.shape[0]):
        p = x[n][mask[n]].clone().requires_grad_(True)
        t = target[n][mask[n]].clone().requires_grad_(True)
        design = torch.stack([p, torch.ones_like(p)], dim=1)
        solution = torch.linalg.solve(design.T @ design, design.T @ t)
        (2.0 * solution[0] - 3.0 * solution[1]).backward()
        torch.testing.assert_close(p1.grad[n][mask[n]], p.grad, rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(t1.grad[n][mask[n]], t.grad, rtol=1e-6, atol=1e-8)

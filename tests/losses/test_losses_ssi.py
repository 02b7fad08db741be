import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mixdepth.errors import MixdepthError
from mixdepth.losses import (
    ScaleShiftInvariantLoss,
    gradient_matching,
    normalize_median_mad,
    ssi_loss,
    ssi_mae,
    ssi_mse,
    ssi_trim,
)
from mixdepth.losses.ssi import trim_selection

SETTINGS = settings(max_examples=30, deadline=None)
KINDS = ["mse", "mse-norm", "mae", "trim"]
seeds = st.integers(0, 2**32 - 1)


def random_batch(seed, batch=2, height=6, width=7, valid=0.7):
    rng = np.random.default_rng(seed)
    pred = torch.tensor(rng.uniform(0.0, 1.0, (batch, height, width)))
    target = torch.tensor(rng.uniform(0.1, 2.0, (batch, height, width)))
    mask = torch.tensor(rng.uniform(size=(batch, height, width)) < valid)
    mask[:, 0, :3] = True  # every image has a few valid pixels
    return pred, target, mask


def numpy_normalize(x, mask):
    values = np.sort(x[mask])
    median = values[(len(values) - 1) // 2]
    return (x - median) / np.mean(np.abs(values - median))


def full_loss(kind, reduction="batch"):
    return ScaleShiftInvariantLoss(kind=kind, alpha=0.5, scales=3, reduction=reduction)


@SETTINGS
@given(
    seed=seeds,
    kind=st.sampled_from(KINDS),
    scale=st.floats(0.05, 20),
    shift=st.floats(-10, 10),
    reduction=st.sampled_from(["batch", "image"]),
)
def test_ssi_losses_are_invariant_to_positive_scale_and_shift_of_the_prediction(
    seed, kind, scale, shift, reduction
):
    pred, target, mask = random_batch(seed)
    loss = full_loss(kind, reduction)
    total, parts = loss(pred, target, mask)
    moved_total, moved_parts = loss(scale * pred + shift, target, mask)
    assert moved_total.item() == pytest.approx(total.item(), rel=1e-7, abs=1e-10)
    assert moved_parts["grad"].item() == pytest.approx(parts["grad"].item(), rel=1e-7, abs=1e-10)
    plain = ssi_loss(scale * pred + shift, target, mask, kind, reduction=reduction)
    assert plain.item() == pytest.approx(parts["data"].item(), rel=1e-7, abs=1e-10)


@SETTINGS
@given(seed=seeds, kind=st.sampled_from(KINDS), scale=st.floats(0.05, 20), shift=st.floats(-5, 5))
def test_ssi_losses_vanish_for_an_affine_map_of_the_target(seed, kind, scale, shift):
    _, target, mask = random_batch(seed)
    total, parts = full_loss(kind)((target - shift) / scale, target, mask)
    assert total.item() == pytest.approx(0.0, abs=1e-9)
    assert parts["grad"].item() == pytest.approx(0.0, abs=1e-9)


@SETTINGS
@given(
    seed=seeds, height=st.integers(1, 9), width=st.integers(3, 9), trim=st.sampled_from([0.2, 0.5])
)
def test_trimmed_loss_sums_exactly_the_smallest_residuals(seed, height, width, trim):
    pred, target, mask = random_batch(seed, batch=3, height=height, width=width)
    per_image = ssi_trim(pred, target, mask, trim=trim, reduction="none")
    for n in range(pred.shape[0]):
        m = mask[n].numpy()
        residual = np.abs(
            numpy_normalize(pred[n].numpy(), m) - numpy_normalize(target[n].numpy(), m)
        )[m]
        keep = int(np.floor((1 - trim) * m.sum() + 1e-9))
        expected = np.sort(residual)[:keep].sum() / (2 * m.sum())
        assert per_image[n].item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_trim_keeps_exactly_the_smallest_valid_residuals():
    residual = torch.tensor([[[0.5, 9.0, 0.1, 7.0, 0.3], [0.2, 0.0, 8.0, 0.4, 0.6]]])
    mask = torch.ones_like(residual, dtype=torch.bool)
    mask[0, 1, 1] = False  # the smallest value is invalid: never kept
    count = mask.flatten(1).sum(1)
    below, index, extra = trim_selection(residual, mask, 0.2, count)
    # 9 valid -> floor(7.2) = 7 kept: six below the threshold 7.0 plus 7.0 itself; the two
    # largest valid values (9 and 8) and the invalid 0.0 are dropped
    assert below.sum().item() == 6 and extra.tolist() == [1]
    assert residual.flatten()[index].tolist() == [7.0]
    assert not below[0, 0, 1] and not below[0, 1, 2] and not below[0, 1, 1]
    below, index, extra = trim_selection(residual, mask, 0.0, count)
    assert below.sum().item() == 8 and residual.flatten()[index].tolist() == [9.0]


def test_trim_selection_with_ties_sums_exactly_k_values():
    residual = torch.tensor([[[1.0, 2.0, 2.0, 2.0, 5.0]]])
    mask = torch.ones_like(residual, dtype=torch.bool)
    below, index, extra = trim_selection(residual, mask, 0.4, mask.flatten(1).sum(1))
    # K = floor(0.6 * 5) = 3: 1 + 2 + 2, the tied 2.0 counted twice at the threshold
    kept = (residual * below).sum() + extra * residual.flatten()[index]
    assert kept.item() == 5.0 and extra.item() == 2


@SETTINGS
@given(seed=seeds, height=st.integers(1, 9), width=st.integers(1, 9), trim=st.floats(0.0, 0.9))
def test_trim_selection_matches_sorting(seed, height, width, trim):
    rng = np.random.default_rng(seed)
    residual = torch.tensor(rng.integers(0, 6, (3, height, width)).astype(float))  # many ties
    mask = torch.tensor(rng.uniform(size=(3, height, width)) < 0.6)
    count = mask.flatten(1).sum(1)
    below, index, extra = trim_selection(residual, mask, trim, count)
    kept = (residual * below).flatten(1).sum(1) + extra * residual.flatten(1).gather(
        1, index[:, None]
    )[:, 0]
    for n in range(3):
        values = np.sort(residual[n][mask[n]].numpy())
        k = int(np.floor((1 - trim) * len(values) + 1e-9))
        assert kept[n].item() == values[:k].sum()


def test_trimmed_loss_drops_the_largest_twenty_percent():
    target = torch.linspace(0.0, 9.0, 10, dtype=torch.float64).reshape(1, 2, 5)
    mask = torch.ones_like(target, dtype=torch.bool)
    pred = target.clone()
    pred[0, 1, 3] += 40.0
    pred[0, 1, 4] += 80.0
    residual = (normalize_median_mad(pred, mask) - normalize_median_mad(target, mask)).abs()
    largest_two = residual.flatten().sort().values[-2:].sum()
    mae = ssi_mae(pred, target, mask)
    assert ssi_trim(pred, target, mask).item() == pytest.approx(
        mae.item() - largest_two.item() / 20
    )
    assert ssi_trim(pred, target, mask, trim=0.0).item() == pytest.approx(mae.item())


def test_trim_keep_count_rounds_down():
    target = torch.arange(7, dtype=torch.float64).reshape(1, 1, 7)
    mask = torch.ones_like(target, dtype=torch.bool)
    pred = target.clone()
    pred[0, 0, 6] = 100.0  # the single largest residual
    residual = (normalize_median_mad(pred, mask) - normalize_median_mad(target, mask)).abs()
    smallest = residual.flatten().sort().values
    # floor(0.8 * 7) = 5 kept, floor(0.7 * 10)-style float rounding is guarded
    assert ssi_trim(pred, target, mask).item() == pytest.approx(smallest[:5].sum().item() / 14)


@SETTINGS
@given(seed=seeds, kind=st.sampled_from(KINDS), reduction=st.sampled_from(["batch", "image"]))
def test_masked_pixels_change_neither_value_nor_gradient(seed, kind, reduction):
    pred, target, mask = random_batch(seed)
    rng = np.random.default_rng(seed + 1)
    junk = torch.tensor(rng.uniform(-1e4, 1e4, pred.shape))
    other_pred = torch.where(mask, pred, junk)
    other_target = torch.where(mask, target, junk)
    other_target[0][~mask[0]] = float("nan")
    other_target[1][~mask[1]] = float("inf")
    loss = full_loss(kind, reduction)
    values, grads = [], []
    for p, t in ((pred, target), (other_pred, other_target)):
        p = p.clone().requires_grad_(True)
        t = t.clone().requires_grad_(True)
        total, _ = loss(p, t, mask)
        total.backward()
        values.append(total.item())
        grads.append((p.grad, t.grad))
        assert torch.isfinite(p.grad).all() and torch.isfinite(t.grad).all()
        assert (p.grad[~mask] == 0).all()
    assert values[1] == pytest.approx(values[0], rel=1e-12)
    torch.testing.assert_close(grads[1][0], grads[0][0], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(grads[1][1], grads[0][1], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", ["batch", "image"])
def test_full_loss_gradcheck(kind, reduction):
    pred, target, mask = random_batch(11, height=5, width=6)
    pred.requires_grad_(True)
    target.requires_grad_(True)
    loss = ScaleShiftInvariantLoss(kind=kind, scales=2, reduction=reduction)
    assert torch.autograd.gradcheck(lambda p, t: loss(p, t, mask)[0], (pred, target), eps=1e-6)


@pytest.mark.parametrize("function", [ssi_mse, ssi_mae, ssi_trim])
def test_data_terms_gradcheck(function):
    pred, target, mask = random_batch(12, height=5, width=5)
    pred.requires_grad_(True)
    target.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, t: function(p, t, mask), (pred, target), eps=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_sees_through_the_alignment(kind):
    # A loss invariant to pred -> a * pred + b has a gradient orthogonal to 1 and to pred on
    # the valid pixels; this holds only when the alignment is differentiated through.
    pred, target, mask = random_batch(4, height=8, width=8)
    pred.requires_grad_(True)
    total, _ = full_loss(kind)(pred, target, mask)
    (grad,) = torch.autograd.grad(total, pred)
    for n in range(pred.shape[0]):
        g = grad[n][mask[n]]
        assert g.sum().item() == pytest.approx(0.0, abs=1e-10)
        assert (g * pred[n][mask[n]]).sum().item() == pytest.approx(0.0, abs=1e-10)
    assert grad.abs().sum() > 0


def test_ssi_mse_matches_the_least_squares_residual():
    pred, target, mask = random_batch(8, batch=3)
    expected_sums, expected_counts = [], []
    for n in range(3):
        m = mask[n].numpy()
        design = np.stack([pred[n].numpy()[m], np.ones(m.sum())], axis=1)
        solution = np.linalg.lstsq(design, target[n].numpy()[m], rcond=None)[0]
        expected_sums.append(np.sum((design @ solution - target[n].numpy()[m]) ** 2))
        expected_counts.append(2 * m.sum())
    per_image = np.array(expected_sums) / np.array(expected_counts)
    assert ssi_mse(pred, target, mask).item() == pytest.approx(
        sum(expected_sums) / sum(expected_counts)
    )
    assert ssi_mse(pred, target, mask, reduction="image").item() == pytest.approx(per_image.mean())
    np.testing.assert_allclose(ssi_mse(pred, target, mask, reduction="none").numpy(), per_image)


@SETTINGS
@given(seed=seeds, scale=st.floats(1e-3, 1e4), shift=st.floats(-100, 100))
def test_mse_norm_ignores_the_units_of_the_target(seed, scale, shift):
    pred, target, mask = random_batch(seed)
    loss = ssi_loss(pred, target, mask, "mse-norm", reduction="none")
    rescaled = ssi_loss(pred, scale * target + shift, mask, "mse-norm", reduction="none")
    torch.testing.assert_close(rescaled, loss, rtol=1e-6, atol=1e-9)
    # it is ssimse on the median/MAD-normalised target
    normalised = ssi_mse(pred, normalize_median_mad(target, mask), mask, reduction="none")
    torch.testing.assert_close(loss, normalised)
    # plain ssimse grows with the square of the target's scale
    plain = ssi_loss(pred, scale * target + shift, mask, "mse", reduction="none")
    torch.testing.assert_close(plain, scale**2 * ssi_mse(pred, target, mask, reduction="none"))


def test_ssi_mae_matches_numpy():
    pred, target, mask = random_batch(9, batch=1)
    m = mask[0].numpy()
    r = numpy_normalize(pred[0].numpy(), m) - numpy_normalize(target[0].numpy(), m)
    assert ssi_mae(pred, target, mask).item() == pytest.approx(np.abs(r[m]).sum() / (2 * m.sum()))


def test_full_loss_is_data_plus_alpha_times_gradient_matching():
    pred, target, mask = random_batch(10)
    total, parts = ScaleShiftInvariantLoss("mae", alpha=0.3, scales=2)(pred, target, mask)
    p_hat = normalize_median_mad(pred, mask)
    t_hat = normalize_median_mad(target, mask)
    assert parts["data"].item() == pytest.approx(ssi_mae(pred, target, mask).item())
    assert parts["grad"].item() == pytest.approx(gradient_matching(p_hat, t_hat, mask, 2).item())
    assert total.item() == pytest.approx(parts["data"].item() + 0.3 * parts["grad"].item())
    no_grad_total, no_grad_parts = ScaleShiftInvariantLoss("mae", alpha=0.0)(pred, target, mask)
    assert no_grad_parts["grad"].item() == 0 and no_grad_total.item() == parts["data"].item()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", ["batch", "image", "none"])
def test_degenerate_images_give_finite_values_and_gradients(kind, reduction):
    shape = (6, 4, 4)
    pred = torch.rand(shape, dtype=torch.float64)
    target = torch.rand(shape, dtype=torch.float64)
    mask = torch.ones(shape, dtype=torch.bool)
    mask[0] = False  # no valid pixel
    target[0] = float("nan")
    mask[1] = False
    mask[1, 2, 2] = True  # a single valid pixel
    pred[2] = 0.3  # constant prediction
    target[3] = 1.5  # constant target
    pred[4] = 0.0  # a ReLU that died
    target[4] = 0.0
    mask[5, :, 0] = False  # NaN and inf off the mask
    target[5, 0, 0] = float("nan")
    target[5, 1, 0] = float("inf")
    pred = pred.requires_grad_(True)
    target = target.requires_grad_(True)
    total, parts = ScaleShiftInvariantLoss(kind, reduction=reduction)(pred, target, mask)
    assert torch.isfinite(total).all() and torch.isfinite(parts["grad"]).all()
    total.sum().backward()
    assert torch.isfinite(pred.grad).all() and torch.isfinite(target.grad).all()
    if reduction == "none":
        assert total[0].item() == 0.0 and total[1].item() == 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_one_by_one_images_and_empty_batches(kind):
    pred = torch.rand(3, 1, 1, requires_grad=True)
    target = torch.tensor([[[1.0]], [[float("inf")]], [[2.0]]])
    mask = torch.tensor([[[True]], [[False]], [[True]]])
    total, parts = ScaleShiftInvariantLoss(kind)(pred, target, mask)
    total.backward()
    assert total.item() == 0.0 and torch.isfinite(pred.grad).all()
    empty = torch.zeros(2, 5, 5, dtype=torch.bool)
    pred = torch.rand(2, 5, 5, requires_grad=True)
    total, _ = ScaleShiftInvariantLoss(kind)(pred, torch.full((2, 5, 5), float("nan")), empty)
    total.backward()
    assert total.item() == 0.0 and (pred.grad == 0).all()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", ["batch", "image"])
def test_images_without_valid_pixels_do_not_dilute_the_batch_mean(kind, reduction):
    pred, target, mask = random_batch(13)
    loss = full_loss(kind, reduction)
    padded = [torch.cat([x, x[:1]]) for x in (pred, target, mask)]
    padded[2][-1] = False
    assert loss(*padded)[0].item() == pytest.approx(loss(pred, target, mask)[0].item())


def test_reductions_relate_as_documented():
    pred, target, mask = random_batch(14, batch=4)
    mask[1, 1:] = False  # images with very different valid counts
    counts = mask.flatten(1).sum(1).double()
    for kind in KINDS:
        per_image = ssi_loss(pred, target, mask, kind, reduction="none")
        image = ssi_loss(pred, target, mask, kind, reduction="image")
        batch = ssi_loss(pred, target, mask, kind, reduction="batch")
        assert image.item() == pytest.approx(per_image.mean().item())
        assert batch.item() == pytest.approx(((per_image * counts).sum() / counts.sum()).item())


def test_bad_arguments_raise_mixdepth_errors():
    pred, target, mask = random_batch(0)
    with pytest.raises(MixdepthError, match="kind"):
        ScaleShiftInvariantLoss(kind="huber")
    with pytest.raises(MixdepthError, match="reduction"):
        ScaleShiftInvariantLoss(reduction="sum")
    with pytest.raises(MixdepthError, match="trim"):
        ssi_trim(pred, target, mask, trim=1.0)
    with pytest.raises(MixdepthError, match="same shape"):
        ScaleShiftInvariantLoss()(pred, target[:1], mask)
    with pytest.raises(MixdepthError, match="scales"):
        gradient_matching(pred, target, mask, scales=0)


def test_float32_inputs_keep_their_dtype():
    pred, target, mask = random_batch(15)
    total, parts = ScaleShiftInvariantLoss("trim")(pred.float(), target.float(), mask)
    assert total.dtype == torch.float32 and parts["data"].dtype == torch.float32

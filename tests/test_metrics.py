import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mixdepth.errors import MixdepthError
from mixdepth.metrics import METRIC_NAMES, aggregate, whdr, zero_shot_metrics


def reference_protocol(pred, gt, mask, cap):
    """The zero-shot protocol written plainly with numpy, one image."""
    valid = mask & np.isfinite(gt) & (gt > 0)
    gt_disparity = 1.0 / gt[valid]
    design = np.stack([pred[valid], np.ones(valid.sum())], axis=1)
    scale, shift = np.linalg.lstsq(design, gt_disparity, rcond=None)[0]
    aligned = scale * pred[valid] + shift
    aligned[aligned < 1.0 / cap] = 1.0 / cap
    depth = 1.0 / aligned
    target = gt[valid]
    ratio = np.maximum(depth / target, target / depth)
    return {
        "absrel": np.mean(np.abs(depth - target) / target),
        "sqrel": np.mean((depth - target) ** 2 / target),
        "rmse": np.sqrt(np.mean((depth - target) ** 2)),
        "rmse_log": np.sqrt(np.mean((np.log(depth) - np.log(target)) ** 2)),
        "delta1": np.mean(ratio < 1.25),
        "delta2": np.mean(ratio < 1.25**2),
        "delta3": np.mean(ratio < 1.25**3),
        "bad_pixel": 100.0 * np.mean(ratio > 1.25),
    }


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    height=st.integers(2, 24),
    width=st.integers(2, 24),
    cap=st.sampled_from([10.0, 72.0, 80.0]),
    noise=st.floats(0.0, 2.0),
)
def test_zero_shot_metrics_agree_with_a_plain_numpy_protocol(seed, height, width, cap, noise):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0.5, cap * 1.2, (height, width))
    gt[rng.uniform(size=gt.shape) < 0.1] = 0.0  # holes
    gt[0, 0] = np.nan
    mask = (rng.uniform(size=gt.shape) < 0.9) & (gt <= cap)
    mask[0, 1] = mask[1, 0] = True
    gt[0, 1], gt[1, 0] = 1.0, 2.0  # at least two distinct valid depths
    pred = 3.0 / np.where(gt > 0, gt, 1.0) + 0.5 + noise * rng.uniform(size=gt.shape)
    expected = reference_protocol(pred, np.nan_to_num(gt, nan=0.0), mask, cap)
    result = zero_shot_metrics(pred, gt, mask, cap)
    assert set(result) == set(METRIC_NAMES)
    for key in METRIC_NAMES:
        assert result[key] == pytest.approx(expected[key], rel=1e-7, abs=1e-10), key


def test_hand_computed_alignment_without_clamping():
    # gt disparity [1, 2, 4] vs prediction [1, 2, 3]: scale 1.5, shift -2/3
    gt = np.array([[1.0, 0.5, 0.25]])
    pred = np.array([[1.0, 2.0, 3.0]])
    result = zero_shot_metrics(pred, gt, None, cap=10.0)
    assert result["absrel"] == pytest.approx((1 / 5 + 1 / 7 + 1 / 23) / 3)
    assert result["delta1"] == 1.0 and result["bad_pixel"] == 0.0


def test_hand_computed_clamping_at_the_cap():
    # gt disparity [0.5, 0.5, 2] vs prediction [0, 1, 2]: scale 0.75, shift 0.25, aligned
    # [0.25, 1, 1.75]; cap 2 m clamps 0.25 to 0.5 -> depths [2, 1, 4/7] vs [2, 2, 0.5]
    gt = np.array([[2.0, 2.0, 0.5]])
    pred = np.array([[0.0, 1.0, 2.0]])
    result = zero_shot_metrics(pred, gt, None, cap=2.0)
    assert result["absrel"] == pytest.approx((0.0 + 0.5 + 1 / 7) / 3)
    assert result["rmse"] == pytest.approx(np.sqrt((0 + 1 + (4 / 7 - 0.5) ** 2) / 3))
    assert result["bad_pixel"] == pytest.approx(100 / 3)
    assert result["delta1"] == pytest.approx(2 / 3)
    assert result["delta2"] == pytest.approx(2 / 3)
    assert result["delta3"] == pytest.approx(2 / 3)  # a ratio of 2 exceeds 1.25^3


def test_perfect_affine_prediction_scores_perfectly_and_masked_pixels_do_not_matter():
    rng = np.random.default_rng(0)
    gt = rng.uniform(1.0, 10.0, (8, 9))
    mask = rng.uniform(size=gt.shape) < 0.8
    pred = 2.0 / gt + 0.3
    pred_with_junk = np.where(mask, pred, np.nan)
    result = zero_shot_metrics(pred_with_junk, np.where(mask, gt, -5.0), mask, cap=10.0)
    assert result["absrel"] == pytest.approx(0.0, abs=1e-12)
    assert result["delta1"] == 1.0 and result["bad_pixel"] == 0.0


def test_numpy_and_torch_inputs_give_the_same_numbers():
    rng = np.random.default_rng(1)
    gt = rng.uniform(1.0, 10.0, (6, 7)).astype(np.float32)
    pred = rng.uniform(0.0, 1.0, (6, 7)).astype(np.float32)
    mask = gt < 8.0
    from_numpy = zero_shot_metrics(pred, gt, mask, 10.0)
    from_torch = zero_shot_metrics(
        torch.from_numpy(pred).requires_grad_(True), torch.from_numpy(gt), torch.from_numpy(mask),
        10.0,
    )
    assert from_numpy == pytest.approx(from_torch)
    assert all(isinstance(value, float) for value in from_numpy.values())


def test_no_valid_pixel_raises_instead_of_nan():
    gt = np.array([[0.0, np.nan], [np.inf, -1.0]])
    with pytest.raises(MixdepthError, match="no valid"):
        zero_shot_metrics(np.ones((2, 2)), gt, None, 10.0)
    with pytest.raises(MixdepthError, match="no valid"):
        zero_shot_metrics(np.ones((2, 2)), np.ones((2, 2)), np.zeros((2, 2), bool), 10.0)


def test_degenerate_single_pixel_and_constant_prediction_are_finite():
    single = zero_shot_metrics(np.array([[0.3]]), np.array([[4.0]]), None, 10.0)
    assert single["absrel"] == pytest.approx(0.0)
    constant = zero_shot_metrics(np.full((3, 3), 0.5), np.arange(1.0, 10.0).reshape(3, 3),
                                 None, 10.0)
    assert all(np.isfinite(value) for value in constant.values())


def test_bad_inputs_raise_mixdepth_errors():
    with pytest.raises(MixdepthError, match="same size"):
        zero_shot_metrics(np.ones((2, 3)), np.ones((3, 2)), None, 10.0)
    with pytest.raises(MixdepthError, match="mask"):
        zero_shot_metrics(np.ones((2, 2)), np.ones((2, 2)), np.ones((3, 3), bool), 10.0)
    with pytest.raises(MixdepthError, match="cap"):
        zero_shot_metrics(np.ones((2, 2)), np.ones((2, 2)), None, 0.0)
    with pytest.raises(MixdepthError, match="NaN"):
        zero_shot_metrics(np.array([[np.nan, 1.0]]), np.ones((1, 2)), None, 10.0)


def test_aggregate_averages_per_image():
    results = [{"absrel": 0.1, "bad_pixel": 10.0}, {"absrel": 0.3, "bad_pixel": 30.0}]
    assert aggregate(results) == pytest.approx({"absrel": 0.2, "bad_pixel": 20.0})
    with pytest.raises(MixdepthError, match="no per-image"):
        aggregate([])
    with pytest.raises(MixdepthError, match="keys"):
        aggregate([{"absrel": 0.1}, {"rmse": 0.2}])


def test_whdr_hand_computed_with_ties_counting_as_wrong():
    pred = np.array([[1.0, 2.0], [3.0, 3.0]])
    pairs = np.array(
        [
            [0, 0, 0, 1, -1],  # 1 < 2 and a is further: right
            [1, 0, 0, 0, 1],  # 3 > 1 and a is closer: right
            [0, 1, 1, 1, 1],  # 2 < 3 but a is said closer: wrong
            [1, 0, 1, 1, 1],  # tie: wrong
        ]
    )
    assert whdr(pred, pairs) == pytest.approx(0.5)
    assert whdr(torch.tensor(pred), torch.tensor(pairs)) == pytest.approx(0.5)
    assert whdr(-pred, pairs) == pytest.approx(0.75)  # flipped order, the tie stays wrong


def test_whdr_rejects_bad_pairs():
    pred = np.zeros((2, 2))
    with pytest.raises(MixdepthError, match="no ordinal pairs"):
        whdr(pred, np.zeros((0, 5), np.int64))
    with pytest.raises(MixdepthError, match="outside"):
        whdr(pred, np.array([[0, 0, 2, 0, 1]]))
    with pytest.raises(MixdepthError, match="labels"):
        whdr(pred, np.array([[0, 0, 1, 0, 2]]))
    with pytest.raises(MixdepthError, match=r"\(N, 5\)"):
        whdr(pred, np.array([[0, 0, 1, 0]]))

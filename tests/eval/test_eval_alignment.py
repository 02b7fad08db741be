"""Per-image scoring: hand-computed values, the alternative alignments, degenerate inputs."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixdepth.eval.alignment import aligned_depth, depth_metrics, score_dense
from mixdepth.metrics import zero_shot_metrics

KEYS = {"absrel", "sqrel", "rmse", "rmse_log", "delta1", "delta2", "delta3", "bad_pixel"}


def test_no_alignment_hand_computed():
    # ground truth depth [1, 2]; predicted depth [1, 4] (disparity [1, 0.25])
    gt = np.array([[1.0, 2.0]])
    pred_disparity = np.array([[1.0, 0.25]])
    mask = np.ones_like(gt, dtype=bool)
    m = score_dense(pred_disparity, gt, mask, cap=10.0, align="none")
    assert m["absrel"] == pytest.approx((0 / 1 + 2 / 2) / 2)
    assert m["sqrel"] == pytest.approx((0 + 4 / 2) / 2)
    assert m["rmse"] == pytest.approx(math.sqrt(2.0))
    assert m["rmse_log"] == pytest.approx(math.log(2) / math.sqrt(2))
    # ratios 1 and 2: 2 > 1.25^3 = 1.953
    assert (m["delta1"], m["delta2"], m["delta3"]) == pytest.approx((0.5, 0.5, 0.5))
    assert m["bad_pixel"] == pytest.approx(50.0)


def test_constant_prediction_scores_mean_disparity_depth():
    # LS alignment of a constant map: scale 0, shift = mean GT disparity = (1 + 0.5) / 2,
    # so every pixel is predicted at depth 4/3: relative errors 1/3 and 1/3, both ratios > 1.25.
    gt = np.array([[1.0, 2.0]])
    mask = np.ones_like(gt, dtype=bool)
    m = score_dense(np.full_like(gt, 0.7), gt, mask, cap=10.0)
    assert m["absrel"] == pytest.approx(1 / 3)
    assert m["rmse"] == pytest.approx(math.sqrt(((4 / 3 - 1) ** 2 + (4 / 3 - 2) ** 2) / 2))
    assert m["bad_pixel"] == pytest.approx(100.0)
    assert m["delta1"] == 0.0


def test_cap_clamps_far_predictions():
    # A zero disparity (infinitely far) becomes the cap, whatever the alignment.
    gt = np.array([[2.0, 4.0]])
    mask = np.ones_like(gt, dtype=bool)
    for align in ("none", "median", "depth"):
        depth = aligned_depth(np.array([[0.5, 0.0]]), gt, mask, align, cap=10.0)
        assert np.isfinite(depth).all() and depth.max() <= 10.0
    assert aligned_depth(np.array([[0.5, 0.0]]), gt, mask, "none", cap=10.0)[0, 1] == 10.0


def test_median_scaling_hand_computed():
    # predicted depth [1, 2, 4] (disparity [1, .5, .25]), gt [3, 4, 5]: medians 2 and 4 -> x2
    gt = np.array([[3.0, 4.0, 5.0]])
    mask = np.ones_like(gt, dtype=bool)
    depth = aligned_depth(np.array([[1.0, 0.5, 0.25]]), gt, mask, "median", cap=80.0)
    np.testing.assert_allclose(depth, [[2.0, 4.0, 8.0]])
    m = score_dense(np.array([[1.0, 0.5, 0.25]]), gt, mask, cap=80.0, align="median")
    assert m["absrel"] == pytest.approx((1 / 3 + 0 + 3 / 5) / 3)


@pytest.mark.parametrize("align", ["disparity", "depth", "median", "none"])
def test_exact_prediction_is_perfect(align):
    rng = np.random.default_rng(0)
    gt = rng.uniform(1.0, 9.0, size=(8, 12))
    mask = rng.random(gt.shape) > 0.3
    if align == "disparity":
        pred = 3.0 / gt + 0.2  # affine in disparity
    elif align == "depth":
        pred = 1.0 / (0.5 * gt + 1.0)  # disparity of an affine function of depth
    elif align == "median":
        pred = 1.0 / (2.5 * gt)
    else:
        pred = 1.0 / gt
    m = score_dense(pred, gt, mask, cap=10.0, align=align)
    assert m["absrel"] == pytest.approx(0.0, abs=1e-9)
    assert m["bad_pixel"] == 0.0 and m["delta1"] == 1.0


def test_depth_metrics_reproduce_zero_shot_metrics():
    rng = np.random.default_rng(1)
    gt = rng.uniform(0.5, 70.0, size=(16, 20))
    pred = rng.uniform(0.0, 2.0, size=gt.shape)
    mask = rng.random(gt.shape) > 0.2
    expected = zero_shot_metrics(pred, gt, mask, cap=72.0)
    depth = aligned_depth(pred, gt, mask, "disparity", cap=72.0)
    got = depth_metrics(depth, gt, mask)
    assert set(got) == KEYS
    for key in KEYS:
        assert got[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(["disparity", "depth", "median", "none"]),
    st.floats(-5.0, 5.0),
    st.integers(1, 6),
    st.integers(1, 6),
)
def test_degenerate_maps_never_give_nan(align, constant, height, width):
    # constant (even negative) predictions, tiny images, a single valid pixel
    gt = np.full((height, width), 3.0)
    mask = np.zeros_like(gt, dtype=bool)
    mask[0, 0] = True
    m = score_dense(np.full_like(gt, constant), gt, mask, cap=10.0, align=align)
    assert set(m) == KEYS
    assert all(math.isfinite(v) for v in m.values())


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.floats(0.01, 100.0) | st.floats(-100.0, -0.01),
    st.floats(-10.0, 10.0),
)
def test_protocol_is_invariant_to_affine_maps_of_the_prediction(seed, scale, shift):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0.5, 9.0, size=(6, 7))
    mask = rng.random(gt.shape) > 0.2
    mask[0, :2] = True
    pred = rng.uniform(0.1, 2.0, size=gt.shape)
    base = score_dense(pred, gt, mask, cap=10.0)
    moved = score_dense(scale * pred + shift, gt, mask, cap=10.0)
    for key in KEYS:
        assert moved[key] == pytest.approx(base[key], rel=1e-6, abs=1e-9)

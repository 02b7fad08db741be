"""Metric alignment of relative predictions to sparse depth hints (`mixdepth.align`)."""

import sys

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from mixdepth.align import (
    INLIER_THRESHOLD,
    align_to_hints,
    metric_depth,
    read_hints_csv,
    sample_bilinear,
)
from mixdepth.cli import app, main
from mixdepth.errors import AlignmentError, ConfigError, MixdepthError
from mixdepth.io import read_pfm, write_png16
from mixdepth.outputs import write_outputs

torch.set_num_threads(1)

A, B = 2.5, 0.3  # prediction = A / depth + B in the synthetic scenes below


def scene(height=48, width=64, seed=0):
    """True depth (H, W) in metres and an affine prediction A / depth + B of it (float64)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    depth = 2.0 + 6.0 * yy / height + 0.5 * np.sin(xx / 5.0) + rng.uniform(0, 0.2, (height, width))
    return depth, A / depth + B


def true_hints(depth, count, seed=0, subpixel=True):
    """count hints (K, 3) of the exact depth: at sub-pixel positions the depth whose inverse
    is the bilinear interpolation of the true inverse depth."""
    rng = np.random.default_rng(seed)
    height, width = depth.shape
    if subpixel:
        x = rng.uniform(-0.5, width - 0.5, count)
        y = rng.uniform(-0.5, height - 0.5, count)
    else:
        flat = rng.choice(height * width, count, replace=False)
        y, x = np.divmod(flat, width)
    return np.stack([x, y, 1.0 / sample_bilinear(1.0 / depth, x, y)], axis=1)


def corrupt(hints, fraction, seed=1):
    """A copy with `fraction` of the depths multiplied or divided by 2-5; the bool mask of
    the corrupted hints."""
    rng = np.random.default_rng(seed)
    bad = np.zeros(len(hints), bool)
    bad[rng.choice(len(hints), int(round(fraction * len(hints))), replace=False)] = True
    factor = rng.uniform(2.0, 5.0, len(hints)) ** rng.choice([-1.0, 1.0], len(hints))
    out = hints.copy()
    out[bad, 2] *= factor[bad]
    return out, bad


# ------------------------------------------------------------------ exact recovery


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(2, 9),
    width=st.integers(4, 9),  # a (K, 3) array of a width-3 map would read as a map
    count=st.integers(2, 12),
    scale=st.floats(0.01, 100.0),
    offset=st.floats(-0.5, 2.0),
    robust=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_exact_recovery_of_an_affine_prediction(height, width, count, scale, offset, robust, seed):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 50.0, (height, width))
    prediction = scale / depth + scale * offset  # any positive scale, any shift
    hints = true_hints(depth, count, seed)
    disparity_at_hints = 1.0 / hints[:, 2]
    assume(np.ptp(disparity_at_hints) > 1e-3 * disparity_at_hints.max())
    result = align_to_hints(prediction, hints, robust=robust)
    assert result.inliers.all()
    np.testing.assert_allclose(result.scale, 1.0 / scale, rtol=1e-6)
    np.testing.assert_allclose(result.shift, -offset, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(result.depth, depth, rtol=1e-5)
    assert result.depth.dtype == np.float32 and result.residual < 1e-6


def test_two_hints_and_torch_input():
    depth, prediction = scene()
    hints = true_hints(depth, 2, seed=3)
    result = align_to_hints(torch.from_numpy(prediction).float(), torch.from_numpy(hints))
    np.testing.assert_allclose(result.depth, depth, rtol=1e-4)
    assert result.inliers.tolist() == [True, True]


def test_subpixel_hints_are_sampled_bilinearly():
    image = np.array([[0.0, 1.0], [2.0, np.nan]])
    np.testing.assert_allclose(
        sample_bilinear(image, np.array([0.25, 1.0, -0.5, 0.5]), np.array([0.0, 0.0, 0.5, 0.0])),
        [0.25, 1.0, 1.0, 0.5],  # the NaN pixel has zero weight for every one of these
    )
    assert np.isnan(sample_bilinear(image, np.array([0.5]), np.array([0.5])))[0]
    # a hint between pixel centres: its depth is matched through the interpolated prediction
    depth, prediction = scene(8, 8)
    hints = np.array([[2.5, 3.5, 0.0], [6.25, 1.75, 0.0], [0.0, 7.0, 0.0]])
    hints[:, 2] = 1.0 / ((sample_bilinear(prediction, hints[:, 0], hints[:, 1]) - B) / A)
    result = align_to_hints(prediction, hints)
    assert result.scale == pytest.approx(1 / A) and result.shift == pytest.approx(-B / A)
    # the nearest-pixel prediction would not fit these hints
    rounded = hints.copy()
    rounded[:, 2] = 1.0 / ((prediction[[3, 1, 7], [2, 6, 0]] - B) / A)
    assert not np.allclose(rounded[:, 2], hints[:, 2], rtol=1e-3)


def test_sparse_map_equals_the_same_hints_as_rows():
    depth, prediction = scene()
    hints = true_hints(depth, 15, seed=4, subpixel=False)
    hints, _ = corrupt(hints, 0.2)
    sparse = np.zeros_like(depth)
    sparse[hints[:, 1].astype(int), hints[:, 0].astype(int)] = hints[:, 2]
    sparse[0, 0] = np.nan  # unknown
    from_map = align_to_hints(prediction, sparse.astype(np.float32))
    from_rows = align_to_hints(prediction, hints.astype(np.float32))
    assert from_map.scale == pytest.approx(from_rows.scale, rel=1e-9)
    assert from_map.shift == pytest.approx(from_rows.shift, rel=1e-9)
    assert from_map.inlier_count == from_rows.inlier_count == 12


# ------------------------------------------------------------------ robustness


def test_invariant_to_the_order_of_hints():
    depth, prediction = scene()
    rng = np.random.default_rng(5)
    hints = true_hints(depth, 300, seed=5)  # more pairs than RANSAC tries: random candidates
    hints[:, 2] *= rng.uniform(0.95, 1.05, len(hints))
    hints, _ = corrupt(hints, 0.3)
    first = align_to_hints(prediction, hints)
    order = rng.permutation(len(hints))
    second = align_to_hints(prediction, hints[order])
    assert (first.scale, first.shift, first.residual) == (second.scale, second.shift,
                                                          second.residual)
    assert np.array_equal(first.inliers[order], second.inliers)
    np.testing.assert_array_equal(first.depth, second.depth)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thirty_percent_gross_outliers_change_nothing(seed):
    depth, prediction = scene(seed=seed)
    rng = np.random.default_rng(seed)
    clean = true_hints(depth, 20, seed=seed)
    clean[:, 2] *= rng.uniform(0.97, 1.03, 20)  # 3 % measurement noise
    hints, bad = corrupt(clean, 0.3, seed=seed + 10)
    reference = align_to_hints(prediction, clean[~bad])
    result = align_to_hints(prediction, hints)
    assert np.array_equal(result.inliers, ~bad)
    assert result.scale == pytest.approx(reference.scale, rel=1e-9)
    assert result.shift == pytest.approx(reference.shift, rel=1e-9, abs=1e-12)
    abs_rel = np.mean(np.abs(result.depth - depth) / depth)
    assert abs_rel < 0.03
    plain = align_to_hints(prediction, hints, robust=False)
    assert plain.inliers.all() and np.mean(np.abs(plain.depth - depth) / depth) > 3 * abs_rel


def test_inliers_are_within_the_threshold():
    depth, prediction = scene()
    hints = true_hints(depth, 40, seed=8)
    hints[:, 2] *= np.random.default_rng(8).uniform(0.6, 1.4, 40)
    result = align_to_hints(prediction, hints)
    x, y, known = result.hints.T
    fitted = 1.0 / (result.scale * sample_bilinear(prediction, x, y) + result.shift)
    error = np.abs(fitted - known) / known
    assert np.all(error[result.inliers] <= INLIER_THRESHOLD + 1e-9)
    assert result.residual == pytest.approx(np.median(error[result.inliers]))


def test_uncertainty_interval():
    depth, prediction = scene()
    rng = np.random.default_rng(9)
    hints = true_hints(depth, 12, seed=9)
    hints[:, 2] *= rng.uniform(0.9, 1.1, 12)
    result = align_to_hints(prediction, hints)
    low, high = result.interval(10, 20)
    assert low < result.depth[20, 10] < high and high / low < 1.5
    low_90, high_90 = result.interval(np.array([10, 30]), np.array([20, 40]), level=0.5)
    assert low_90.shape == (2,) and low_90[0] >= low and high_90[0] <= high
    two = align_to_hints(prediction, true_hints(depth, 2, seed=2))
    assert two.interval(3, 4) == pytest.approx((two.depth[4, 3], two.depth[4, 3]), rel=1e-5)
    with pytest.raises(ConfigError):
        result.interval(1, 1, level=1.5)


# ------------------------------------------------------------------ depth conversion


def test_depth_where_the_fit_goes_beyond_infinity():
    disparity = np.array([[0.0, 1.0], [2.0, np.nan]], np.float32)
    depth = metric_depth(disparity, 1.0, -0.5)
    np.testing.assert_allclose(depth, [[0.0, 2.0], [2 / 3, 0.0]], rtol=1e-6)  # 0 = invalid
    capped = metric_depth(disparity, 1.0, -0.5, max_depth=10.0, min_depth=1.0)
    np.testing.assert_allclose(capped, [[10.0, 2.0], [1.0, 0.0]])
    assert not np.isnan(metric_depth(np.zeros((3, 3)), 1.0, 0.0)).any()
    assert (metric_depth(np.full((3, 3), 1e-300), 1.0, 0.0) == 0).all()  # overflows float32
    with pytest.raises(ConfigError):
        metric_depth(disparity, 1.0, 0.0, min_depth=5.0, max_depth=2.0)


def test_scale_only_with_one_hint_and_a_constant_prediction():
    prediction = np.full((6, 8), 0.5, np.float32)
    result = align_to_hints(prediction, [[3, 2, 4.0]], scale_only=True)
    assert result.shift == 0.0 and result.scale == pytest.approx(0.5)
    np.testing.assert_allclose(result.depth, 4.0)
    assert np.isfinite(result.depth).all()
    depth, affine = scene()
    proportional = affine - B  # pure scale: 1/depth = prediction / A
    fit = align_to_hints(proportional, true_hints(depth, 5), scale_only=True)
    np.testing.assert_allclose(fit.depth, depth, rtol=1e-5)


# ------------------------------------------------------------------ errors


def raises(match, *args, index=None, **kwargs):
    with pytest.raises(AlignmentError, match=match) as info:
        align_to_hints(*args, **kwargs)
    assert isinstance(info.value, MixdepthError) and isinstance(info.value, ValueError)
    assert info.value.index == index
    return info.value


def test_errors_name_the_hint():
    depth, prediction = scene(8, 10)
    good = true_hints(depth, 4)
    outside = good.copy()
    outside[2, 0] = 10.2
    raises(r"hint 2 \(x=10\.2.*outside the 10 x 8", prediction, outside, index=2)
    for value in (0.0, -1.0, np.nan, np.inf):
        bad = good.copy()
        bad[1, 2] = value
        raises("hint 1 .*positive, finite", prediction, bad, index=1)
    raises("1 hint fixes a scale but not a shift.*scale_only", prediction, good[:1], index=0)
    raises("no hints", prediction, np.zeros_like(depth))
    raises(r"\(K, 3\)", prediction, good[:, :2])
    holed = prediction.copy()
    holed[np.round(good[1:, 1]).astype(int), np.round(good[1:, 0]).astype(int)] = np.nan
    raises("1 usable hint.*hint 1, hint 2, hint 3.*non-finite", holed, good, index=1)
    raises("negative", prediction, np.where(depth > 4, -1.0, 0.0))


@pytest.mark.parametrize("robust", [True, False])
def test_upside_down_fit_is_an_error(robust):
    depth, _ = scene(8, 10)
    hints = true_hints(depth, 6)
    # depth instead of disparity: near and far are swapped
    raises("near and far", depth, hints, robust=robust)
    raises("same value at every usable hint", np.ones_like(depth), hints, robust=robust)


def test_invalid_options():
    depth, prediction = scene(8, 10)
    with pytest.raises(ConfigError):
        align_to_hints(prediction, true_hints(depth, 3), min_depth=-1.0)
    with pytest.raises(ConfigError):
        align_to_hints(prediction, true_hints(depth, 3), threshold=0.0)


def test_read_hints_csv(tmp_path):
    path = tmp_path / "hints.csv"
    path.write_text("# measured\ndepth, X ,y,note\n2.5,10,4.5,wall\n\n3,1,2,floor\n")
    np.testing.assert_array_equal(read_hints_csv(path), [[10, 4.5, 2.5], [1, 2, 3]])
    path.write_text("x,y,depth\n1,2,3\n1,two,3\n")
    with pytest.raises(AlignmentError, match="line 3: y 'two' is not a number"):
        read_hints_csv(path)
    path.write_text("x,z,depth\n1,2,3\n")
    with pytest.raises(AlignmentError, match="lacks column.*y"):
        read_hints_csv(path)


# ------------------------------------------------------------------ command line


def run_main(monkeypatch, args):
    monkeypatch.setattr(sys, "argv", ["mixdepth", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code


def write_csv(path, hints):
    lines = ["x,y,depth"] + [",".join(repr(float(v)) for v in row) for row in hints]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_align_command_round_trip(tmp_path, monkeypatch, capsys):
    depth, prediction = scene()
    rgb = np.zeros((*depth.shape, 3), np.uint8)
    pfm = write_outputs(tmp_path / "pred" / "room", prediction, rgb, ["pfm"])[0]
    hints, _ = corrupt(true_hints(depth, 10), 0.2)
    csv_path = write_csv(tmp_path / "hints.csv", hints)
    out = tmp_path / "metric"
    result = CliRunner().invoke(app, ["align", str(pfm), "--hints", str(csv_path), "-o", str(out),
                                      "--fov", "60"])
    assert result.exit_code == 0, result.output
    assert "inliers 8/10" in result.output and "outliers: hint" in result.output
    np.testing.assert_allclose(read_pfm(out / "room_metric.pfm"), depth, rtol=1e-4)
    np.testing.assert_allclose(np.load(out / "room_metric.npy"), depth, rtol=1e-4)
    ply = (out / "room_metric.ply").read_bytes()
    assert f"element vertex {depth.size}".encode() in ply

    # a sparse 16-bit PNG map in millimetres, no point cloud without intrinsics
    sparse = np.zeros_like(depth)
    exact = true_hints(depth, 30, subpixel=False)
    sparse[exact[:, 1].astype(int), exact[:, 0].astype(int)] = exact[:, 2]
    write_png16(tmp_path / "sparse.png", sparse, scale=1000.0)
    args = ["align", str(pfm), "--hints", str(tmp_path / "sparse.png"), "-o", str(out / "png"),
            "--hints-scale", "0.001", "--no-robust"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "inliers 30/30" in result.output
    np.testing.assert_allclose(np.load(out / "png" / "room_metric.npy"), depth, rtol=2e-3)
    assert not (out / "png" / "room_metric.ply").exists()

    # errors: one line, exit code 2
    outside = hints.copy()
    outside[4, 1] = 99.0
    bad_csv = write_csv(tmp_path / "bad.csv", outside)
    assert run_main(monkeypatch, ["align", str(pfm), "--hints", str(bad_csv), "-o",
                                  str(out)]) == 2
    assert "hint 4" in capsys.readouterr().err
    assert run_main(monkeypatch, ["align", str(pfm), "--hints", str(tmp_path / "sparse.png"),
                                  "-o", str(out)]) == 2
    assert "--hints-scale" in capsys.readouterr().err
    assert run_main(monkeypatch, ["align", str(pfm), "--hints", str(csv_path), "-o", str(out),
                                  "--format", "ply"]) == 2
    assert "needs the camera" in capsys.readouterr().err


def test_predict_with_hints_uses_the_default_model(tmp_path, monkeypatch, capsys):
    from mixdepth.inference import Predictor

    rng = np.random.default_rng(0)
    rgb = (rng.uniform(0, 1, (48, 64, 3)) * np.linspace(0.2, 1, 64)[None, :, None] * 255)
    image = tmp_path / "photo.png"
    Image.fromarray(rgb.astype(np.uint8)).save(image)
    prediction = Predictor().predict(image)
    ys, xs = np.unravel_index(np.argsort(prediction, axis=None)[::400], prediction.shape)
    hints = np.stack([xs, ys, 1.0 / (0.5 * prediction[ys, xs] + 0.1)], axis=1)
    csv_path = write_csv(tmp_path / "hints.csv", hints)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["predict", str(image), "-o", str(out), "--hints",
                                      str(csv_path), "--format", "pfm,ply", "--fx", "50"])
    assert result.exit_code == 0, result.output
    assert f"inliers {len(hints)}/{len(hints)}" in result.output
    assert "metric npy" in result.output
    expected = 1.0 / (0.5 * prediction + 0.1)
    np.testing.assert_allclose(np.load(out / "photo_metric.npy"), expected, rtol=1e-4)
    assert (out / "photo.pfm").is_file() and (out / "photo_metric.ply").is_file()
    second = tmp_path / "other.png"
    Image.fromarray(rgb.astype(np.uint8)).save(second)
    assert run_main(monkeypatch, ["predict", str(image), str(second), "-o", str(out),
                                  "--hints", str(csv_path)]) == 2
    assert "single image" in capsys.readouterr().err

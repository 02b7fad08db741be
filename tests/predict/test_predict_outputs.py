import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from mixdepth.errors import ConfigError
from mixdepth.io import read_pfm, read_png16
from mixdepth.outputs import (
    FORMATS,
    MIN_RELATIVE_DISPARITY,
    colorize,
    colormap_lut,
    minmax_normalize,
    parse_formats,
    point_cloud,
    side_by_side,
    write_outputs,
)


def read_ply(path):
    """(points (N, 3), colours (N, 3)) of a binary little-endian PLY written by write_ply."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    assert header[1] == "format binary_little_endian 1.0"
    count = int(next(line for line in header if line.startswith("element vertex")).split()[2])
    dtype = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                      ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    vertex = np.frombuffer(data, dtype=dtype, count=count, offset=end)
    assert len(data) == end + count * dtype.itemsize
    points = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1)
    colours = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1)
    return points, colours


@pytest.fixture
def prediction():
    y, x = np.mgrid[0:24, 0:32].astype(np.float32)
    disparity = 0.5 + x / 31 + 0.3 * np.sin(y / 4)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    return disparity.astype(np.float32), image


def test_every_format_written_and_read_back(tmp_path, prediction):
    disparity, image = prediction
    written = write_outputs(tmp_path / "sub" / "frame", disparity, image, FORMATS, "turbo",
                            with_side_by_side=True, fov=70)
    names = sorted(p.name for p in written)
    assert names == sorted(["frame.pfm", "frame.png", "frame_color.png", "frame.npy",
                            "frame.ply", "frame_side_by_side.png"])
    base = tmp_path / "sub"
    np.testing.assert_array_equal(read_pfm(base / "frame.pfm"), disparity)
    np.testing.assert_array_equal(np.load(base / "frame.npy"), disparity)
    normalised = (disparity - disparity.min()) / (disparity.max() - disparity.min())
    png16 = read_png16(base / "frame.png", 65535.0)
    np.testing.assert_allclose(png16, normalised, atol=1 / 65535)
    color = np.asarray(Image.open(base / "frame_color.png"))
    assert color.shape == (24, 32, 3) and color.dtype == np.uint8
    lut = colormap_lut("turbo")
    peak = np.unravel_index(np.argmax(disparity), disparity.shape)
    np.testing.assert_array_equal(color[peak], lut[255])
    sbs = np.asarray(Image.open(base / "frame_side_by_side.png"))
    np.testing.assert_array_equal(sbs[:, :32], image)
    np.testing.assert_array_equal(sbs[:, 32:], color)
    points, colours = read_ply(base / "frame.ply")
    assert len(points) == 24 * 32  # all disparities are within 100x of the maximum
    np.testing.assert_array_equal(colours, image.reshape(-1, 3))


def test_point_cloud_geometry(prediction):
    disparity, image = prediction
    fov = 60.0
    points, colours = point_cloud(disparity, image, fov)
    height, width = disparity.shape
    depth = -points[:, 2]
    np.testing.assert_allclose(depth, (disparity.max() / disparity).ravel(), rtol=1e-5)
    assert depth.min() == pytest.approx(1.0)
    # re-projection through the pinhole camera gives back the pixel grid
    focal = (width / 2) / math.tan(math.radians(fov) / 2)
    u = points[:, 0] * focal / depth + (width - 1) / 2
    v = -points[:, 1] * focal / depth + (height - 1) / 2
    vv, uu = np.mgrid[0:height, 0:width]
    np.testing.assert_allclose(u, uu.ravel(), atol=1e-3)
    np.testing.assert_allclose(v, vv.ravel(), atol=1e-3)


def test_point_cloud_drops_far_and_invalid_pixels():
    disparity = np.array([[1.0, MIN_RELATIVE_DISPARITY / 2], [np.nan, 0.5]], np.float32)
    points, colours = point_cloud(disparity, np.zeros((2, 2, 3), np.uint8))
    assert len(points) == len(colours) == 2
    empty, _ = point_cloud(np.zeros((3, 3), np.float32), np.zeros((3, 3, 3), np.uint8))
    assert empty.shape == (0, 3)
    with pytest.raises(ConfigError, match="fov"):
        point_cloud(disparity, np.zeros((2, 2, 3), np.uint8), fov=180)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 6)),
              elements=st.floats(-1e6, 1e6, width=32)))
def test_minmax_normalize_is_bounded_and_finite(values):
    out = minmax_normalize(values)
    assert out.shape == values.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    if values.max() > values.min():
        assert out.flat[np.argmax(values)] == 1 and out.flat[np.argmin(values)] == 0
    else:
        assert (out == 0).all()  # constant maps (and 1x1 images) give zeros, not NaN
    assert colorize(values, "gray").shape == (*values.shape, 3)


def test_minmax_normalize_ignores_non_finite():
    values = np.array([[np.nan, 1.0], [np.inf, 3.0]], np.float32)
    np.testing.assert_array_equal(minmax_normalize(values), [[0, 0], [0, 1]])
    np.testing.assert_array_equal(minmax_normalize(np.full((2, 2), np.nan)), np.zeros((2, 2)))


def test_colorize_with_fixed_range_and_gray():
    gray = colorize(np.array([[0.0, 1.0, 2.0]], np.float32), "gray", lo=0.0, hi=4.0)
    np.testing.assert_array_equal(gray[0, :, 0], [0, 64, 128])
    assert side_by_side(np.zeros((2, 3, 3)), np.zeros((2, 3))).shape == (2, 6, 3)


def test_parse_formats_and_colormaps():
    assert parse_formats("pfm, color,pfm") == ("pfm", "color")
    with pytest.raises(ConfigError, match="jpeg"):
        parse_formats("pfm,jpeg")
    with pytest.raises(ConfigError):
        parse_formats(",")
    with pytest.raises(ConfigError, match="colormap"):
        colorize(np.zeros((2, 2)), "rainbow")


def test_compiled_predictor_matches_eager(tiny_model):
    from mixdepth.inference import Predictor, max_relative_difference

    image = np.random.default_rng(0).random((48, 80, 3)).astype(np.float32)
    eager = Predictor(tiny_model, optimize=False).predict(image)
    compiled = Predictor(tiny_model, compile=True)
    first = compiled.predict(image)
    assert first.shape == (48, 80) and first.dtype == np.float32
    assert max_relative_difference(torch.from_numpy(first), torch.from_numpy(eager)) <= 1e-4
    # the original module is left untouched (compiling works on a folded copy)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in tiny_model.modules())
    if not torch.backends.mkldnn.is_available():
        return
    # weights are frozen into the graph: convolutions run as fused, prepacked oneDNN kernels
    with torch.profiler.profile() as profile:
        compiled.predict(image)
    names = {event.key for event in profile.key_averages()}
    assert any(name.startswith("mkldnn::_convolution_pointwise") for name in names), names

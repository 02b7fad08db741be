import numpy as np
import pytest
import torch

from mixdepth.data import Sample, Space, depth_to_disparity, to_disparity_target
from mixdepth.data.transforms import network_input_shape


def test_depth_to_disparity_numpy_and_torch_agree():
    depth = np.array([[2.0, 0.0], [np.inf, 4.0]], dtype=np.float32)
    mask = np.array([[True, True], [True, False]])
    disp, valid = depth_to_disparity(depth, mask)
    np.testing.assert_array_equal(valid, [[True, False], [False, False]])
    np.testing.assert_allclose(disp, [[0.5, 0.0], [0.0, 0.0]])
    tdisp, tvalid = depth_to_disparity(torch.from_numpy(depth), torch.from_numpy(mask))
    np.testing.assert_allclose(tdisp.numpy(), disp)
    np.testing.assert_array_equal(tvalid.numpy(), valid)
    assert np.isfinite(disp).all()


@pytest.mark.parametrize("space", list(Space))
def test_to_disparity_target_per_space(space):
    target = np.array([[2.0, 4.0, np.nan]], dtype=np.float32)
    mask = np.array([[True, True, True]])
    sample = Sample(np.zeros((1, 3, 3), np.float32), target, mask, space)
    disp, valid = to_disparity_target(sample)
    assert disp.dtype == np.float32 and np.isfinite(disp).all()
    if space is Space.ORDINAL:
        assert not valid.any()
    elif space.is_depth:
        np.testing.assert_allclose(disp, [[0.5, 0.25, 0.0]])
        np.testing.assert_array_equal(valid, [[True, True, False]])
    else:
        np.testing.assert_allclose(disp, [[2.0, 4.0, 0.0]])
        np.testing.assert_array_equal(valid, [[True, True, False]])


@pytest.mark.parametrize(
    ("hw", "target", "mode", "expected"),
    [
        ((480, 640), 384, "upper_bound", (288, 384)),
        ((480, 640), 384, "lower_bound", (384, 512)),
        ((480, 640), 384, "minimal", (384, 512)),
        ((1000, 500), 256, "upper_bound", (256, 128)),
        ((384, 384), 384, "upper_bound", (384, 384)),
        ((2, 3000), 384, "upper_bound", (32, 384)),
    ],
)
def test_network_input_shape(hw, target, mode, expected):
    assert network_input_shape(*hw, target=target, mode=mode) == expected


def test_network_input_shape_always_multiple_of_32():
    rng = np.random.default_rng(0)
    for h, w in rng.integers(1, 3000, size=(200, 2)):
        for mode in ("upper_bound", "lower_bound", "minimal"):
            nh, nw = network_input_shape(int(h), int(w), 384, mode=mode)
            assert nh % 32 == 0 and nw % 32 == 0 and nh > 0 and nw > 0
            if mode == "upper_bound":
                assert nh <= 384 and nw <= 384

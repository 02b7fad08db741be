"""Each personality's defining property, on renders of the training families."""

import numpy as np
import pytest

from mixdepth.synthetic.personalities import PERSONALITIES, depth_edges, get_personality
from mixdepth.synthetic.writer import make_sample

SIZE = 64


def _samples(name, count, seed=0, families=None):
    families = families or PERSONALITIES[name].families
    return [make_sample(name, tuple(families), seed, SIZE, i)[:2] for i in range(count)]


def test_indoor_rgbd_range_holes_and_growing_noise():
    near_err, far_err = [], []
    for r, a in _samples("indoor-rgbd", 4):
        t, m = a.target, a.mask
        assert m.any() and (t[m] >= 0.4).all() and (t[m] <= 10.0).all()
        assert (t[~m] == 0).all()
        assert not (m & depth_edges(r.depth, r.mask)).any()  # holes at depth edges
        assert not (m & (r.albedo < 0.04)).any()  # holes on dark surfaces
        assert not (m & (r.specular > 0.5) & (np.abs(r.normal[..., 2]) > 0.8)).any()
        err = np.abs(t - r.depth)
        near_err.append(err[m & (r.depth < 1.5)])
        far_err.append(err[m & (r.depth > 3.0)])
    assert np.mean(np.concatenate(far_err)) > 2 * np.mean(np.concatenate(near_err))


def test_street_lidar_sparse_lines_in_the_bottom_part_only():
    for r, a in _samples("street-lidar", 4):
        m = a.mask
        assert 0 < m.mean() < 0.3  # sparse
        assert not m[: SIZE // 4].any()  # nothing in the top quarter (beams end at +2 deg)
        assert (a.target[m] <= 80).all() and not (m & ~r.mask).any()
        assert np.abs(a.target[m] - r.depth[m]).max() < 0.15
        rows = m.any(1)
        assert rows.sum() < 0.6 * SIZE  # scan lines, not a dense band


def test_sfm_depth_up_to_an_unknown_scale_with_outliers_and_no_sky():
    scales, outliers = [], 0
    for r, a in _samples("sfm", 4):
        m = a.mask
        assert not (m & ~r.mask).any()  # no sky
        ratio = a.target[m] / r.depth[m]
        s = np.median(ratio)
        inliers = np.abs(ratio / s - 1) < 1e-4
        assert inliers.mean() > 0.8
        outliers += int((~inliers).sum())
        scales.append(s)
        assert m.mean() < r.mask.mean()  # holes
    assert max(scales) / min(scales) > 1.5  # the scale differs per image
    assert outliers > 0


def test_web_stereo_disparity_up_to_scale_sky_invalid():
    for r, a in _samples("web-stereo", 3):
        m = a.mask
        assert not (m & ~r.mask).any()
        product = a.target[m] * r.depth[m]  # disparity * depth = the unknown scale
        assert np.std(product) / np.mean(product) < 0.02
        assert a.target[m].max() <= 1.0


def test_movies_3d_disparity_up_to_scale_and_shift_borders_invalid():
    shifts = []
    for r, a in _samples("movies-3d", 4):
        m = a.mask
        assert not m[:, 0].any() and not m[:, -1].any()  # frame borders
        assert not (m & ~r.mask).any()  # sky
        x = 1.0 / r.depth[m]
        design = np.stack([x, np.ones_like(x)], 1)
        (scale, shift), *_ = np.linalg.lstsq(design, a.target[m], rcond=None)
        residual = a.target[m] - design @ np.array([scale, shift])
        assert np.abs(residual).max() < 1e-3 * np.abs(a.target[m]).max()
        assert scale > 0
        shifts.append(shift / np.abs(a.target[m]).mean())
    assert max(np.abs(shifts)) > 0.05  # a real shift, not just a scale


def test_ordinal_pairs_agree_with_exact_depth():
    for r, a in _samples("ordinal", 5):
        assert not a.mask.any() and a.pairs.shape[1] == 5
        depth = np.where(r.mask, r.depth, np.inf)
        for ya, xa, yb, xb, label in a.pairs:
            assert label == (1 if depth[ya, xa] < depth[yb, xb] else -1)
            assert depth[ya, xa] != depth[yb, xb]


def test_exact_is_the_rendered_depth():
    for r, a in _samples("exact", 2):
        np.testing.assert_array_equal(a.mask, r.mask)
        np.testing.assert_array_equal(a.target[a.mask], r.depth[r.mask])


def test_unknown_personality_is_a_config_error():
    from mixdepth.errors import ConfigError

    with pytest.raises(ConfigError, match="personality"):
        get_personality("kinect")

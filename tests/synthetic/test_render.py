"""Renderer: exact z-depth, culling equals brute force, determinism, no brightness shortcut."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixdepth.synthetic import FAMILIES, TRAIN_FAMILIES, render_family
from mixdepth.synthetic.render import (
    _hit_box,
    _hit_cylinder,
    _hit_sphere,
    cast_primary,
    luminance_depth_correlation,
    shade,
)
from mixdepth.synthetic.scenes import SceneBuilder, make_camera, outdoor_lighting


def _camera_at_origin(size=32, pitch=0.0):
    rng = np.random.default_rng(0)
    return make_camera(rng, size, size, (0, 0, 1.0), 0.0, pitch, 0.0, fov=(60, 60))


def test_fronto_parallel_wall_has_constant_z_depth():
    rng = np.random.default_rng(1)
    b = SceneBuilder(rng, n_textures=2)
    b.plane((0, -1, 0), -7.5, b.material())  # the plane y = 7.5, facing the camera
    scene = b.build(_camera_at_origin(), **outdoor_lighting(rng))
    hits = cast_primary(scene)
    assert np.allclose(hits.t, 7.5, rtol=1e-5)  # z-depth, not distance along the ray


def test_sphere_depth_at_the_image_centre():
    rng = np.random.default_rng(2)
    b = SceneBuilder(rng, n_textures=2)
    b.sphere((0, 6.0, 1.0), 1.5, b.material())
    camera = _camera_at_origin(size=33)
    camera.intrinsics[:2, 2] = 16.5  # principal point exactly at the centre pixel
    scene = b.build(camera, **outdoor_lighting(rng))
    t = cast_primary(scene).t.reshape(33, 33)
    assert t[16, 16] == pytest.approx(4.5, rel=1e-4)
    assert np.isinf(t[0, 0])  # the corner ray misses the sphere: sky


def test_pitch_up_moves_the_horizon_down():
    level = _camera_at_origin(pitch=0.0).ray_directions()[:, 2].reshape(32, 32)
    up = _camera_at_origin(pitch=0.3).ray_directions()[:, 2].reshape(32, 32)
    assert (up[:, 16] > level[:, 16]).all()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_culling_gives_exactly_the_brute_force_result(family):
    scene = FAMILIES[family](np.random.default_rng([3, len(family)]), 40, 40)
    fast, g_fast = shade(scene, culling=True)
    slow, g_slow = shade(scene, culling=False)
    np.testing.assert_array_equal(g_fast["depth"], g_slow["depth"])
    np.testing.assert_array_equal(fast, slow)  # includes the shadow rays


@pytest.mark.parametrize("family", list(FAMILIES))
def test_render_outputs_and_determinism(family):
    a = render_family(family, np.random.default_rng(7), 32, 40)
    b = render_family(family, np.random.default_rng(7), 32, 40)
    assert a.image.shape == (32, 40, 3) and a.image.dtype == np.float32
    assert a.depth.shape == (32, 40) and a.mask.dtype == bool
    assert 0 <= a.image.min() and a.image.max() <= 1
    assert np.isfinite(a.depth[a.mask]).all() and (a.depth[a.mask] > 0).all()
    assert np.isinf(a.depth[~a.mask]).all()
    assert a.intrinsics.shape == (3, 3)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.depth, b.depth)


def test_field_of_view_is_random_within_40_to_100_degrees():
    fovs = []
    for i in range(15):
        r = render_family(TRAIN_FAMILIES[i % len(TRAIN_FAMILIES)], np.random.default_rng(i),
                          16, 16)
        fovs.append(2 * np.degrees(np.arctan(8 / r.intrinsics[0, 0])))
    assert 40 <= min(fovs) and max(fovs) <= 100 and np.ptp(fovs) > 15


def test_brightness_does_not_encode_depth():
    renders = [
        render_family(TRAIN_FAMILIES[i % len(TRAIN_FAMILIES)], np.random.default_rng([11, i]),
                      40, 40)
        for i in range(25)
    ]
    assert abs(luminance_depth_correlation(renders)) < 0.3


def _unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


@settings(max_examples=40, deadline=None)
@given(
    half=st.tuples(*[st.floats(0.1, 3.0)] * 3),
    angles=st.tuples(*[st.floats(-np.pi, np.pi)] * 3),
    target=st.tuples(*[st.floats(-0.9, 0.9)] * 3),
)
def test_box_hit_points_lie_on_the_box_surface(half, angles, target):
    from mixdepth.synthetic.scenes import random_rotation

    rot = random_rotation(np.random.default_rng(int(1000 * (angles[0] + 4))))
    half = np.array(half, np.float32)
    center = np.array([0.0, 10.0, 0.0], np.float32)
    aim = center + rot.T @ (np.array(target, np.float32) * half)  # a point inside the box
    origin = np.zeros((1, 3), np.float32)
    d = aim[None].astype(np.float32)
    t = _hit_box(origin, d, center, rot, half)
    assert np.isfinite(t[0])
    local = rot @ (origin[0] + t[0] * d[0] - center)
    assert np.max(np.abs(local) / half) == pytest.approx(1.0, abs=1e-3)


@settings(max_examples=40, deadline=None)
@given(radius=st.floats(0.1, 3.0), offset=st.tuples(*[st.floats(-0.95, 0.95)] * 2))
def test_sphere_and_cylinder_hits_lie_on_their_surfaces(radius, offset):
    center = np.array([0.0, 8.0, 0.0], np.float32)
    aim = center + np.array([offset[0] * radius, 0, offset[1] * radius], np.float32) * 0.7
    origin = np.zeros((1, 3), np.float32)
    d = aim[None]
    t = _hit_sphere(origin, d, center, np.float32(radius))[0]
    assert np.linalg.norm(t * d[0] - center) == pytest.approx(radius, rel=1e-3)
    rot = np.eye(3, dtype=np.float32)
    t = _hit_cylinder(origin, d, center, rot, np.float32(radius), np.float32(radius))[0]
    p = t * d[0] - center
    on_side = abs(np.hypot(p[0], p[1]) - radius) < 1e-3 * radius
    on_cap = abs(abs(p[2]) - radius) < 1e-3 * radius
    assert on_side or on_cap


def _stripes_bank():
    """A bank with one texture: 4 vertical stripe periods per repeat, with mip levels."""
    from mixdepth.synthetic.textures import MIP_LEVELS, TEXTURE_SIZE, TextureBank

    x = np.arange(TEXTURE_SIZE) / TEXTURE_SIZE
    tex = np.repeat((0.5 + 0.4 * np.sign(np.sin(2 * np.pi * 4 * x)))[None, :, None], 3, 2)
    tex = np.repeat(tex, TEXTURE_SIZE, 0).astype(np.float32)
    levels, sizes = [], []
    for _ in range(MIP_LEVELS):
        levels.append(tex.reshape(-1, 3))
        sizes.append(tex.shape[0])
        s = tex.shape[0] // 2
        tex = tex.reshape(s, 2, s, 2, 3).mean(axis=(1, 3))
    offsets = np.cumsum([0] + [len(v) for v in levels[:-1]])[None]
    return TextureBank(np.concatenate(levels), offsets, np.array(sizes))


def _stripe_period_pixels(distance: float) -> float:
    rng = np.random.default_rng(4)
    b = SceneBuilder(rng, n_textures=1)
    mat = b.material(scale=(2.0, 2.0), dark_p=0.0, specular_p=0.0, tint=np.ones(3))
    b.plane((0, -1, 0), -distance, mat)
    scene = b.build(_camera_at_origin(size=128), **outdoor_lighting(rng))
    scene.textures = _stripes_bank()
    scene.tex_id[:] = 0
    _, g = shade(scene)
    row = g["albedo"][64] - g["albedo"][64].mean()
    spectrum = np.abs(np.fft.rfft(row))
    return 128 / (np.argmax(spectrum[1:]) + 1)


def test_texture_scale_is_in_world_units():
    # 2 m per repeat, 4 stripes per repeat: 0.5 m stripes; twice as far -> half the period.
    near, far = _stripe_period_pixels(6.0), _stripe_period_pixels(12.0)
    assert near == pytest.approx(2 * far, rel=0.15)
    # 0.5 m stripes at 6 m are 0.5 * f / 6 pixels wide (mirrored tiling merges the two
    # stripes at each tile seam, which shifts the spectral peak a little)
    focal = 64 / np.tan(np.radians(30))
    assert near == pytest.approx(0.5 * focal / 6.0, rel=0.2)


def test_luminance_depth_correlation_detects_a_brightness_shortcut():
    renders = [
        render_family(TRAIN_FAMILIES[i % 3], np.random.default_rng([12, i]), 24, 24)
        for i in range(6)
    ]
    for r in renders:  # make far pixels darker: the statistic must see it
        grey = np.where(r.mask, 1 / (1 + np.log1p(np.where(r.mask, r.depth, 0))), 0)
        r.image = np.repeat(grey[..., None], 3, axis=-1).astype(np.float32)
    assert luminance_depth_correlation(renders) < -0.8

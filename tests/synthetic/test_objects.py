"""Object-centric families (tabletop, objects, still-life), lens blur and the photo bank."""

import numpy as np
import pytest

from mixdepth.synthetic import FAMILIES, HELDOUT_FAMILIES, TRAIN_FAMILIES, render_family
from mixdepth.synthetic.personalities import PERSONALITIES
from mixdepth.synthetic.render import lens_blur
from mixdepth.synthetic.textures import PHOTO_NAMES, TEST_PHOTOS, load_photos, photo_paths

OBJECT_FAMILIES = ("tabletop", "objects")


def _forward(scene) -> np.ndarray:
    return scene.camera.rotation[:, 2]  # the camera's viewing axis in world coordinates


def test_object_families_feed_training_and_still_life_is_held_out():
    assert set(OBJECT_FAMILIES) <= set(TRAIN_FAMILIES)
    assert "still-life" in HELDOUT_FAMILIES and "still-life" not in TRAIN_FAMILIES
    for name in ("exact", "web-stereo", "movies-3d", "ordinal", "sfm", "indoor-rgbd"):
        assert set(OBJECT_FAMILIES) <= set(PERSONALITIES[name].families), name
    for p in PERSONALITIES.values():
        assert not set(p.families) & set(HELDOUT_FAMILIES)


def test_tabletop_camera_is_close_and_looks_down():
    for i in range(12):
        scene = FAMILIES["tabletop"](np.random.default_rng([21, i]), 8, 8)
        pitch = np.degrees(np.arcsin(_forward(scene)[2]))
        assert -62 < pitch < 0
        table = scene.boxes["center"][0, 2] + scene.boxes["half"][0, 2]  # table top height
        above = scene.camera.position[2] - table
        assert 0.4 * np.sin(np.radians(10)) - 1e-3 < above < 1.5 * np.sin(np.radians(50)) + 1e-3
        assert len(scene.boxes["ids"]) + len(scene.cylinders["ids"]) + len(
            scene.spheres["ids"]) >= 7  # table (top + 4 legs) and objects


def test_objects_camera_heights_and_directions_vary():
    pitches = []
    for i in range(20):
        scene = FAMILIES["objects"](np.random.default_rng([22, i]), 8, 8)
        pitches.append(np.degrees(np.arcsin(_forward(scene)[2])))
    pitches = np.array(pitches)
    assert (pitches > 3).any() and (pitches < -3).any() and (np.abs(pitches) < 8).any()


@pytest.mark.parametrize("family", [*OBJECT_FAMILIES, "still-life"])
def test_object_families_have_near_objects_and_occlusion_edges(family):
    edges, near = [], []
    for i in range(4):
        r = render_family(family, np.random.default_rng([23, i]), 48, 48)
        z = np.where(r.mask, r.depth, 1e3)
        jump = np.maximum(z[:, 1:], z[:, :-1]) / np.minimum(z[:, 1:], z[:, :-1]) > 1.15
        edges.append(jump.mean())
        near.append(np.median(r.depth[r.mask]) if r.mask.any() else np.inf)
    assert np.mean(edges) > 0.01  # depth discontinuities at object outlines
    assert np.median(near) < 8.0  # object-scale, not street-scale, distances


def _two_plane_scene(size=256):
    yy, xx = np.indices((size, size))
    checker = ((yy // 2 + xx // 2) % 2).astype(np.float32)
    radiance = np.repeat(checker[..., None], 3, -1)
    depth = np.where(xx < size // 2, 1.0, 10.0).astype(np.float32)
    return radiance, depth


def test_defocus_keeps_the_focused_depth_sharp_and_blurs_the_other():
    radiance, depth = _two_plane_scene()
    for seed in range(4):
        out = lens_blur(radiance, depth, np.random.default_rng(seed), defocus_p=1.0,
                        motion_p=0.0)
        assert out.shape == radiance.shape and out.dtype == np.float32
        left = np.array_equal(out[:, :120], radiance[:, :120])
        right = np.array_equal(out[:, 136:], radiance[:, 136:])
        assert left != right  # exactly one plane is in focus
        blurred = out[:, 136:] if left else out[:, :120]
        assert blurred.std() < 0.8 * radiance.std()


def test_no_lens_blur_when_disabled_and_motion_blur_smears():
    radiance, depth = _two_plane_scene()
    rng = np.random.default_rng(0)
    same = lens_blur(radiance, depth, rng, defocus_p=0.0, motion_p=0.0)
    np.testing.assert_array_equal(same, radiance)
    moved = lens_blur(radiance, depth, np.random.default_rng(1), defocus_p=0.0, motion_p=1.0)
    assert moved.std() < 0.9 * radiance.std()
    assert moved.mean() == pytest.approx(radiance.mean(), abs=0.02)


def test_lens_blur_changes_the_image_but_not_the_depth():
    # some renders of a set are blurred; depth is the rendered depth regardless
    from mixdepth.synthetic.render import render as render_scene

    scene = FAMILIES["tabletop"](np.random.default_rng(5), 32, 32)
    depths = {render_scene(scene, np.random.default_rng(k)).depth.tobytes() for k in range(3)}
    assert len(depths) == 1


def test_test_case_photographs_are_never_textures():
    assert not set(PHOTO_NAMES) & set(TEST_PHOTOS)
    paths = photo_paths()
    assert len(paths) >= 10
    assert not {p.name for p in paths} & set(TEST_PHOTOS)
    assert {"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"} <= set(TEST_PHOTOS)
    assert len(load_photos()) == len(paths)

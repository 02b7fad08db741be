"""Joint transforms: flips flip the disparity the same way, resizing never validates an
invalid pixel, crops and flips carry pairs and intrinsics along, collate builds batches."""

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mixdepth.data import Sample, Space, to_disparity_target
from mixdepth.data.collate import collate_samples
from mixdepth.data.transforms import (
    EvalTransform,
    TrainTransform,
    crop_sample,
    hflip_sample,
    network_input_shape,
    resize_sample,
    resize_target,
)


def _sample(h=16, w=24, seed=0, space=Space.METRIC_DEPTH, holes=0.3):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(1.0, 10.0, (h, w)).astype(np.float32)
    mask = rng.random((h, w)) > holes
    pairs = np.array([[1, 2, 3, 4, 1], [h - 1, w - 1, 0, 0, -1]], dtype=np.int64)
    k = np.array([[20, 0, 11.5], [0, 20, 7.5], [0, 0, 1]], dtype=np.float32)
    return Sample(
        image=rng.random((h, w, 3)).astype(np.float32),
        target=np.where(mask, depth, 0).astype(np.float32),
        mask=mask,
        space=space,
        dataset="fixture",
        id=f"s{seed}",
        pairs=pairs,
        intrinsics=k,
    )


def test_flip_flips_disparity_the_same_way():
    sample = _sample()
    flipped = hflip_sample(sample)
    disparity, mask = to_disparity_target(sample)
    flipped_disparity, flipped_mask = to_disparity_target(flipped)
    np.testing.assert_array_equal(flipped_disparity, disparity[:, ::-1])
    np.testing.assert_array_equal(flipped_mask, mask[:, ::-1])
    np.testing.assert_array_equal(flipped.image, sample.image[:, ::-1])
    # Pair points keep their pixel: the value under each point is unchanged by the flip.
    for (ya, xa, yb, xb, _), (fya, fxa, fyb, fxb, _) in zip(
        sample.pairs, flipped.pairs, strict=True
    ):
        assert sample.target[ya, xa] == flipped.target[fya, fxa]
        assert sample.target[yb, xb] == flipped.target[fyb, fxb]
    assert flipped.intrinsics[0, 2] == pytest.approx(23 - 11.5)
    np.testing.assert_array_equal(hflip_sample(flipped).target, sample.target)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    out_h=st.integers(1, 40),
    out_w=st.integers(1, 40),
    mode=st.sampled_from(["nearest", "masked_bilinear"]),
    seed=st.integers(0, 1000),
)
@example(h=18, w=3, out_h=33, out_w=1, mode="nearest", seed=0)  # a pixel centre on a tie
def test_resize_never_validates_invalid_pixels(h, w, out_h, out_w, mode, seed):
    rng = np.random.default_rng(seed)
    target = rng.uniform(1, 5, (h, w)).astype(np.float32)
    mask = rng.random((h, w)) > 0.5
    target[~mask] = 1e6  # garbage under invalid pixels must never leak into valid ones
    new_target, new_mask = resize_target(target, mask, (out_h, out_w), mode)
    assert new_target.shape == new_mask.shape == (out_h, out_w)
    # Each output pixel samples one input pixel (pixel centres): valid only if it is valid.
    # Sampling at pixel centres: output i reads input floor((i + 0.5) * in / out).
    rows = np.minimum((2 * np.arange(out_h) + 1) * h // (2 * out_h), h - 1)
    cols = np.minimum((2 * np.arange(out_w) + 1) * w // (2 * out_w), w - 1)
    assert not (new_mask & ~mask[np.ix_(rows, cols)]).any()
    if new_mask.any():
        values = new_target[new_mask]
        assert values.min() >= target[mask].min() - 1e-4
        assert values.max() <= target[mask].max() + 1e-4
    assert (new_target[~new_mask] == 0).all()


def test_masked_bilinear_averages_only_valid_neighbours():
    target = np.array([[1.0, 3.0], [5.0, 100.0]], dtype=np.float32)
    mask = np.array([[True, True], [True, False]])
    up, up_mask = resize_target(target, mask, (4, 4), "masked_bilinear")
    assert up_mask.sum() == 12 and not up_mask[2:, 2:].any()
    assert up[up_mask].max() <= 5.0
    np.testing.assert_allclose(up[0, 0], 1.0)


def test_resize_scales_pairs_and_intrinsics():
    sample = _sample(16, 24)
    big = resize_sample(sample, (32, 48))
    np.testing.assert_array_equal(big.pairs[:, :4], [[3, 5, 7, 9], [31, 47, 1, 1]])
    assert big.intrinsics[0, 0] == pytest.approx(40) and big.intrinsics[0, 2] == pytest.approx(23.5)
    assert big.image.shape == (32, 48, 3) and big.image.min() >= 0 and big.image.max() <= 1


def test_crop_drops_pairs_outside():
    cropped = crop_sample(_sample(16, 24), 1, 2, 8, 8)
    np.testing.assert_array_equal(cropped.pairs, [[0, 0, 2, 2, 1]])
    assert cropped.target.shape == (8, 8) and cropped.intrinsics[0, 2] == pytest.approx(9.5)


def test_train_transform_shapes_and_determinism():
    sample = _sample(40, 60)
    outputs = []
    for _ in range(2):
        transform = TrainTransform(size=32, generator=torch.Generator().manual_seed(5))
        outputs.append(transform(sample))
    a, b = outputs
    assert a.image.shape == (32, 32, 3) and a.target.shape == a.mask.shape == (32, 32)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.target, b.target)
    # Jitter changes the image only: target values are still values of the input.
    assert np.isin(a.target[a.mask], sample.target[sample.mask]).all()
    plain = TrainTransform(size=32, flip=False, jitter=False)(_sample(32, 32))
    np.testing.assert_array_equal(plain.target, _sample(32, 32).target)


def test_train_transform_zoom_crops_a_smaller_part_of_the_scene():
    ramp = np.repeat(np.linspace(1.0, 2.0, 64, dtype=np.float32)[:, None], 64, axis=1)
    sample = Sample(image=np.zeros((64, 64, 3), np.float32), target=ramp,
                    mask=np.ones((64, 64), bool), space=Space.METRIC_DEPTH)
    generator = torch.Generator().manual_seed(0)
    spans = []
    for _ in range(20):
        out = TrainTransform(size=64, flip=False, jitter=False, zoom=2.0, generator=generator)(
            sample
        )
        assert out.target.shape == (64, 64)
        spans.append(float(out.target.max() - out.target.min()))
    # the whole ramp spans 1; an image enlarged by f in [1, 2] and cropped back spans about 1/f
    assert max(spans) <= 1.0 and min(spans) < 0.7 and np.mean(spans) < 0.85
    # zoom 1 draws nothing extra: the same generator state gives the same crop as before
    a = TrainTransform(size=32, generator=torch.Generator().manual_seed(5))(_sample(40, 60))
    b = TrainTransform(size=32, zoom=1.0, generator=torch.Generator().manual_seed(5))(
        _sample(40, 60)
    )
    np.testing.assert_array_equal(a.image, b.image)
    with pytest.raises(ValueError, match="zoom"):
        TrainTransform(size=32, zoom=0.5)


def test_train_transform_uses_lower_bound_rule():
    sample = _sample(30, 100, holes=0.0)
    out = TrainTransform(size=64, flip=False, jitter=False, generator=torch.Generator())(sample)
    assert out.image.shape[:2] == (64, 64)
    assert network_input_shape(30, 100, 64, mode="lower_bound")[0] >= 64


def test_eval_transform_keeps_full_resolution_target():
    sample = _sample(40, 60)
    out = EvalTransform(size=64)(sample)
    assert out.image.shape[:2] == network_input_shape(40, 60, 64, mode="upper_bound")
    assert out.target.shape == (40, 60) and out.extras["original_size"] == (40, 60)


def test_collate_samples():
    samples = [_sample(seed=i) for i in range(3)]
    samples[1] = dataclasses.replace(samples[1], pairs=None, space=Space.DISPARITY_UP_TO_SCALE)
    batch = collate_samples(samples)
    assert batch["image"].shape == (3, 3, 16, 24) and batch["image"].dtype == torch.float32
    assert batch["disparity"].shape == (3, 16, 24) and batch["mask"].dtype == torch.bool
    disparity, mask = to_disparity_target(samples[0])
    np.testing.assert_array_equal(batch["disparity"][0].numpy(), disparity)
    assert batch["pairs"][1].shape == (0, 5) and batch["pairs"][0].dtype == torch.int64
    assert batch["id"] == ["s0", "s1", "s2"] and batch["space"][1] == "disparity_up_to_scale"
    with pytest.raises(ValueError, match="different sizes"):
        collate_samples([_sample(16, 24), _sample(8, 8)])


def test_jitter_matches_stepwise_definition_and_keeps_range():
    from mixdepth.data.transforms import jitter_image

    image = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    b, c, s = 1.1, 0.8, 1.3
    luma = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    step = image * b
    step = (step - (step @ luma).mean()) * c + (step @ luma).mean()
    step = (step - (step @ luma)[..., None]) * s + (step @ luma)[..., None]
    np.testing.assert_allclose(jitter_image(image, b, c, s), np.clip(step, 0, 1), atol=1e-5)
    np.testing.assert_allclose(jitter_image(image, 1, 1, 1), image, atol=1e-6)


def test_resize_image_keeps_constant_images_constant():
    from mixdepth.data.transforms import resize_image

    image = np.full((20, 30, 3), 0.25, dtype=np.float32)
    for size in ((7, 9), (40, 64)):
        np.testing.assert_allclose(resize_image(image, size), 0.25, atol=1e-6)

"""NYUv2 (labeled .mat + official split), ETH3D, DIODE, TartanAir and BlendedMVS."""

import numpy as np
import pytest
from data_layouts import make_blendedmvs, make_diode, make_eth3d, make_nyu, make_tartanair

from mixdepth.data import EIGEN_CROP_NYU, Space, apply_eval_crop, create_dataset, crop_box
from mixdepth.data.splits import read_split
from mixdepth.errors import FileFormatError


@pytest.fixture
def rng():
    return np.random.default_rng(3)


def _by_id(dataset):
    return {s.id: s for s in dataset}


def test_shipped_nyu_split_is_official():
    test = [int(v) for v in read_split("nyu_test.txt")]
    assert len(test) == 654 and len(set(test)) == 654
    assert test[:5] == [1, 2, 9, 14, 15] and max(test) <= 1449
    kitti = read_split("kitti_eigen_test.txt")
    assert len(kitti) == 697 and sum("None" not in ln for ln in kitti) == 652


def test_nyu_labeled_splits(tmp_path, rng):
    images, depths = make_nyu(tmp_path, rng, n=12)
    test = create_dataset("nyu", tmp_path, split="test")
    # Of indices 1..12 the official test split holds 1, 2 and 9.
    assert [s.id for s in test] == ["0001", "0002", "0009"]
    sample = test[2]
    np.testing.assert_array_equal(sample.image, images[8].astype(np.float32) / 255)
    valid = depths[8] <= 10.0
    np.testing.assert_array_equal(sample.mask, valid)
    np.testing.assert_array_equal(sample.target[valid], depths[8][valid])
    assert test.space is Space.METRIC_DEPTH
    train = create_dataset("nyu", tmp_path / "nyu_depth_v2_labeled.mat", split="train")
    assert len(train) == 9 and train[0].id == "0003"


def test_nyu_eigen_crop():
    assert crop_box(480, 640, EIGEN_CROP_NYU) == (45, 471, 41, 601)
    mask = apply_eval_crop(np.ones((480, 640), bool), EIGEN_CROP_NYU)
    assert mask.sum() == (471 - 45) * (601 - 41)
    assert mask[45, 41] and not mask[44, 41] and not mask[45, 601]


def test_eth3d(tmp_path, rng):
    truth = make_eth3d(tmp_path, rng)
    dataset = create_dataset("eth3d", tmp_path)
    for sample_id, sample in _by_id(dataset).items():
        image, depth = truth[sample_id]
        valid = np.isfinite(depth) & (depth <= 72)
        np.testing.assert_array_equal(sample.mask, valid)
        np.testing.assert_array_equal(sample.target[valid], depth[valid])
    path = tmp_path / "courtyard/ground_truth_depth/dslr_images/DSC_0000.JPG"
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(FileFormatError, match="DSC_0000.JPG.*wrong size"):
        dataset[0]


def test_diode(tmp_path, rng):
    truth = make_diode(tmp_path, rng)
    dataset = create_dataset("diode", tmp_path, split="val")
    assert len(dataset) == 2
    assert len(create_dataset("diode", tmp_path, split="val/outdoors")) == 1
    for sample_id, sample in _by_id(dataset).items():
        image, depth, mask = truth[sample_id]
        np.testing.assert_array_equal(sample.mask, mask)
        np.testing.assert_array_equal(sample.target[mask], depth[mask])
    victim = next(tmp_path.rglob("*indoors_000_depth_mask.npy"))
    victim.unlink()
    with pytest.raises(FileFormatError, match="indoors_000.png.*missing partner.*_depth_mask"):
        create_dataset("diode", tmp_path, split="val/indoors")[0]


def test_tartanair_masks_sky(tmp_path, rng):
    truth = make_tartanair(tmp_path, rng)
    for sample_id, sample in _by_id(create_dataset("tartanair", tmp_path)).items():
        image, depth = truth[sample_id]
        assert not sample.mask[0].any() and sample.mask[1:].all()
        np.testing.assert_array_equal(sample.target[1:], depth[1:])


def test_blendedmvs(tmp_path, rng):
    truth = make_blendedmvs(tmp_path, rng)
    dataset = create_dataset("blendedmvs", tmp_path)
    assert dataset.space is Space.DEPTH_UP_TO_SCALE
    for sample_id, sample in _by_id(dataset).items():
        image, depth = truth[sample_id]
        np.testing.assert_array_equal(sample.mask, depth > 0)
        np.testing.assert_array_equal(sample.target, depth)
        assert sample.intrinsics[1, 1] == 41


def test_nyu_from_tar_archive(tmp_path, rng):
    import tarfile

    images, depths = make_nyu(tmp_path / "nyu", rng, n=3)
    with tarfile.open(tmp_path / "nyu.tar", "w") as tar:
        tar.add(tmp_path / "nyu", arcname="nyu")
    dataset = create_dataset("nyu", tmp_path / "nyu.tar", split="all")
    assert len(dataset) == 3
    np.testing.assert_array_equal(dataset[1].image, images[1].astype(np.float32) / 255)


def test_nyu_png_extraction_layout(tmp_path, rng):
    from data_layouts import rgb, save_rgb, save_u16

    truth = {}
    for split, scene, n in (("test", "bathroom", "00045"), ("train", "kitchen_0001", "00003")):
        folder = tmp_path / "official_splits" / split / scene
        image, millimetres = rgb(rng), rng.integers(0, 11000, (16, 24)).astype(np.uint16)
        save_rgb(folder / f"rgb_{n}.jpg", image)
        save_u16(folder / f"sync_depth_{n}.png", millimetres)
        truth[f"{scene}/{n}"] = (image, millimetres / np.float32(1000))
    test = create_dataset("nyu", tmp_path, split="test")
    assert [s.id for s in test] == ["bathroom/00045"]
    image, depth = truth["bathroom/00045"]
    valid = (depth > 0) & (depth <= 10)
    np.testing.assert_array_equal(test[0].mask, valid)
    np.testing.assert_allclose(test[0].target[valid], depth[valid], rtol=1e-6)
    assert len(create_dataset("nyu", tmp_path, split="all")) == 2

"""Every dataset reads its fixture tree (written in the real layout) back exactly."""

import numpy as np
import pytest
from data_layouts import (
    make_diw,
    make_folder,
    make_hrwsi,
    make_kitti,
    make_megadepth,
    make_redweb,
    make_sintel,
    make_tum,
)

from mixdepth.data import Space, create_dataset, list_datasets
from mixdepth.errors import ConfigError, FileFormatError, MixdepthError


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _by_id(dataset):
    return {dataset[i].id: dataset[i] for i in range(len(dataset))}


def _check_depth(sample, image, depth, low, high):
    np.testing.assert_array_equal(sample.image, image.astype(np.float32) / 255)
    valid = (depth >= low) & (depth <= high)
    np.testing.assert_array_equal(sample.mask, valid)
    np.testing.assert_allclose(sample.target[valid], depth[valid], rtol=1e-6)
    assert (sample.target[~valid] == 0).all()


def test_registry_lists_datasets():
    names = list_datasets()
    for name in ("nyu", "kitti", "tum", "sintel", "megadepth", "hrwsi", "redweb", "diw", "folder"):
        assert name in names
    with pytest.raises(ConfigError, match="unknown dataset 'nope'"):
        create_dataset("nope", ".")


def test_tum(tmp_path, rng):
    truth = make_tum(tmp_path, rng)
    dataset = create_dataset("tum", tmp_path)
    assert dataset.space is Space.METRIC_DEPTH and len(dataset) == 3
    for sample_id, sample in _by_id(dataset).items():
        image, depth = truth[sample_id]
        _check_depth(sample, image, depth, 1e-3, 10.0)
        assert sample.intrinsics[0, 0] == pytest.approx(517.3)
    # A sequence folder itself works as the root too.
    assert len(create_dataset("tum", tmp_path / "rgbd_dataset_freiburg1_desk")) == 3


def test_tum_missing_depth_list_is_reported(tmp_path, rng):
    make_tum(tmp_path, rng)
    make_tum(tmp_path, rng, sequence="rgbd_dataset_freiburg2_xyz")
    (tmp_path / "rgbd_dataset_freiburg2_xyz" / "depth.txt").unlink()
    dataset = create_dataset("tum", tmp_path)
    assert len(dataset) == 3
    assert any("freiburg2_xyz/rgb.txt" in p and "depth.txt" in p for p in dataset.problems)


def test_kitti_splits_and_intrinsics(tmp_path, rng):
    truth = make_kitti(tmp_path, rng, frames=(5, 6), split="train")
    truth.update(make_kitti(tmp_path, rng, frames=(7,), split="val"))
    assert len(create_dataset("kitti", tmp_path, split="train")) == 2
    assert len(create_dataset("kitti", tmp_path, split="val")) == 1
    dataset = create_dataset("kitti", tmp_path, split="all")
    for sample_id, sample in _by_id(dataset).items():
        image, depth = truth[sample_id]
        _check_depth(sample, image, depth, 1e-3, 80.0)
        assert sample.intrinsics[0, 0] == pytest.approx(721.5)
        assert sample.intrinsics[1, 2] == pytest.approx(172.8)
    assert dataset.eval_crop is not None


def test_kitti_eigen_test_list(tmp_path, rng):
    # Frame 69 of drive 0002 is the first frame of the shipped Eigen test list.
    truth = make_kitti(tmp_path, rng, frames=(69, 70), split="val")
    dataset = create_dataset("kitti", tmp_path, split="eigen_test")
    assert [s.id for s in dataset] == ["2011_09_26_drive_0002_sync/image_02/0000000069"]
    image, depth = truth[dataset[0].id]
    _check_depth(dataset[0], image, depth, 1e-3, 80.0)


def test_kitti_missing_image_names_file(tmp_path, rng):
    make_kitti(tmp_path, rng, frames=(5,))
    (tmp_path / "2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000005.png").unlink()
    dataset = create_dataset("kitti", tmp_path, split="all")
    with pytest.raises(FileFormatError, match="0000000005.png.*missing partner"):
        dataset[0]


def test_megadepth(tmp_path, rng):
    truth = make_megadepth(tmp_path, rng)
    dataset = create_dataset("megadepth", tmp_path)
    assert dataset.space is Space.DEPTH_UP_TO_SCALE
    for sample_id, sample in _by_id(dataset).items():
        image, depth = truth[sample_id]
        _check_depth(sample, image, depth, 1e-6, np.inf)


def test_hrwsi_and_redweb(tmp_path, rng):
    truth = make_hrwsi(tmp_path / "hrwsi", rng, split="val")
    dataset = create_dataset("hrwsi", tmp_path / "hrwsi", split="val")
    assert dataset.space is Space.DISPARITY_UP_TO_SCALE_AND_SHIFT
    for sample_id, sample in _by_id(dataset).items():
        image, disparity, valid = truth[sample_id]
        np.testing.assert_array_equal(sample.mask, valid)
        np.testing.assert_array_equal(sample.target[valid], disparity[valid])
    with pytest.raises(MixdepthError, match="no hrwsi samples"):
        create_dataset("hrwsi", tmp_path / "hrwsi", split="train")
    truth = make_redweb(tmp_path / "redweb", rng)
    for sample_id, sample in _by_id(create_dataset("redweb", tmp_path / "redweb")).items():
        np.testing.assert_array_equal(sample.target, truth[sample_id][1])
        assert sample.mask.all()


def test_hrwsi_missing_mask_names_file(tmp_path, rng):
    make_hrwsi(tmp_path, rng, n=1)
    (tmp_path / "train/valid_masks/00000.png").unlink()
    with pytest.raises(FileFormatError, match="gts/00000.png.*missing partner"):
        create_dataset("hrwsi", tmp_path)[0]


def test_folder_disparity_pfm(tmp_path, rng):
    truth = make_folder(tmp_path, rng)
    dataset = create_dataset("folder", tmp_path)
    assert dataset.space is Space.DISPARITY_UP_TO_SCALE_AND_SHIFT
    for sample_id, sample in _by_id(dataset).items():
        image, disparity = truth[sample_id]
        valid = np.isfinite(disparity)
        np.testing.assert_array_equal(sample.mask, valid)
        np.testing.assert_array_equal(sample.target[valid], disparity[valid])
        np.testing.assert_array_equal(sample.image, image / np.float32(255))
    # Keyword options override dataset.yaml.
    assert create_dataset("folder", tmp_path, space="disparity_up_to_scale").space == (
        Space.DISPARITY_UP_TO_SCALE
    )
    (tmp_path / "dataset.yaml").unlink()
    with pytest.raises(ConfigError, match="needs a space"):
        create_dataset("folder", tmp_path)


def test_folder_png_depth_with_scale_and_masks(tmp_path, rng):
    depth = np.array(rng.integers(0, 3000, (16, 24)), dtype=np.uint16)
    from data_layouts import rgb, save_rgb, save_u8, save_u16

    save_rgb(tmp_path / "images/a.jpg", rgb(rng))
    save_u16(tmp_path / "targets/a.png", depth)
    user_mask = rng.random((16, 24)) > 0.5
    save_u8(tmp_path / "masks/a.png", user_mask)
    dataset = create_dataset("folder", tmp_path, space="metric_depth", scale=1000)
    sample = dataset[0]
    valid = user_mask & (depth > 0)
    np.testing.assert_array_equal(sample.mask, valid)
    np.testing.assert_allclose(sample.target[valid], depth[valid] / 1000, rtol=1e-6)


def test_diw(tmp_path, rng):
    truth = make_diw(tmp_path, rng)
    dataset = create_dataset("diw", tmp_path, split="test")
    assert dataset.space is Space.ORDINAL
    for sample_id, sample in _by_id(dataset).items():
        image, pairs = truth[sample_id]
        np.testing.assert_array_equal(sample.pairs, pairs)
        assert not sample.mask.any() and sample.target.shape == image.shape[:2]


def test_sintel(tmp_path, rng):
    truth = make_sintel(tmp_path, rng)
    dataset = create_dataset("sintel", tmp_path)
    for sample_id, sample in _by_id(dataset).items():
        image, depth = truth[sample_id]
        _check_depth(sample, image, depth, 1e-3, 72.0)
        assert sample.intrinsics[0, 0] == 30.0
    clean = create_dataset("sintel", tmp_path, render_pass="clean")
    np.testing.assert_array_equal(
        clean[0].image, (255 - truth[clean[0].id][0]).astype(np.float32) / 255
    )
    with pytest.raises(ConfigError, match="render_pass"):
        create_dataset("sintel", tmp_path, render_pass="albedo")


def test_size_mismatch_names_target(tmp_path, rng):
    make_sintel(tmp_path, rng, n=1)
    from data_layouts import save_dpt

    save_dpt(tmp_path / "training/depth/alley_1/frame_0001.dpt", np.ones((8, 8), np.float32))
    with pytest.raises(FileFormatError, match="frame_0001.dpt.*do not match"):
        create_dataset("sintel", tmp_path)[0]


def test_empty_root_and_unknown_split(tmp_path):
    with pytest.raises(MixdepthError, match="no sintel samples"):
        create_dataset("sintel", tmp_path)
    with pytest.raises(ConfigError, match="no split 'bogus'"):
        create_dataset("sintel", tmp_path, split="bogus")
    with pytest.raises(MixdepthError, match="does not exist"):
        create_dataset("sintel", tmp_path / "absent")


def test_diw_groups_pairs_of_one_image(tmp_path, rng):
    from data_layouts import rgb, save_rgb

    from mixdepth.io import write_diw_csv

    save_rgb(tmp_path / "DIW_train_val" / "a.thumb", rgb(rng))
    pairs = np.array([[0, 1, 2, 3, 1], [4, 5, 6, 7, -1], [15, 23, 0, 0, 1]])
    (tmp_path / "DIW_Annotations").mkdir()
    write_diw_csv(
        tmp_path / "DIW_Annotations/DIW_train.csv", [("./DIW_train_val/a.thumb", pairs, (16, 24))]
    )
    dataset = create_dataset("diw", tmp_path, split="train")
    assert len(dataset) == 1
    np.testing.assert_array_equal(dataset[0].pairs, pairs)

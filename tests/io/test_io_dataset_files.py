"""NYU labeled .mat, DIW CSV and TUM timestamp lists."""

import h5py
import numpy as np
import pytest

from mixdepth.errors import FileFormatError
from mixdepth.io import (
    NyuLabeledMat,
    associate_timestamps,
    read_diw_csv,
    read_nyu_labeled,
    read_tum_list,
    write_diw_csv,
    write_tum_list,
)


def _write_nyu(path, n=3, h=12, w=16):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    depths = rng.uniform(0.5, 9.0, (n, h, w)).astype(np.float32)
    with h5py.File(path, "w") as f:  # MATLAB layout: (N, 3, W, H) and (N, W, H)
        f["images"] = images.transpose(0, 3, 2, 1)
        f["depths"] = depths.transpose(0, 2, 1)
    return images, depths


def test_nyu_labeled_mat(tmp_path):
    images, depths = _write_nyu(tmp_path / "nyu.mat")
    mat = NyuLabeledMat(tmp_path / "nyu.mat")
    assert len(mat) == 3
    image, depth = mat.read(2)
    np.testing.assert_array_equal(image, images[2].astype(np.float32) / 255)
    np.testing.assert_array_equal(depth, depths[2])
    np.testing.assert_array_equal(read_nyu_labeled(tmp_path / "nyu.mat", 0)[1], depths[0])
    with pytest.raises(FileFormatError, match="index 3"):
        mat.read(3)


def test_nyu_labeled_errors(tmp_path):
    with h5py.File(tmp_path / "nodepth.mat", "w") as f:
        f["images"] = np.zeros((1, 3, 4, 4), np.uint8)
    with pytest.raises(FileFormatError, match="nodepth.mat.*'depths'"):
        NyuLabeledMat(tmp_path / "nodepth.mat")
    with h5py.File(tmp_path / "shape.mat", "w") as f:
        f["images"] = np.zeros((2, 3, 4, 4), np.uint8)
        f["depths"] = np.zeros((2, 4, 5), np.float32)
    with pytest.raises(FileFormatError, match="shape.mat.*'depths' has shape"):
        NyuLabeledMat(tmp_path / "shape.mat")
    (tmp_path / "v5.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    with pytest.raises(FileFormatError, match="v5.mat"):
        NyuLabeledMat(tmp_path / "v5.mat")


def test_diw_csv(tmp_path):
    text = "./DIW_test/a.thumb\n10,20,30,40,>,100,200\n./DIW_test/b.thumb\n1,2,3,4,<,50,60\n"
    (tmp_path / "DIW_test.csv").write_text(text)
    entries = read_diw_csv(tmp_path / "DIW_test.csv")
    assert [e[0] for e in entries] == ["./DIW_test/a.thumb", "./DIW_test/b.thumb"]
    np.testing.assert_array_equal(entries[0][1], [[9, 19, 29, 39, -1]])  # '>' A further
    np.testing.assert_array_equal(entries[1][1], [[0, 1, 2, 3, 1]])  # '<' A closer
    write_diw_csv(tmp_path / "again.csv", [(e[0], e[1], (100, 200)) for e in entries])
    again = read_diw_csv(tmp_path / "again.csv")
    for (name_a, pairs_a), (name_b, pairs_b) in zip(entries, again, strict=True):
        assert name_a == name_b
        np.testing.assert_array_equal(pairs_a, pairs_b)
    (tmp_path / "bad.csv").write_text("./x.thumb\n1,2,3,4,?,5,6\n")
    with pytest.raises(FileFormatError, match="bad.csv.*line 2"):
        read_diw_csv(tmp_path / "bad.csv")
    (tmp_path / "odd.csv").write_text("./x.thumb\n")
    with pytest.raises(FileFormatError, match="odd.csv"):
        read_diw_csv(tmp_path / "odd.csv")


def test_tum_list_and_association(tmp_path):
    (tmp_path / "rgb.txt").write_text(
        "# color images\n# file: 'x.bag'\n# timestamp filename\n"
        "1.000 rgb/1.000.png\n1.033 rgb/1.033.png\n1.066 rgb/1.066.png\n2.000 rgb/2.000.png\n"
    )
    stamps, files = read_tum_list(tmp_path / "rgb.txt")
    np.testing.assert_allclose(stamps, [1.0, 1.033, 1.066, 2.0])
    assert files[1] == "rgb/1.033.png"
    depth = np.array([1.005, 1.030, 1.040, 1.070, 1.5])
    # 1.033 takes 1.030 (closest), 1.066 takes 1.070, 1.000 takes 1.005; 2.000 has none.
    assert associate_timestamps(stamps, depth) == [(0, 0), (1, 1), (2, 3)]
    # Greedy by difference: two rgb frames competing for one depth frame.
    assert associate_timestamps(np.array([1.0, 1.01]), np.array([1.009])) == [(1, 0)]
    (tmp_path / "bad.txt").write_text("1.0\n")
    with pytest.raises(FileFormatError, match="bad.txt.*line 1"):
        read_tum_list(tmp_path / "bad.txt")


def test_write_tum_list_round_trip(tmp_path):
    write_tum_list(tmp_path / "depth.txt", [1.5, 2.25], ["depth/1.5.png", "depth/2.25.png"])
    stamps, files = read_tum_list(tmp_path / "depth.txt")
    np.testing.assert_allclose(stamps, [1.5, 2.25])
    assert files == ["depth/1.5.png", "depth/2.25.png"]


def test_write_uint16_png_keeps_codes(tmp_path):
    from PIL import Image

    from mixdepth.io import read_disparity_png, write_uint16_png

    codes = np.arange(16 * 24, dtype=np.int64).reshape(16, 24) * 170
    write_uint16_png(tmp_path / "gt.png", codes)
    assert np.asarray(Image.open(tmp_path / "gt.png")).dtype == np.uint16
    np.testing.assert_array_equal(read_disparity_png(tmp_path / "gt.png"), codes)
    with pytest.raises(ValueError, match="65535"):
        write_uint16_png(tmp_path / "bad.png", codes * 1000)

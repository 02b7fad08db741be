"""Round trips and independently written bytes for every map format in mixdepth.io."""

import io
import struct

import h5py
import numpy as np
import pytest
from PIL import Image

from mixdepth.errors import FileFormatError
from mixdepth.io import (
    read_blendedmvs_depth,
    read_depth,
    read_diode_depth,
    read_disparity_png,
    read_eth3d_depth,
    read_exr,
    read_image,
    read_kitti_depth,
    read_megadepth_depth,
    read_npy,
    read_pfm,
    read_png16,
    read_sintel_cam,
    read_sintel_dpt,
    read_tartanair_depth,
    read_tum_depth,
    write_exr,
    write_pfm,
    write_png16,
    write_sintel_cam,
    write_sintel_dpt,
)

RNG = np.random.default_rng(0)


def _map(h=16, w=24):
    return RNG.uniform(0.5, 20.0, size=(h, w)).astype(np.float32)


def _pfm_bytes(array, little_endian):
    """PFM written by hand: header, then rows bottom to top."""
    h, w = array.shape[:2]
    magic = b"PF" if array.ndim == 3 else b"Pf"
    scale = -1.0 if little_endian else 1.0
    order = "<f4" if little_endian else ">f4"
    return magic + f"\n{w} {h}\n{scale}\n".encode() + array[::-1].astype(order).tobytes()


@pytest.mark.parametrize("little_endian", [True, False])
@pytest.mark.parametrize("channels", [1, 3])
def test_pfm_reads_independent_bytes(tmp_path, little_endian, channels):
    array = _map() if channels == 1 else RNG.random((16, 24, 3)).astype(np.float32)
    path = tmp_path / "a.pfm"
    path.write_bytes(_pfm_bytes(array, little_endian))
    np.testing.assert_array_equal(read_pfm(path), array)
    # Row order: the first row in memory is the top row, stored last in the file.
    assert read_pfm(path)[0, 0].tolist() == array[0, 0].tolist()


@pytest.mark.parametrize("little_endian", [True, False])
def test_pfm_round_trip_and_writer_bytes(tmp_path, little_endian):
    array = _map()
    write_pfm(tmp_path / "b.pfm", array, little_endian=little_endian)
    np.testing.assert_array_equal(read_pfm(tmp_path / "b.pfm"), array)
    body = (tmp_path / "b.pfm").read_bytes().split(b"\n", 3)[3]
    last_row = np.frombuffer(body[-4 * 24 :], dtype="<f4" if little_endian else ">f4")
    np.testing.assert_array_equal(last_row, array[0])  # top row is stored last


def test_pfm_errors_name_file(tmp_path):
    good = _pfm_bytes(_map(), True)
    cases = {
        "magic.pfm": b"P6" + good[2:],
        "trunc.pfm": good[:-10],
        "header.pfm": b"Pf\nxx yy\n-1\n",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(FileFormatError, match=name):
            read_pfm(tmp_path / name)
    with pytest.raises(FileFormatError, match="missing.pfm"):
        read_pfm(tmp_path / "missing.pfm")


def test_sintel_dpt_independent_bytes_and_round_trip(tmp_path):
    depth = _map()
    data = struct.pack("<fii", 202021.25, 24, 16) + depth.astype("<f4").tobytes()
    (tmp_path / "a.dpt").write_bytes(data)
    np.testing.assert_array_equal(read_sintel_dpt(tmp_path / "a.dpt"), depth)
    write_sintel_dpt(tmp_path / "b.dpt", depth)
    assert (tmp_path / "b.dpt").read_bytes() == data
    bad = {
        "magic.dpt": struct.pack("<fii", 1.0, 24, 16) + depth.tobytes(),
        "trunc.dpt": data[:-8],
        "size.dpt": struct.pack("<fii", 202021.25, 25, 16) + depth.tobytes(),
        "nan.dpt": struct.pack("<fii", 202021.25, 24, 16) + np.full(384, np.nan, "<f4").tobytes(),
        "tiny.dpt": b"\x00\x01",
    }
    for name, blob in bad.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(FileFormatError, match=name):
            read_sintel_dpt(tmp_path / name)


def test_sintel_cam(tmp_path):
    k = np.array([[500.0, 0, 12], [0, 500, 8], [0, 0, 1]])
    pose = np.arange(12, dtype=np.float64).reshape(3, 4)
    data = struct.pack("<f", 202021.25) + k.astype("<f8").tobytes() + pose.astype("<f8").tobytes()
    (tmp_path / "a.cam").write_bytes(data)
    got_k, got_pose = read_sintel_cam(tmp_path / "a.cam")
    np.testing.assert_array_equal(got_k, k)
    np.testing.assert_array_equal(got_pose, pose)
    write_sintel_cam(tmp_path / "b.cam", k, pose)
    assert (tmp_path / "b.cam").read_bytes() == data


@pytest.mark.parametrize("scale,reader", [(256.0, read_kitti_depth), (5000.0, read_tum_depth)])
def test_png16_scales(tmp_path, scale, reader):
    codes = RNG.integers(0, 65535, size=(16, 24), dtype=np.uint16)
    codes[0, :5] = 0
    Image.fromarray(codes).save(tmp_path / "d.png")
    depth = reader(tmp_path / "d.png")
    np.testing.assert_allclose(depth, codes.astype(np.float32) / scale, rtol=1e-7)
    assert (depth[0, :5] == 0).all()
    np.testing.assert_array_equal(read_png16(tmp_path / "d.png", scale), depth)


def test_png16_round_trip_and_invalid(tmp_path):
    depth = _map()
    depth[2, 3] = np.nan
    depth[4, 5] = 0.0
    depth[5, 6] = -1.0
    write_png16(tmp_path / "d.png", depth, 1000.0)
    codes = np.asarray(Image.open(tmp_path / "d.png"))
    assert codes.dtype == np.uint16 and codes[2, 3] == 0 and codes[4, 5] == 0 and codes[5, 6] == 0
    back = read_png16(tmp_path / "d.png", 1000.0)
    ok = np.isfinite(depth) & (depth > 0)
    np.testing.assert_allclose(back[ok], depth[ok], atol=0.5e-3 + 1e-6)
    with pytest.raises(ValueError, match="exceeds 65535"):
        write_png16(tmp_path / "e.png", np.full((2, 2), 100.0), 1000.0)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "eight.png")
    with pytest.raises(FileFormatError, match="eight.png.*16-bit"):
        read_png16(tmp_path / "eight.png", 256.0)


def test_truncated_png_and_image_errors(tmp_path):
    Image.fromarray(RNG.integers(0, 255, (16, 24, 3), dtype=np.uint8)).save(tmp_path / "i.png")
    data = (tmp_path / "i.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match="cut.png"):
        read_image(tmp_path / "cut.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(FileFormatError, match="text.png"):
        read_image(tmp_path / "text.png")


def test_read_image_modes(tmp_path):
    rgb = RNG.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(np.dstack([rgb, np.full((16, 24), 7, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    for name in ("rgb.png", "rgba.png"):
        image = read_image(tmp_path / name)
        assert image.dtype == np.float32 and image.shape == (16, 24, 3)
        np.testing.assert_array_equal(image, rgb.astype(np.float32) / 255)
    grey = read_image(tmp_path / "grey.png")
    np.testing.assert_array_equal(grey[..., 2], rgb[..., 0] / np.float32(255))
    # File objects work too (tar members are read that way).
    buffer = io.BytesIO((tmp_path / "rgb.png").read_bytes())
    np.testing.assert_array_equal(read_image(buffer), rgb.astype(np.float32) / 255)


def test_numpy_maps(tmp_path):
    depth = _map()
    np.save(tmp_path / "a.npy", depth[..., None])  # TartanAir/DIODE style (H, W, 1)
    np.testing.assert_array_equal(read_npy(tmp_path / "a.npy"), depth)
    np.testing.assert_array_equal(read_tartanair_depth(tmp_path / "a.npy"), depth)
    np.savez(tmp_path / "b.npz", disparity=depth)
    np.testing.assert_array_equal(read_depth(tmp_path / "b.npz"), depth)
    np.save(tmp_path / "nan.npy", np.full((4, 4), np.nan, np.float32))
    with pytest.raises(FileFormatError, match="nan.npy.*finite"):
        read_npy(tmp_path / "nan.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FileFormatError, match="obj.npy"):
        read_npy(tmp_path / "obj.npy")
    (tmp_path / "trunc.npy").write_bytes((tmp_path / "a.npy").read_bytes()[:100])
    with pytest.raises(FileFormatError, match="trunc.npy"):
        read_npy(tmp_path / "trunc.npy")


def test_diode_depth_and_mask(tmp_path):
    depth = _map()
    mask = RNG.random((16, 24)) > 0.3
    np.save(tmp_path / "x_depth.npy", depth[..., None])
    np.save(tmp_path / "x_depth_mask.npy", mask.astype(np.float32))
    got, got_mask = read_diode_depth(tmp_path / "x_depth.npy", tmp_path / "x_depth_mask.npy")
    np.testing.assert_array_equal(got, depth)
    np.testing.assert_array_equal(got_mask, mask)
    np.save(tmp_path / "bad_mask.npy", mask[:8])
    with pytest.raises(FileFormatError, match="bad_mask.npy"):
        read_diode_depth(tmp_path / "x_depth.npy", tmp_path / "bad_mask.npy")
    with pytest.raises(FileFormatError, match="gone_mask.npy.*not found"):
        read_diode_depth(tmp_path / "x_depth.npy", tmp_path / "gone_mask.npy")


def test_eth3d_raw_float32(tmp_path):
    depth = _map()
    depth[0, 0] = np.inf
    (tmp_path / "DSC_0001.JPG").write_bytes(depth.astype("<f4").tobytes())
    got = read_eth3d_depth(tmp_path / "DSC_0001.JPG", shape=(16, 24))
    np.testing.assert_array_equal(got, depth)
    with pytest.raises(FileFormatError, match="DSC_0001.JPG.*wrong size"):
        read_eth3d_depth(tmp_path / "DSC_0001.JPG")  # default 6048x4032


def test_megadepth_h5(tmp_path):
    depth = _map()
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["depth"] = depth
    np.testing.assert_array_equal(read_megadepth_depth(tmp_path / "a.h5"), depth)
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["other"] = depth
    with pytest.raises(FileFormatError, match="b.h5.*'depth'"):
        read_megadepth_depth(tmp_path / "b.h5")
    (tmp_path / "c.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(FileFormatError, match="c.h5"):
        read_megadepth_depth(tmp_path / "c.h5")


def test_blendedmvs_and_disparity_png(tmp_path):
    depth = _map()
    (tmp_path / "00000000.pfm").write_bytes(_pfm_bytes(depth, True))
    np.testing.assert_array_equal(read_blendedmvs_depth(tmp_path / "00000000.pfm"), depth)
    codes8 = RNG.integers(0, 256, (16, 24), dtype=np.uint8)
    Image.fromarray(codes8).save(tmp_path / "rd.png")
    np.testing.assert_array_equal(read_disparity_png(tmp_path / "rd.png"), codes8)
    codes16 = RNG.integers(0, 65536, (16, 24), dtype=np.uint16)
    Image.fromarray(codes16).save(tmp_path / "gt.png")
    np.testing.assert_array_equal(read_disparity_png(tmp_path / "gt.png"), codes16)


def test_exr_round_trip(tmp_path):
    import OpenEXR

    depth = _map()
    header = {"compression": OpenEXR.PIZ_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"R": depth * 2, "Z": depth}) as f:  # written independently
        f.write(str(tmp_path / "two.exr"))
    np.testing.assert_array_equal(read_exr(tmp_path / "two.exr"), depth)  # 'Z' preferred
    np.testing.assert_array_equal(read_exr(tmp_path / "two.exr", "R"), depth * 2)
    with pytest.raises(FileFormatError, match="two.exr.*no channel 'G'"):
        read_exr(tmp_path / "two.exr", "G")
    write_exr(tmp_path / "a.exr", depth)
    np.testing.assert_array_equal(read_exr(tmp_path / "a.exr"), depth)
    np.testing.assert_array_equal(read_depth(tmp_path / "a.exr"), depth)
    (tmp_path / "bad.exr").write_bytes(b"\x76\x2f\x31\x01garbage")
    with pytest.raises(FileFormatError, match="bad.exr"):
        read_exr(tmp_path / "bad.exr")


def test_read_depth_dispatch(tmp_path):
    depth = _map()
    write_pfm(tmp_path / "a.pfm", depth)
    write_sintel_dpt(tmp_path / "a.dpt", depth)
    write_png16(tmp_path / "k.png", depth, 256.0)
    np.testing.assert_array_equal(read_depth(tmp_path / "a.pfm"), depth)
    np.testing.assert_array_equal(read_depth(tmp_path / "a.dpt", format="dpt"), depth)
    np.testing.assert_array_equal(read_depth(tmp_path / "a.pfm", scale=2.0), depth / 2)
    np.testing.assert_allclose(read_depth(tmp_path / "k.png", format="kitti"), depth, atol=2e-3)
    with pytest.raises(FileFormatError, match="a.xyz"):
        read_depth(tmp_path / "a.xyz")
    with pytest.raises(ValueError, match="unknown depth format"):
        read_depth(tmp_path / "a.pfm", format="nope")

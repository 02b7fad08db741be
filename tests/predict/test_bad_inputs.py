"""Odd and broken inputs to `mixdepth predict` with the bundled model: each gives a correct
depth map or one skip line, and the rest of the folder is still predicted."""

import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from predict_helpers import random_image
from typer.testing import CliRunner

from mixdepth.cli import app
from mixdepth.inference import Predictor, default_weights_path, max_relative_difference

pytestmark = pytest.mark.skipif(default_weights_path() is None, reason="no bundled weights")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def empty_png() -> bytes:
    """A PNG whose header says 0 x 0 pixels."""
    header = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b""))
            + _chunk(b"IEND", b""))


def mjpeg_with_corrupt_frame(path: Path, frames: int = 9, bad: int = 4) -> None:
    """An MJPEG .avi of `frames` 32 x 32 frames whose frame `bad` is overwritten with noise."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuvj420p"
        for i in range(frames):
            rgb = np.roll(random_image(32, 32, seed=i), 2 * i, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i : i + 3] == b"\xff\xd8\xff"]
    assert len(starts) == frames
    noise = np.random.default_rng(0).integers(0, 256, starts[bad + 1] - 16 - starts[bad])
    data[starts[bad] : starts[bad + 1] - 16] = noise.astype(np.uint8).tobytes()
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def predictor():
    torch.set_num_threads(1)
    return Predictor()


def _inputs(folder: Path) -> dict[str, np.ndarray | None]:
    """Write the odd inputs; returns {output stem: expected float RGB the model sees, or
    None for inputs that must be skipped}."""
    folder.mkdir()
    expected: dict[str, np.ndarray | None] = {}
    rgb = random_image(24, 40, seed=1)

    (folder / "empty.png").write_bytes(empty_png())
    expected["empty"] = None
    (folder / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    expected["garbage"] = None

    Image.fromarray(rgb).save(folder / "plain.png")
    expected["plain"] = rgb / 255.0
    Image.fromarray(rgb[:1, :1]).save(folder / "one.png")
    expected["one"] = rgb[:1, :1] / 255.0
    wide = random_image(1, 50000, seed=2)
    Image.fromarray(wide).save(folder / "wide.png")
    expected["wide"] = wide / 255.0

    deep = (np.linspace(0, 65535, 24 * 40).reshape(24, 40)).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep16.png")
    assert Image.open(folder / "deep16.png").mode.startswith("I")
    expected["deep16"] = np.repeat((deep / 65535.0)[:, :, None], 3, axis=2)

    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    with Image.open(folder / "cmyk.jpg") as image:
        assert image.mode == "CMYK"
        expected["cmyk"] = np.asarray(image.convert("RGB")) / 255.0

    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(
        folder / "palette.png"
    )
    with Image.open(folder / "palette.png") as image:
        assert image.mode == "P"
        expected["palette"] = np.asarray(image.convert("RGB")) / 255.0

    alpha = np.linspace(0, 255, 24 * 40).reshape(24, 40, 1).astype(np.uint8)
    Image.fromarray(np.concatenate([rgb, alpha], axis=2)).save(folder / "rgba.png")
    expected["rgba"] = rgb / 255.0

    frames = [Image.fromarray(random_image(24, 40, seed=s)) for s in (3, 4)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    with Image.open(folder / "anim.gif") as image:
        assert image.n_frames == 2
        expected["anim"] = np.asarray(image.convert("RGB")) / 255.0  # the first frame

    # EXIF orientation 6: the camera was turned, the stored pixels must be turned clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(folder / "turned.jpg", exif=exif, quality=95)
    with Image.open(folder / "turned.jpg") as image:
        stored = np.asarray(image.convert("RGB"))
    expected["turned"] = np.rot90(stored, k=-1) / 255.0
    return expected


def test_odd_images_and_a_video_with_a_corrupt_frame(tmp_path, predictor):
    inputs = tmp_path / "in"
    expected = _inputs(inputs)
    mjpeg_with_corrupt_frame(inputs / "clip.avi")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["predict", str(inputs), "-o", str(out), "-f", "npy"])
    output = result.output
    assert result.exit_code == 1, output  # the two unusable files are failures
    lines = output.splitlines()
    for name in ("empty.png", "garbage.jpg"):
        assert sum(name in line and "skipped" in line for line in lines) == 1, output
        assert sum(name in line for line in lines) == 1, output
    assert "2 input(s) failed" in output
    ok = [name for name, rgb in expected.items() if rgb is not None]
    assert f"{len(ok)} image(s), 1 video(s)" in output
    for name, rgb in expected.items():
        path = out / f"{name}.npy"
        if rgb is None:
            assert not path.exists(), name
            continue
        depth = np.load(path)
        assert depth.shape == rgb.shape[:2], name
        assert np.isfinite(depth).all(), name
        reference = predictor.predict(rgb.astype(np.float32))
        assert max_relative_difference(depth, reference) < 1e-4, name

    # the video: frame 4 is reported on one line and left out, the others are predicted
    assert sum("clip.avi" in line and "frame 4" in line for line in lines) == 1, output
    frames = sorted(p.name for p in (out / "clip_frames").iterdir())
    assert frames == [f"{i:06d}.npy" for i in range(9) if i != 4]


def test_exif_rotation_is_applied_not_ignored(tmp_path, predictor):
    """A turned photo's map has the displayed orientation, differing from the stored one."""
    rgb = random_image(24, 40, seed=5)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    depth = predictor.predict(tmp_path / "turned.jpg")
    assert depth.shape == (40, 24)


def test_gif_gives_its_first_frame(tmp_path, predictor):
    frames = [Image.fromarray(random_image(24, 40, seed=s)) for s in (6, 7)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    with Image.open(tmp_path / "a.gif") as image:
        first = np.asarray(image.convert("RGB"))
        image.seek(1)
        second = np.asarray(image.convert("RGB"))
    depth = predictor.predict(tmp_path / "a.gif")
    assert max_relative_difference(depth, predictor.predict(first)) < 1e-5
    assert max_relative_difference(depth, predictor.predict(second)) > 1e-3

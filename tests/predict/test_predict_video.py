import numpy as np
import pytest
from predict_helpers import random_image
from typer.testing import CliRunner

from mixdepth.cli import app
from mixdepth.errors import FileFormatError
from mixdepth.inference import Predictor, max_relative_difference
from mixdepth.video import TemporalStabilizer, VideoWriter, predict_video, read_frames, video_info


def write_clip(path, frames: int = 6, height: int = 48, width: int = 64):
    """A short H.264 clip of a texture sliding right by 2 px per frame."""
    texture = random_image(height, width + 2 * frames, seed=5)
    clip = [texture[:, 2 * i : 2 * i + width] for i in range(frames)]
    with VideoWriter(path, fps=10) as writer:
        for frame in clip:
            writer.write(frame)
    return clip


def test_video_roundtrip(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4")
    fps, count = video_info(tmp_path / "clip.mp4")
    assert fps == 10 and count == len(clip)
    decoded = list(read_frames(tmp_path / "clip.mp4"))
    assert len(decoded) == len(clip) and decoded[0].shape == (48, 64, 3)
    # lossy (4:2:0 chroma, quantisation) but the same picture: compare 4x4 block means
    def blocks(image):
        return image.astype(float).reshape(12, 4, 16, 4, 3).mean(axis=(1, 3))

    assert np.abs(blocks(decoded[2]) - blocks(clip[2])).mean() < 6


def test_odd_frame_sizes_are_padded(tmp_path):
    with VideoWriter(tmp_path / "odd.mp4", fps=5) as writer:
        for _ in range(2):
            writer.write(random_image(33, 45))
    assert next(read_frames(tmp_path / "odd.mp4")).shape == (34, 46, 3)


def test_cli_video_gives_depth_video_and_frames(tmp_path, tiny_weights):
    write_clip(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["predict", str(tmp_path / "clip.mp4"), "-o", str(out), "--weights",
              str(tiny_weights), "-f", "color,npy", "--side-by-side", "--stabilize",
              "--batch-size", "4"],
    )
    assert result.exit_code == 0, result.output
    assert "1 video(s)" in result.output
    depth = list(read_frames(out / "clip_depth.mp4"))
    assert len(depth) == 6 and depth[0].shape == (48, 64, 3)
    sbs = list(read_frames(out / "clip_side_by_side.mp4"))
    assert len(sbs) == 6 and sbs[0].shape == (48, 128, 3)
    frames = sorted((out / "clip_frames").iterdir())
    assert [f.name for f in frames] == [f"{i:06d}.npy" for i in range(6)]
    assert np.load(frames[0]).shape == (48, 64)


def test_stabilized_frames_are_aligned_predictions(tmp_path, tiny_model):
    clip = write_clip(tmp_path / "clip.mp4", frames=4)
    predictor = Predictor(tiny_model)
    predict_video(predictor, tmp_path / "clip.mp4", tmp_path / "o" / "clip", ("npy",),
                  stabilize=True, batch_size=3)
    raw = predictor.predict_batch(list(read_frames(tmp_path / "clip.mp4")))
    assert len(raw) == len(clip)
    for i, prediction in enumerate(raw):
        saved = np.load(tmp_path / "o" / "clip_frames" / f"{i:06d}.npy")
        a = np.stack([prediction.ravel(), np.ones(prediction.size)], axis=1)
        (scale, shift), *_ = np.linalg.lstsq(a, saved.ravel().astype(np.float64), rcond=None)
        assert scale > 0
        assert max_relative_difference(scale * prediction + shift, saved) < 1e-4
    # the first frame is written as predicted (up to float rounding: the video ran in batches
    # of 3, `raw` in one batch of 4, and oneDNN may sum in another order for another batch)
    first = np.load(tmp_path / "o" / "clip_frames" / "000000.npy")
    assert max_relative_difference(first, raw[0]) < 1e-6


def test_stabilizer_removes_per_frame_scale_and_shift():
    rng = np.random.default_rng(0)
    base = rng.random((20, 30)).astype(np.float32) + 0.5
    stabilizer = TemporalStabilizer(momentum=0.8)
    for scale, shift in [(1.0, 0.0), (2.0, 0.3), (0.5, -0.1), (3.0, 1.0)]:
        out = stabilizer(scale * base + shift)
        np.testing.assert_allclose(out, base, rtol=1e-5, atol=1e-5)
    assert stabilizer.range == pytest.approx((base.min(), base.max()), rel=1e-5)


def test_stabilizer_restarts_on_a_flipped_or_constant_frame():
    base = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    stabilizer = TemporalStabilizer()
    stabilizer(base)
    flipped = 1 - base
    np.testing.assert_array_equal(stabilizer(flipped), flipped)  # scene cut: raw frame kept
    constant = np.full((3, 4), 2.0, np.float32)
    assert np.isfinite(stabilizer(constant)).all()


def test_unreadable_video(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"definitely not a video")
    with pytest.raises(FileFormatError, match="bad.mp4"):
        list(read_frames(bad))

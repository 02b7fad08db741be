"""Depth for videos: frame reading/writing with PyAV and optional temporal stabilisation.

`predict_video` runs a Predictor over every frame (in batches) and writes

- OUT/name_depth.mp4: the colour-mapped depth video (format "color"),
- OUT/name_side_by_side.mp4: frame and colour depth side by side (on request),
- OUT/name_frames/000000.<ext>...: per-frame files for the other formats (pfm, npy, png16, ply).

Per-frame predictions of a relative-depth model each come with their own unknown scale and
shift, which shows as flicker. `TemporalStabilizer` aligns every prediction by least squares
(scale and shift, `mixdepth.losses.align_lstsq`) to an exponential running average of the
previous aligned outputs, so all frames share the first frame's scale and shift. With
stabilisation the colour video uses a running (smoothed) min/max range instead of a per-frame
one, so the colours do not pump either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from mixdepth.errors import ConfigError, FileFormatError
from mixdepth.outputs import colorize, side_by_side, write_outputs

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)


def is_video(path: str | Path) -> bool:
    """True if the file name has a video suffix."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _open(path: Path):
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise FileFormatError(path, f"cannot open video ({err})") from None
    if not container.streams.video:
        container.close()
        raise FileFormatError(path, "no video stream")
    return container


def video_info(path: str | Path) -> tuple[Fraction, int]:
    """(frames per second, number of frames or 0 if the container does not say)."""
    with _open(Path(path)) as container:
        stream = container.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate or Fraction(30)
        return Fraction(fps), int(stream.frames or 0)


# More undecodable frames than this in a row means the file is broken, not one frame.
MAX_BAD_FRAMES_IN_A_ROW = 25


def decode_frames(
    path: str | Path, on_skip: Callable[[int, str], None] | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode a video -> (frame position, uint8 (H, W, 3) RGB) in order.

    A frame that cannot be decoded is skipped: on_skip(position, reason) is called and its
    position is left out. FileFormatError if the file cannot be opened or demuxed, or after
    MAX_BAD_FRAMES_IN_A_ROW undecodable frames in a row.
    """
    import av

    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        position, bad = 0, 0
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets, None)
            except av.error.FFmpegError as err:
                raise FileFormatError(path, f"cannot read video ({err})") from None
            if packet is None:
                break
            try:
                frames = [frame.to_ndarray(format="rgb24") for frame in packet.decode()]
            except av.error.FFmpegError as err:
                if packet.size == 0:  # the final flush failing loses no frame
                    break
                bad += 1
                if bad > MAX_BAD_FRAMES_IN_A_ROW:
                    raise FileFormatError(
                        path, f"cannot decode video ({bad} frames in a row fail: {err})"
                    ) from None
                if on_skip is not None:
                    on_skip(position, str(err))
                position += 1
                continue
            for frame in frames:
                bad = 0
                yield position, frame
                position += 1


def read_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Decode a video -> uint8 (H, W, 3) RGB frames in order (undecodable frames skipped;
    FileFormatError if the file is unreadable, see `decode_frames`)."""
    for _, frame in decode_frames(path):
        yield frame


class VideoWriter:
    """Encode uint8 (H, W, 3) RGB frames to a video file (H.264, yuv420p; MPEG-4 fallback).

    Odd frame sizes are padded by one edge row/column (yuv420p needs even sizes). Use as a
    context manager; the stream opens on the first frame.
    """

    def __init__(self, path: str | Path, fps: Fraction | float = 30):
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self._container = None
        self._stream = None

    def _start(self, height: int, width: int) -> None:
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self._stream = self._container.add_stream(codec, rate=self.fps)
        self._stream.width, self._stream.height = width + width % 2, height + height % 2
        self._stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            self._stream.options = {"crf": "18"}

    def write(self, rgb: np.ndarray) -> None:
        """Append one uint8 (H, W, 3) RGB frame."""
        import av

        if self._stream is None:
            self._start(*rgb.shape[:2])
        pad = ((0, rgb.shape[0] % 2), (0, rgb.shape[1] % 2), (0, 0))
        frame = av.VideoFrame.from_ndarray(np.pad(rgb, pad, mode="edge"), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._stream = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TemporalStabilizer:
    """Align each frame's relative inverse depth to a running average of the previous outputs.

    For frame t with prediction d_t (H, W): (s, c) = least squares argmin ||s d_t + c - R||^2
    over all finite pixels, where R is the exponential moving average of the aligned outputs,
    R <- momentum R + (1 - momentum) (s d_t + c). The first frame initialises R unchanged. A
    non-positive scale (a scene cut or a degenerate frame) restarts the average from the raw
    frame. Also tracks a smoothed min/max of the aligned outputs for stable colour mapping.
    """

    def __init__(self, momentum: float = 0.9):
        if not 0.0 <= momentum < 1.0:
            raise ConfigError(f"stabiliser momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.reference: torch.Tensor | None = None
        self.range: tuple[float, float] | None = None

    def reset(self) -> None:
        self.reference = None
        self.range = None

    def __call__(self, disparity: np.ndarray) -> np.ndarray:
        """float32 (H, W) prediction -> float32 (H, W) aligned prediction."""
        from mixdepth.losses import align_lstsq

        d = torch.from_numpy(np.asarray(disparity, dtype=np.float32))[None].double()
        aligned = d
        if self.reference is not None and self.reference.shape == d.shape:
            mask = torch.isfinite(d) & torch.isfinite(self.reference)
            scale, shift = align_lstsq(d, self.reference, mask)
            if float(scale[0]) > 0:
                aligned = scale[:, None, None] * d + shift[:, None, None]
                self.reference = self.momentum * self.reference + (1 - self.momentum) * aligned
            else:
                self.reset()
        if self.reference is None or self.reference.shape != d.shape:
            self.reset()
            self.reference = aligned.clone()
        out = aligned[0].float().numpy()
        finite = out[np.isfinite(out)]
        if finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            if self.range is not None:
                m = self.momentum
                lo, hi = m * self.range[0] + (1 - m) * lo, m * self.range[1] + (1 - m) * hi
            self.range = (lo, hi)
        return out


def frames_dir(base: Path) -> Path:
    """Folder of the per-frame files of a video written to base (OUT/name -> OUT/name_frames)."""
    return base.with_name(base.name + "_frames")


def predict_video(
    predictor,
    path: str | Path,
    base: str | Path,
    formats: tuple[str, ...] = ("color",),
    colormap: str = "inferno",
    with_side_by_side: bool = False,
    fov: float = 60.0,
    stabilize: bool = False,
    batch_size: int = 8,
    on_frames: Callable[[int], None] | None = None,
    on_skip: Callable[[int, str], None] | None = None,
) -> list[Path]:
    """Predict every frame of a video; write the depth video and/or per-frame files.

    base: OUT/name. "color" in formats -> OUT/name_depth.mp4; with_side_by_side ->
    OUT/name_side_by_side.mp4; every other format -> OUT/name_frames/<frame:06d><suffix>.
    on_frames(n) is called after each batch of n frames. A frame that cannot be decoded is
    left out (the videos are one frame shorter, the per-frame files keep the numbering of
    the source) and reported with on_skip(position, reason). Returns the files written.
    """
    base = Path(base)
    fps, _ = video_info(path)
    stabilizer = TemporalStabilizer() if stabilize else None
    per_frame = tuple(f for f in formats if f != "color")
    depth_video = VideoWriter(base.with_name(base.name + "_depth.mp4"), fps) if (
        "color" in formats) else None
    sbs_video = VideoWriter(base.with_name(base.name + "_side_by_side.mp4"), fps) if (
        with_side_by_side) else None
    written: list[Path] = []
    count = 0
    frames = decode_frames(path, on_skip)
    try:
        while True:
            batch = [item for _, item in zip(range(batch_size), frames, strict=False)]
            if not batch:
                break
            preds = predictor.predict_batch([frame for _, frame in batch], batch_size)
            for (index, frame), pred in zip(batch, preds, strict=True):
                if stabilizer is not None:
                    pred = stabilizer(pred)
                lo, hi = stabilizer.range if stabilizer is not None else (None, None)
                if depth_video is not None:
                    depth_video.write(colorize(pred, colormap, lo, hi))
                if sbs_video is not None:
                    sbs_video.write(side_by_side(frame, pred, colormap, lo, hi))
                if per_frame:
                    frame_base = frames_dir(base) / f"{index:06d}"
                    written += write_outputs(frame_base, pred, frame, per_frame, colormap, fov=fov)
                count += 1
            if on_frames is not None:
                on_frames(len(batch))
    finally:
        frames.close()
        for writer in (depth_video, sbs_video):
            if writer is not None:
                writer.close()
    if count == 0:
        raise FileFormatError(path, "the video has no decodable frames")
    written += [w.path for w in (depth_video, sbs_video) if w is not None]
    return written

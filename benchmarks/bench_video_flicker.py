"""Video flicker before and after temporal stabilisation (`mixdepth predict --stabilize`).

A short synthetic video is drawn with numpy: a static camera looks at a textured background
while a textured disk moves slowly across it; every frame gets its own exposure (gain and
offset) and sensor noise, the kind of frame-to-frame change that makes per-frame relative
depth flicker. The model predicts each frame; `TemporalStabilizer` aligns each prediction by
least squares (scale, shift) to the running average of the previous aligned outputs.

Flicker = mean over consecutive frames of the mean absolute difference |n_t - n_(t-1)| on
static pixels (far from the moving disk in both frames), where n is the prediction normalised
by ONE median/MAD for the whole video (so per-frame scale/shift changes count as flicker,
while a global change of units does not). Also printed: the same measure on the values the
colour depth video shows (per-frame min-max without stabilisation, the stabiliser's running
range with it).

Without --weights the model is `tiny` with random weights (no weights ship with the repository):
this shows the mechanics, not the flicker of a trained model. The final ReLU is disabled
(non_negative=False) so that random outputs are not all zero.

    python benchmarks/bench_video_flicker.py [--frames 32] [--size 96 128] [--weights PATH]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mixdepth import models
from mixdepth.inference import Predictor
from mixdepth.outputs import minmax_normalize
from mixdepth.video import TemporalStabilizer


def texture(height: int, width: int, rng: np.random.Generator, waves: int = 6) -> np.ndarray:
    """A smooth random RGB texture, float32 (H, W, 3) in [0, 1]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.zeros((height, width, 3), np.float32)
    for _ in range(waves):
        fy, fx = rng.uniform(0.02, 0.25, 2)
        phase = rng.uniform(0, 2 * np.pi)
        colour = rng.uniform(0.2, 1.0, 3).astype(np.float32)
        out += np.sin(fy * y + fx * x + phase)[..., None] * colour
    return (0.5 + 0.5 * out / waves).clip(0, 1)


def synthetic_video(frames: int, height: int, width: int, seed: int = 0):
    """(frames float32 (T, H, W, 3), static masks bool (T, H, W)): a disk moving 1 px per
    frame over a static textured background, with per-frame exposure and noise."""
    rng = np.random.default_rng(seed)
    background = texture(height, width, rng)
    foreground = texture(height, width, rng, waves=3)
    radius = min(height, width) // 5
    y, x = np.mgrid[0:height, 0:width]
    video, distances = [], []
    for t in range(frames):
        cy, cx = height / 2, width / 4 + t
        distance = np.hypot(y - cy, x - cx)
        disk = distance < radius
        frame = np.where(disk[..., None], foreground, background)
        gain, offset = 1 + 0.15 * rng.standard_normal(), 0.05 * rng.standard_normal()
        frame = gain * frame + offset + 0.02 * rng.standard_normal(frame.shape)
        video.append(frame.clip(0, 1).astype(np.float32))
        distances.append(distance)
    distances = np.stack(distances)
    far = distances > 2 * radius  # away from the disk and its influence on the neighbourhood
    static = far & np.concatenate([far[:1], far[:-1]])
    return np.stack(video), static


def video_normalised(predictions: np.ndarray) -> np.ndarray:
    """(T, H, W) normalised by one median/MAD over the whole video."""
    median = np.median(predictions)
    return (predictions - median) / max(float(np.mean(np.abs(predictions - median))), 1e-12)


def flicker(normalised: np.ndarray, static: np.ndarray) -> float:
    """Mean over t >= 1 of mean |n_t - n_(t-1)| over static pixels of both frames."""
    steps = [np.abs(normalised[t] - normalised[t - 1])[static[t]].mean()
             for t in range(1, len(normalised)) if static[t].any()]
    return float(np.mean(steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, nargs=2, default=(96, 128), metavar=("H", "W"))
    parser.add_argument("--weights", default=None, help="a trained model (default: random tiny)")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    video, static = synthetic_video(args.frames, *args.size, seed=args.seed)
    if args.weights:
        predictor = Predictor(weights=args.weights)
        label = args.weights
    else:
        torch.manual_seed(args.seed)
        predictor = Predictor(models.create("tiny", non_negative=False))
        label = "tiny, random weights"
    start = time.perf_counter()
    raw = np.stack(predictor.predict_batch(list(video), batch_size=8))
    predict_seconds = time.perf_counter() - start
    stabilizer = TemporalStabilizer(momentum=args.momentum)
    start = time.perf_counter()
    stabilized, ranges = [], []
    for prediction in raw:
        stabilized.append(stabilizer(prediction))
        ranges.append(stabilizer.range)
    stabilized = np.stack(stabilized)
    stabilize_ms = 1000 * (time.perf_counter() - start) / len(raw)

    print(f"{args.frames} frames {args.size[0]}x{args.size[1]}, model: {label}, "
          f"static pixels {static[1:].mean():.0%}, momentum {args.momentum}")
    print(f"prediction {1000 * predict_seconds / len(raw):.1f} ms/frame, "
          f"stabilisation {stabilize_ms:.2f} ms/frame")
    print(f"{'flicker measure':<40} {'raw':>8} {'stabilised':>11} {'ratio':>7}")
    # the colour video maps each raw frame by its own min/max, a stabilised one by the
    # stabiliser's running range (as `predict_video` does)
    colour_raw = np.stack([minmax_normalize(p) for p in raw])
    colour_stabilized = np.stack([minmax_normalize(p, *r) for p, r in zip(stabilized, ranges,
                                                                           strict=True)])
    rows = (("video-normalised (median/MAD)", video_normalised(raw), video_normalised(stabilized)),
            ("colour video values (0..1)", colour_raw, colour_stabilized))
    for name, before, after in rows:
        before, after = flicker(before, static), flicker(after, static)
        print(f"{name:<40} {before:8.4f} {after:11.4f} {before / after:6.2f}x")


if __name__ == "__main__":
    main()

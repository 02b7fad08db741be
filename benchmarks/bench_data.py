"""Data loading speed: samples/s for reading + augmenting a fixture dataset at 384 x 384.

Writes a TUM-layout fixture (640 x 480 PNG colour + 16-bit depth) into a temporary folder,
then times `create_dataset("tum", ..., transform=TrainTransform(384))` through a DataLoader
with 0 and 2 workers, and the same read + resize + crop done by a straightforward loop
(Pillow decode, Pillow resize, numpy crop, no masking) as the baseline.

    python benchmarks/bench_data.py [--samples 48] [--epochs 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mixdepth.data import TrainTransform, collate_samples, create_dataset
from mixdepth.data.transforms import network_input_shape


def write_fixture(root: Path, samples: int, height: int = 480, width: int = 640) -> None:
    """A TUM RGB-D sequence of smooth random images and depth maps."""
    rng = np.random.default_rng(0)
    seq = root / "rgbd_dataset_freiburg1_bench"
    (seq / "rgb").mkdir(parents=True)
    (seq / "depth").mkdir()
    rgb_lines, depth_lines = [], []
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    for i in range(samples):
        t = 1000.0 + i / 30
        phase = rng.uniform(0, 6, 3)
        image = 127 + 120 * np.sin(np.stack([xx * 9 + p + yy * 5 for p in phase], -1))
        image += rng.normal(0, 8, image.shape)
        depth = 1.0 + 3.0 * (yy + 0.5 * np.sin(xx * 7 + phase[0]) + 0.5)
        depth[rng.random(depth.shape) < 0.1] = 0
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(seq / "rgb" / f"{t:.6f}.png")
        codes = np.round(depth * 5000).astype(np.uint16)
        Image.fromarray(codes).save(seq / "depth" / f"{t:.6f}.png")
        rgb_lines.append(f"{t:.6f} rgb/{t:.6f}.png")
        depth_lines.append(f"{t:.6f} depth/{t:.6f}.png")
    (seq / "rgb.txt").write_text("\n".join(rgb_lines) + "\n")
    (seq / "depth.txt").write_text("\n".join(depth_lines) + "\n")


def time_loader(root: Path, workers: int, epochs: int, batch_size: int = 8) -> float:
    dataset = create_dataset("tum", root, transform=TrainTransform(size=384))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate_samples,
        persistent_workers=workers > 0,
    )
    next(iter(loader))  # start workers outside the timed region
    count, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            count += batch["image"].shape[0]
    return count / (time.perf_counter() - start)


def time_baseline(root: Path, epochs: int, size: int = 384) -> float:
    """Straightforward loop: decode with Pillow, resize with Pillow, crop with numpy."""
    seq = next(root.iterdir())
    pairs = [
        (seq / a.split()[1], seq / b.split()[1])
        for a, b in zip(
            (seq / "rgb.txt").read_text().split("\n")[:-1],
            (seq / "depth.txt").read_text().split("\n")[:-1],
            strict=True,
        )
    ]
    rng = np.random.default_rng(0)
    count, start = 0, time.perf_counter()
    for _ in range(epochs):
        for rgb_path, depth_path in pairs:
            image = Image.open(rgb_path).convert("RGB")
            depth = Image.open(depth_path)
            h, w = network_input_shape(image.height, image.width, size, mode="lower_bound")
            image = np.asarray(image.resize((w, h), Image.BICUBIC), dtype=np.float32) / 255
            depth = np.asarray(depth.resize((w, h), Image.NEAREST), dtype=np.float32) / 5000
            top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
            image = image[top : top + size, left : left + size]
            depth = depth[top : top + size, left : left + size]
            count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_fixture(root, args.samples)
        baseline = time_baseline(root, args.epochs)
        print(f"fixture: {args.samples} TUM-layout samples 640x480 -> TrainTransform(384)")
        print(f"baseline loop (Pillow decode+resize, 1 process): {baseline:7.1f} samples/s")
        for workers in (0, 2):
            rate = time_loader(root, workers, args.epochs)
            print(
                f"mixdepth DataLoader, {workers} workers:           {rate:7.1f} samples/s "
                f"({rate / baseline:.2f}x baseline)"
            )


if __name__ == "__main__":
    main()

"""Tiny benchmark fixtures written in each dataset's real on-disk layout.

Every builder writes a few images with ground truth into `root` and returns a `Fixture`
holding, per sample id, the ground-truth depth exactly as the file stores it (after the
format's quantisation), so that tests can compute expected values independently of the
loaders. Depth maps contain holes (0) and values beyond the benchmark's cap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from mixdepth.io import write_diw_csv, write_png16, write_sintel_dpt


@dataclass
class Fixture:
    benchmark: str
    root: Path
    depth: dict[str, np.ndarray] = field(default_factory=dict)  # id -> float64 (H, W), 0 = hole
    pairs: dict[str, np.ndarray] = field(default_factory=dict)  # DIW: id -> (N, 5)
    subsets: dict[str, str] = field(default_factory=dict)  # id -> held-out family
    crop: tuple[float, float, float, float] | None = None
    cap: float | None = None


def _depth(rng, shape, low, high, cap):
    """Smooth random depth in [low, high] with ~10 % holes and a few pixels beyond the cap."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    wave = np.sin(xx / 3.0 + rng.uniform(0, 6)) * np.cos(yy / 4.0 + rng.uniform(0, 6))
    depth = low + (high - low) * (0.5 + 0.5 * wave) * rng.uniform(0.8, 1.0, shape)
    depth[rng.random(shape) < 0.1] = 0.0
    if cap is not None:
        depth[rng.random(shape) < 0.03] = cap * 1.5
    return depth


def _rgb(rng, shape) -> np.ndarray:
    return rng.integers(0, 256, (*shape, 3), dtype=np.uint8)


def _save_rgb(path: Path, rgb: np.ndarray, fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, format=fmt)


def _png16(path: Path, depth: np.ndarray, scale: float) -> np.ndarray:
    """Write depth * scale as uint16 PNG; return the depth the file holds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = np.clip(np.round(depth * scale), 0, 65535)
    write_png16(path, stored / scale, scale=scale)
    return (stored / scale).astype(np.float32).astype(np.float64)


def nyu(root: Path, seed: int = 0) -> Fixture:
    """nyu_depth_v2_labeled.mat with 3 frames: frames 1 and 2 are in the official test split."""
    rng = np.random.default_rng(seed)
    shape = (24, 32)
    fx = Fixture("nyu", root, crop=(45 / 480, 471 / 480, 41 / 640, 601 / 640), cap=10.0)
    images, depths = [], []
    for index in range(1, 4):
        depth = _depth(rng, shape, 0.8, 9.0, 10.0).astype(np.float32)
        images.append(_rgb(rng, shape).transpose(2, 1, 0))
        depths.append(depth.T)
        if index in (1, 2):
            fx.depth[f"{index:04d}"] = depth.astype(np.float64)
    root.mkdir(parents=True, exist_ok=True)
    with h5py.File(root / "nyu_depth_v2_labeled.mat", "w") as file:
        file["images"] = np.stack(images)
        file["depths"] = np.stack(depths)
    return fx


KITTI_FRAMES = (  # the first lines of the shipped Eigen test list
    ("2011_09_26", "2011_09_26_drive_0002_sync", "0000000069"),
    ("2011_09_26", "2011_09_26_drive_0002_sync", "0000000054"),
)


def kitti(root: Path, seed: int = 1) -> Fixture:
    """Raw images + data_depth_annotated/val/<drive>/proj_depth/groundtruth (uint16 * 256)."""
    rng = np.random.default_rng(seed)
    shape = (16, 52)
    fx = Fixture("kitti", root, crop=(0.40810811, 0.99189189, 0.03594771, 0.96405229), cap=80.0)
    for date, drive, frame in KITTI_FRAMES:
        _save_rgb(root / date / drive / "image_02" / "data" / f"{frame}.png", _rgb(rng, shape))
        depth = _depth(rng, shape, 2.0, 70.0, 80.0)
        depth[rng.random(shape) < 0.5] = 0.0  # sparse LiDAR
        target = root / "data_depth_annotated/val" / drive / "proj_depth/groundtruth/image_02"
        fx.depth[f"{drive}/image_02/{frame}"] = _png16(target / f"{frame}.png", depth, 256.0)
    return fx


def tum(root: Path, seed: int = 2) -> Fixture:
    """One sequence: rgb.txt, depth.txt, rgb/<t>.png, depth/<t>.png (uint16 * 5000)."""
    rng = np.random.default_rng(seed)
    shape = (24, 32)
    fx = Fixture("tum", root, cap=10.0)
    sequence = root / "rgbd_dataset_freiburg2_desk_with_person"
    rgb_lines, depth_lines = ["# color images"], ["# depth maps"]
    for k in range(3):
        stamp = f"{1311870000 + k}.000000"
        _save_rgb(sequence / "rgb" / f"{stamp}.png", _rgb(rng, shape))
        depth = _depth(rng, shape, 0.6, 9.5, 10.0)
        stored = _png16(sequence / "depth" / f"{stamp}.png", depth, 5000.0)
        fx.depth[f"{sequence.name}/{stamp}"] = stored
        rgb_lines.append(f"{stamp} rgb/{stamp}.png")
        depth_lines.append(f"{1311870000 + k}.005000 depth/{stamp}.png")
    (sequence / "rgb.txt").write_text("\n".join(rgb_lines) + "\n")
    (sequence / "depth.txt").write_text("\n".join(depth_lines) + "\n")
    return fx


def eth3d(root: Path, seed: int = 3) -> Fixture:
    """<scene>/images/dslr_images_undistorted/*.JPG + ground_truth_depth/dslr_images/*.JPG
    (the depth "JPG" is raw little-endian float32; inf = no data)."""
    rng = np.random.default_rng(seed)
    shape = (20, 30)
    fx = Fixture("eth3d", root, cap=72.0)
    for scene, name in (("courtyard", "DSC_0286.JPG"), ("office", "DSC_0219.JPG")):
        _save_rgb(root / scene / "images/dslr_images_undistorted" / name, _rgb(rng, shape), "JPEG")
        depth = _depth(rng, shape, 1.0, 60.0, 72.0).astype(np.float32)
        stored = np.where(depth == 0, np.inf, depth).astype("<f4")
        path = root / scene / "ground_truth_depth/dslr_images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(stored.tobytes())
        fx.depth[f"{scene}/{name}"] = depth.astype(np.float64)
    return fx


def _sintel_tree(root: Path, rng, scenes, shape, high, cap, fx, subset=""):
    for scene in scenes:
        for frame in ("frame_0001", "frame_0002"):
            _save_rgb(root / "training/final" / scene / f"{frame}.png", _rgb(rng, shape))
            depth = _depth(rng, shape, 0.5, high, cap).astype(np.float32)
            path = root / "training/depth" / scene / f"{frame}.dpt"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_sintel_dpt(path, depth)
            key = f"{scene}/{frame}"
            fx.depth[f"{subset}:{key}" if subset else key] = depth.astype(np.float64)
            if subset:
                fx.subsets[f"{subset}:{key}"] = subset


def sintel(root: Path, seed: int = 4) -> Fixture:
    """training/final/<scene>/frame_NNNN.png + training/depth/<scene>/frame_NNNN.dpt."""
    fx = Fixture("sintel", root, cap=72.0)
    _sintel_tree(root, np.random.default_rng(seed), ("alley_1", "cave_2"), (24, 56), 70.0, 72.0, fx)
    return fx


def synthetic_heldout(root: Path, seed: int = 5) -> Fixture:
    """ROOT/heldout/<family>/ in the Sintel layout (ids in the fixture: "family:scene/frame")."""
    rng = np.random.default_rng(seed)
    fx = Fixture("synthetic-heldout", root, cap=80.0)
    for family in ("landscapes", "clutter"):
        _sintel_tree(root / "heldout" / family, rng, ("s000",), (24, 32), 60.0, 80.0, fx, family)
    return fx


def diw(root: Path, seed: int = 6) -> Fixture:
    """DIW_Annotations/DIW_test.csv + DIW_test/<hash>.thumb (JPEG). The fixture keeps a dense
    depth per image from which the pair labels were drawn (for affine-prediction tests)."""
    rng = np.random.default_rng(seed)
    shape = (24, 32)
    fx = Fixture("diw", root)
    entries = []
    for k in range(4):
        stem = f"{k:02d}a9f3c1"
        _save_rgb(root / "DIW_test" / f"{stem}.thumb", _rgb(rng, shape), "JPEG")
        depth = 1.0 + 9.0 * rng.random(shape)
        ya, yb = rng.integers(0, shape[0], 2)
        xa, xb = rng.integers(0, shape[1], 2)
        label = 1 if depth[ya, xa] < depth[yb, xb] else -1
        pairs = np.array([[ya, xa, yb, xb, label]], dtype=np.int64)
        entries.append((f"./DIW_test/{stem}.thumb", pairs, shape))
        fx.depth[stem] = depth
        fx.pairs[stem] = pairs
    (root / "DIW_Annotations").mkdir(parents=True)
    write_diw_csv(root / "DIW_Annotations" / "DIW_test.csv", entries)
    return fx


def folder(root: Path, seed: int = 7) -> Fixture:
    """images/<name>.png + targets/<name>.npy + dataset.yaml declaring metric depth."""
    rng = np.random.default_rng(seed)
    shape = (20, 20)
    fx = Fixture("folder", root, cap=20.0)
    (root / "targets").mkdir(parents=True)
    for name in ("kitchen", "garden"):
        _save_rgb(root / "images" / f"{name}.png", _rgb(rng, shape))
        depth = _depth(rng, shape, 0.5, 19.0, 20.0).astype(np.float32)
        np.save(root / "targets" / f"{name}.npy", depth)
        fx.depth[name] = depth.astype(np.float64)
    (root / "dataset.yaml").write_text("space: metric_depth\n")
    return fx


BUILDERS = {
    "nyu": nyu,
    "kitti": kitti,
    "tum": tum,
    "eth3d": eth3d,
    "sintel": sintel,
    "diw": diw,
    "folder": folder,
    "synthetic-heldout": synthetic_heldout,
}

"""Tiny dataset trees in each real layout, written with numpy / Pillow / struct / h5py only
(independently of mixdepth.io), for the dataset tests and the data benchmark."""

from __future__ import annotations

import struct
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

H, W = 16, 24


def rgb(rng, h=H, w=W):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def save_rgb(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")  # lossless, even when named .jpg


def save_u16(path: Path, codes: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(codes.astype(np.uint16)).save(path, format="PNG")


def save_u8(path: Path, codes: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(codes.astype(np.uint8)).save(path, format="PNG")


def save_pfm(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = array.shape
    path.write_bytes(f"Pf\n{w} {h}\n-1.0\n".encode() + array[::-1].astype("<f4").tobytes())


def save_dpt(path: Path, depth: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = depth.shape
    path.write_bytes(struct.pack("<fii", 202021.25, w, h) + depth.astype("<f4").tobytes())


def depth_map(rng, low=0.5, high=9.0, holes=0.2, h=H, w=W):
    depth = rng.uniform(low, high, (h, w)).astype(np.float32)
    depth[rng.random((h, w)) < holes] = 0
    return depth


def make_tum(root: Path, rng, n=3, sequence="rgbd_dataset_freiburg1_desk"):
    seq = root / sequence
    truth = {}
    rgb_lines, depth_lines = ["# color images", "# timestamp filename"], ["# depth maps"]
    for i in range(n):
        t_rgb, t_depth = 100.0 + i / 30, 100.0 + i / 30 + 0.004
        image, depth = rgb(rng), depth_map(rng)
        codes = np.round(depth * 5000).astype(np.uint16)
        save_rgb(seq / "rgb" / f"{t_rgb:.6f}.png", image)
        save_u16(seq / "depth" / f"{t_depth:.6f}.png", codes)
        rgb_lines.append(f"{t_rgb:.6f} rgb/{t_rgb:.6f}.png")
        depth_lines.append(f"{t_depth:.6f} depth/{t_depth:.6f}.png")
        truth[f"{sequence}/{t_rgb:.6f}"] = (image, codes / np.float32(5000))
    (seq / "rgb.txt").write_text("\n".join(rgb_lines) + "\n")
    (seq / "depth.txt").write_text("\n".join(depth_lines) + "\n")
    return truth


def make_kitti(root: Path, rng, frames=(5, 6), drive="2011_09_26_drive_0002_sync", split="train"):
    truth = {}
    for frame in frames:
        image, depth = rgb(rng), depth_map(rng, 1.0, 90.0, holes=0.7)
        codes = np.round(depth * 256).astype(np.uint16)
        name = f"{frame:010d}.png"
        save_rgb(root / drive[:10] / drive / "image_02" / "data" / name, image)
        gt = root / "data_depth_annotated" / split / drive / "proj_depth" / "groundtruth"
        save_u16(gt / "image_02" / name, codes)
        truth[f"{drive}/image_02/{frame:010d}"] = (image, codes / np.float32(256))
    calib = root / drive[:10] / "calib_cam_to_cam.txt"
    calib.write_text("calib_time: x\nP_rect_02: 721.5 0 609.5 44.8 0 721.5 172.8 0.2 0 0 1 0.003\n")
    return truth


def make_megadepth(root: Path, rng, scene="0001", n=2):
    truth = {}
    for i in range(n):
        image, depth = rgb(rng), depth_map(rng, 0.1, 40.0)
        stem = f"img_{i}"
        save_rgb(root / scene / "dense0" / "imgs" / f"{stem}.jpg", image)
        (root / scene / "dense0" / "depths").mkdir(parents=True, exist_ok=True)
        with h5py.File(root / scene / "dense0" / "depths" / f"{stem}.h5", "w") as f:
            f["depth"] = depth
        truth[f"{scene}/dense0/{stem}"] = (image, depth)
    return truth


def make_hrwsi(root: Path, rng, split="train", n=2):
    truth = {}
    for i in range(n):
        image = rgb(rng)
        disparity = rng.integers(0, 65536, (H, W)).astype(np.uint16)
        valid = rng.random((H, W)) > 0.25
        save_rgb(root / split / "imgs" / f"{i:05d}.jpg", image)
        save_u16(root / split / "gts" / f"{i:05d}.png", disparity)
        save_u8(root / split / "valid_masks" / f"{i:05d}.png", valid * 255)
        truth[f"{split}/{i:05d}"] = (image, disparity.astype(np.float32), valid)
    return truth


def make_redweb(root: Path, rng, n=2):
    truth = {}
    for i in range(n):
        image, disparity = rgb(rng), rng.integers(0, 256, (H, W))
        save_rgb(root / "Imgs" / f"{i}.jpg", image)
        save_u8(root / "RDs" / f"{i}.png", disparity)
        truth[str(i)] = (image, disparity.astype(np.float32))
    return truth


def make_folder(root: Path, rng, n=2, space="disparity_up_to_scale_and_shift"):
    truth = {}
    for i in range(n):
        image = rgb(rng)
        disparity = rng.uniform(-1.0, 3.0, (H, W)).astype(np.float32)
        disparity[0, :4] = np.nan
        save_rgb(root / "images" / f"clip/{i:03d}.png", image)
        save_pfm(root / "targets" / f"clip/{i:03d}.pfm", disparity)
        truth[f"clip/{i:03d}"] = (image, disparity)
    (root / "dataset.yaml").write_text(f"space: {space}\nscale: 1.0\n")
    return truth


def make_diw(root: Path, rng, split="test", n=2):
    truth = {}
    lines = []
    for i in range(n):
        image = rgb(rng)
        save_rgb(root / "DIW_test" / f"h{i}.thumb", image)
        ya, xa, yb, xb = (int(v) for v in rng.integers(1, 15, 4))
        relation = "<" if i % 2 == 0 else ">"
        lines += [f"./DIW_test/h{i}.thumb", f"{ya},{xa},{yb},{xb},{relation},{H},{W}"]
        label = 1 if relation == "<" else -1
        truth[f"h{i}"] = (image, np.array([[ya - 1, xa - 1, yb - 1, xb - 1, label]]))
    (root / "DIW_Annotations").mkdir(parents=True, exist_ok=True)
    (root / "DIW_Annotations" / f"DIW_{split}.csv").write_text("\n".join(lines) + "\n")
    return truth


def make_sintel(root: Path, rng, scenes=("alley_1",), n=2):
    truth = {}
    for scene in scenes:
        for i in range(1, n + 1):
            image, depth = rgb(rng), rng.uniform(0.5, 100.0, (H, W)).astype(np.float32)
            frame = f"frame_{i:04d}"
            save_rgb(root / "training" / "final" / scene / f"{frame}.png", image)
            save_rgb(root / "training" / "clean" / scene / f"{frame}.png", 255 - image)
            save_dpt(root / "training" / "depth" / scene / f"{frame}.dpt", depth)
            cam = root / "training" / "camdata_left" / scene / f"{frame}.cam"
            cam.parent.mkdir(parents=True, exist_ok=True)
            k = np.array([[30.0, 0, 12], [0, 30, 8], [0, 0, 1]])
            cam.write_bytes(struct.pack("<f", 202021.25) + k.tobytes() + np.zeros(12).tobytes())
            truth[f"{scene}/{frame}"] = (image, depth)
    return truth


def make_nyu(root: Path, rng, n=12, h=H, w=W, name="nyu_depth_v2_labeled.mat"):
    """A labeled .mat in MATLAB's column-major HDF5 layout; returns (images, depths)."""
    images = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    depths = rng.uniform(0.5, 12.0, (n, h, w)).astype(np.float32)
    root.mkdir(parents=True, exist_ok=True)
    with h5py.File(root / name, "w") as f:
        f["images"] = images.transpose(0, 3, 2, 1)
        f["depths"] = depths.transpose(0, 2, 1)
    return images, depths


def make_eth3d(root: Path, rng, scene="courtyard", n=2):
    truth = {}
    for i in range(n):
        image = rgb(rng)
        depth = rng.uniform(1.0, 80.0, (H, W)).astype(np.float32)
        depth[rng.random((H, W)) < 0.3] = np.inf
        stem = f"DSC_{i:04d}.JPG"
        save_rgb(root / scene / "images" / "dslr_images_undistorted" / stem, image)
        path = root / scene / "ground_truth_depth" / "dslr_images" / stem
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(depth.astype("<f4").tobytes())
        truth[f"{scene}/{stem}"] = (image, depth)
    return truth


def make_diode(root: Path, rng, split="val", n=2):
    truth = {}
    for i, kind in zip(range(n), ("indoors", "outdoors") * n, strict=False):
        image = rgb(rng)
        depth = rng.uniform(0.5, 300.0, (H, W, 1)).astype(np.float32)
        mask = (rng.random((H, W)) > 0.2).astype(np.float32)
        base = root / split / kind / "scene_00001" / "scan_00002" / f"00001_00002_{kind}_{i:03d}"
        save_rgb(base.with_name(base.name + ".png"), image)
        np.save(base.with_name(base.name + "_depth.npy"), depth)
        np.save(base.with_name(base.name + "_depth_mask.npy"), mask)
        truth[str(base.relative_to(root))] = (image, depth[..., 0], mask > 0)
    return truth


def make_tartanair(root: Path, rng, n=2):
    truth = {}
    folder = root / "abandonedfactory" / "Easy" / "P000"
    for i in range(n):
        image = rgb(rng)
        depth = rng.uniform(0.5, 50.0, (H, W)).astype(np.float32)
        depth[0, :] = 10000.0  # sky
        save_rgb(folder / "image_left" / f"{i:06d}_left.png", image)
        (folder / "depth_left").mkdir(parents=True, exist_ok=True)
        np.save(folder / "depth_left" / f"{i:06d}_left_depth.npy", depth)
        truth[f"abandonedfactory/Easy/P000/{i:06d}_left"] = (image, depth)
    return truth


def make_blendedmvs(root: Path, rng, scene="5a3ca9cb270f0e3f14d0eddb", n=2):
    truth = {}
    for i in range(n):
        image = rgb(rng)
        depth = rng.uniform(100.0, 900.0, (H, W)).astype(np.float32)
        depth[rng.random((H, W)) < 0.3] = 0
        save_rgb(root / scene / "blended_images" / f"{i:08d}.jpg", image)
        save_pfm(root / scene / "rendered_depth_maps" / f"{i:08d}.pfm", depth)
        cam = root / scene / "cams" / f"{i:08d}_cam.txt"
        cam.parent.mkdir(parents=True, exist_ok=True)
        cam.write_text(
            "extrinsic\n1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n\n"
            "intrinsic\n40 0 12\n0 41 8\n0 0 1\n\n425 2.5\n"
        )
        truth[f"{scene}/{i:08d}"] = (image, depth)
    return truth

"""Dataset personalities: how each kind of real ground truth is incomplete or ambiguous.

A personality turns an exact `Render` into the annotation a real dataset of that kind would
hold (`Annotation`): a target in the dataset's space with its holes, noise, sparsity and
unknown scale/shift, or only ordinal point pairs. Writing it in the real on-disk layout is
`mixdepth.synthetic.writer`'s job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mixdepth.data.sample import Space, depth_to_disparity
from mixdepth.errors import ConfigError
from mixdepth.synthetic.render import Render, matmul3
from mixdepth.synthetic.scenes import TRAIN_FAMILIES

DEG = np.pi / 180


@dataclass
class Annotation:
    """target float32 (H, W) in `space` (0 where invalid); mask bool (H, W); pairs int64
    (N, 5) [y_a, x_a, y_b, x_b, label] for ordinal data (label +1: a closer); image: the
    RGB to store when the personality alters it (letterboxing), else None."""

    target: np.ndarray
    mask: np.ndarray
    pairs: np.ndarray | None = None
    image: np.ndarray | None = None


def depth_edges(depth: np.ndarray, valid: np.ndarray, ratio: float = 1.08) -> np.ndarray:
    """Pixels next to a depth discontinuity: the 3x3 max/min depth ratio exceeds `ratio`.

    depth (H, W) metres (inf = sky); sky borders count as edges. Returns bool (H, W)."""
    d = np.where(valid, depth, 1e6).astype(np.float32)
    hi = ndimage.maximum_filter(d, size=3, mode="nearest")
    lo = ndimage.minimum_filter(d, size=3, mode="nearest")
    return hi > ratio * lo


def _blobs(rng: np.random.Generator, shape, fraction: float, smooth: float) -> np.ndarray:
    """Random smooth blobs covering about `fraction` of an image of `shape`."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), smooth)
    return noise > np.quantile(noise, 1 - fraction)


# ----------------------------------------------------------------------------- personalities
def indoor_rgbd(r: Render, rng: np.random.Generator) -> Annotation:
    """Structured-light RGB-D (NYU/TUM-like): metric depth within 0.4-10 m, holes at depth
    edges (with a projector-shadow band on one side), on dark, specular and grazing surfaces,
    and axial noise that grows with the square of the depth."""
    d = r.depth
    valid = r.mask & (d >= 0.4) & (d <= 10.0)
    edges = depth_edges(d, r.mask)
    shadow = int(rng.integers(1, 4))  # projector baseline: holes extend to one side
    edges = ndimage.binary_dilation(edges, structure=np.ones((1, 2 * shadow + 1), bool))
    view_cos = np.abs(r.normal[..., 2])
    dark = r.albedo < 0.04
    shiny = (r.specular > 0.5) & (view_cos > 0.8)
    grazing = view_cos < 0.12
    valid &= ~edges & ~dark & ~shiny & ~grazing
    valid &= ~_blobs(rng, d.shape, rng.uniform(0.0, 0.03), 2.0)  # IR interference
    sigma = 0.0012 + 0.0019 * (np.where(valid, d, 0.4) - 0.4) ** 2
    noisy = d + sigma * rng.standard_normal(d.shape).astype(np.float32)
    valid &= (noisy > 0.4) & (noisy < 10.0)
    return Annotation(np.where(valid, noisy, 0).astype(np.float32), valid)


# Velodyne HDL-64E: 64 beams from +2 deg to -24.8 deg elevation.
LIDAR_TOP, LIDAR_BOTTOM, LIDAR_BEAMS = 2.0 * DEG, -24.8 * DEG, 64


def street_lidar(r: Render, rng: np.random.Generator) -> Annotation:
    """Projected LiDAR scans (KITTI-like): a level scanner at the camera sees thin lines at
    fixed elevation angles between +2 and -24.8 degrees, so only the lower part of the image
    has depth; points beyond 80 m, on sky and a random few per cent are missing."""
    h, w = r.depth.shape
    k = r.intrinsics
    v, u = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    cam = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], -1)
    world = matmul3(cam, r.rotation.T)
    elevation = np.arctan2(world[..., 2], np.hypot(world[..., 0], world[..., 1]))
    pixel_angle = 1.0 / k[1, 1]  # vertical angle of one pixel near the centre (radians)
    # At low resolution the real 0.42 deg spacing would cover every row; keep the lines
    # sparse by spacing them at least 3 pixels apart.
    spacing = max((LIDAR_TOP - LIDAR_BOTTOM) / (LIDAR_BEAMS - 1), 3 * pixel_angle)
    beam = (LIDAR_TOP - elevation) / spacing
    on_line = np.abs(beam - np.round(beam)) * spacing < 0.5 * pixel_angle
    in_fov = (elevation <= LIDAR_TOP + 1e-6) & (elevation >= LIDAR_BOTTOM - 1e-6)
    valid = on_line & in_fov & r.mask & (r.depth <= 80.0) & (r.depth > 0.5)
    valid &= rng.random((h, w)) > rng.uniform(0.03, 0.12)  # dropped returns
    noisy = r.depth + rng.normal(0, 0.02, (h, w)).astype(np.float32)
    valid &= (noisy > 0) & (noisy <= 80.0)
    return Annotation(np.where(valid, noisy, 0).astype(np.float32), valid)


def sfm(r: Render, rng: np.random.Generator) -> Annotation:
    """Multi-view stereo (MegaDepth-like): depth up to an unknown per-image scale, no sky,
    holes in texture-less regions and random blobs, foreground bleeding into the background
    at depth edges and a few gross outliers."""
    d = r.depth
    grey = r.image.mean(-1)
    texture = ndimage.uniform_filter(np.hypot(ndimage.sobel(grey, 0), ndimage.sobel(grey, 1)), 7)
    valid = r.mask & (texture > np.quantile(texture, rng.uniform(0.02, 0.15)))
    valid &= ~_blobs(rng, d.shape, rng.uniform(0.02, 0.12), 3.0)
    depth = np.where(r.mask, d, 0).astype(np.float32)
    band = max(1, d.shape[0] // 128)  # bleeding reaches a few pixels at full resolution
    edges = ndimage.binary_dilation(depth_edges(d, r.mask), iterations=band)
    fattened = ndimage.minimum_filter(np.where(r.mask, d, 1e9), size=2 * band + 1)
    bleed = edges & (rng.random(d.shape) < 0.3) & r.mask
    depth = np.where(bleed, fattened, depth)
    gross = (rng.random(d.shape) < rng.uniform(0.002, 0.01)) & valid
    depth = np.where(gross, depth * rng.uniform(0.5, 2.0, d.shape).astype(np.float32), depth)
    scale = float(np.exp(rng.uniform(np.log(0.05), np.log(20.0))))
    valid &= depth > 0
    return Annotation(np.where(valid, depth * scale, 0).astype(np.float32), valid)


def web_stereo(r: Render, rng: np.random.Generator) -> Annotation:
    """Web stereo pairs (ReDWeb/HRWSI-like): disparity up to an unknown scale, sky invalid,
    left-right-check failures at occlusion edges, small matching noise."""
    d = r.depth
    valid = r.mask & ~ndimage.binary_dilation(depth_edges(d, r.mask), iterations=1)
    disparity, _ = depth_to_disparity(d.astype(np.float64), r.mask)
    disparity *= 1 + rng.normal(0, 0.003, d.shape)
    peak = disparity[valid].max() if valid.any() else 1.0
    target = disparity / peak * rng.uniform(0.5, 1.0)  # unknown scale, range (0, 1]
    return Annotation(np.where(valid, target, 0).astype(np.float32), valid)


def movies_3d(r: Render, rng: np.random.Generator) -> Annotation:
    """Stereo frames of 3-D films: pixel disparity up to unknown scale AND shift (baseline,
    convergence and post-production shifts), sky and frame borders invalid, sometimes
    letterboxed (black bars in the image, invalid target)."""
    h, w = r.depth.shape
    valid = r.mask.copy()
    image = r.image.copy()
    left, right = (int(rng.uniform(0.02, 0.08) * w) for _ in range(2))
    valid[:, :left] = False
    valid[:, w - right :] = False
    if rng.random() < 0.5:
        bar = int(rng.uniform(0.05, 0.12) * h)
        valid[:bar] = False
        valid[h - bar :] = False
        image[:bar] = 0
        image[h - bar :] = 0
    focal_baseline = rng.uniform(0.5, 4.0) * r.intrinsics[0, 0] * 0.065
    disparity = focal_baseline / np.where(r.mask, r.depth, 1.0)
    shift = rng.uniform(-0.5, 0.5) * float(np.median(disparity[valid])) if valid.any() else 0.0
    target = disparity - shift
    return Annotation(np.where(valid, target, 0).astype(np.float32), valid, image=image)


def ordinal(r: Render, rng: np.random.Generator, n_pairs: int = 1) -> Annotation:
    """Ordinal annotation (DIW-like): `n_pairs` point pairs with a "closer/further" label
    that agrees with the exact depth; points on sky count as the furthest. Pairs whose depths
    differ by less than 15 % are not asked (annotators cannot tell)."""
    h, w = r.depth.shape
    depth = np.where(r.mask, r.depth, np.inf)
    pairs = []
    for _ in range(64):
        if len(pairs) == n_pairs:
            break
        ya, yb = rng.integers(0, h, 2)
        xa, xb = rng.integers(0, w, 2)
        da, db = depth[ya, xa], depth[yb, xb]
        if not (np.isfinite(da) or np.isfinite(db)):
            continue
        if max(da, db) < 1.15 * min(da, db):
            continue
        pairs.append([ya, xa, yb, xb, 1 if da < db else -1])
    if not pairs:  # fall back to the nearest and the furthest pixel
        order = np.argsort(depth, axis=None)
        (ya, xa), (yb, xb) = np.unravel_index(order[[0, -1]], (h, w))
        pairs.append([ya, xa, yb, xb, 1])
    target = np.zeros((h, w), np.float32)
    return Annotation(target, np.zeros((h, w), bool), pairs=np.asarray(pairs, np.int64))


def exact(r: Render, rng: np.random.Generator) -> Annotation:
    """Synthetic renders (Sintel/TartanAir-like): exact metric depth, sky invalid."""
    return Annotation(np.where(r.mask, r.depth, 0).astype(np.float32), r.mask.copy())


@dataclass(frozen=True)
class Personality:
    """name; dataset: loader name in `mixdepth.data`; space: target space as the loader
    declares it; families: default scene families; annotate: Render, rng -> Annotation."""

    name: str
    dataset: str
    space: Space
    families: tuple[str, ...]
    annotate: Callable[[Render, np.random.Generator], Annotation]


PERSONALITIES: dict[str, Personality] = {
    p.name: p
    for p in (
        Personality("indoor-rgbd", "tum", Space.METRIC_DEPTH,
                    ("indoor", "clutter", "tabletop", "objects"), indoor_rgbd),
        Personality("street-lidar", "kitti", Space.METRIC_DEPTH, ("street",), street_lidar),
        Personality("sfm", "megadepth", Space.DEPTH_UP_TO_SCALE,
                    ("street", "clutter", "objects", "tabletop"), sfm),
        Personality("web-stereo", "hrwsi", Space.DISPARITY_UP_TO_SCALE_AND_SHIFT,
                    TRAIN_FAMILIES, web_stereo),
        Personality("movies-3d", "folder", Space.DISPARITY_UP_TO_SCALE_AND_SHIFT,
                    TRAIN_FAMILIES, movies_3d),
        Personality("ordinal", "diw", Space.ORDINAL, TRAIN_FAMILIES, ordinal),
        Personality("exact", "sintel", Space.METRIC_DEPTH, TRAIN_FAMILIES, exact),
    )
}


def get_personality(name: str) -> Personality:
    if name not in PERSONALITIES:
        raise ConfigError(f"personality: unknown personality {name!r}; choose one of "
                          f"{', '.join(PERSONALITIES)}")
    return PERSONALITIES[name]

"""Vectorised ray casting of procedural scenes: exact z-depth, shading, shadows, camera effects.

World frame: metres, z up. Camera frame: OpenCV (x right, y down, z forward). Primary rays
use un-normalised directions whose camera-frame z component is 1, so a hit parameter `t` is
directly the z-depth of the hit. Every intersection routine works on all rays of an image
and all primitives of one kind at once (arrays of shape (K, N)); Python loops run over
primitive kinds and ray-marching steps only, never over pixels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from mixdepth.synthetic.textures import TEXTURE_SIZE, TextureBank

EPS = 1e-4


def matmul3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for a contraction of length 3 (a (..., 3); b (3,) or (3, K)) as three broadcast
    products. Used instead of `@` on per-pixel arrays: a BLAS matrix product of this shape
    is memory-bound, and OpenBLAS's worker threads then cost several times its useful CPU
    time (and contend with the generator's own worker processes)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    if b.ndim == 1:
        return a0 * b[0] + a1 * b[1] + a2 * b[2]
    if a.size <= 3 * b.shape[1]:  # few rows of a, many columns of b: whole rows at once
        return a0[..., None] * b[0] + a1[..., None] * b[1] + a2[..., None] * b[2]
    return np.stack([a0 * b[0, k] + a1 * b[1, k] + a2 * b[2, k] for k in range(b.shape[1])], -1)


# ----------------------------------------------------------------------------- scene model
@dataclass
class Camera:
    """Pinhole camera. intrinsics: (3, 3) pixels; rotation: (3, 3) camera -> world (columns
    are the camera's right, down and forward axes in world coordinates); position: (3,)."""

    intrinsics: np.ndarray
    rotation: np.ndarray
    position: np.ndarray
    height: int
    width: int

    def ray_directions(self) -> np.ndarray:
        """World-space directions (H*W, 3) with camera-frame z = 1 (so t = z-depth)."""
        k = self.intrinsics
        v, u = np.meshgrid(
            np.arange(self.height, dtype=np.float32) + 0.5,
            np.arange(self.width, dtype=np.float32) + 0.5,
            indexing="ij",
        )
        cam = np.stack(
            [(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], axis=-1
        ).reshape(-1, 3)
        return matmul3(cam, self.rotation.T.astype(np.float32)).astype(np.float32)


def camera_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera -> world rotation (3, 3) for angles in radians: yaw about world z (0 looks
    along +y), pitch about the camera's right axis (positive looks up), roll about the
    viewing axis."""
    base = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]).T  # columns: right, down, forward
    cy, sy = np.cos(yaw), np.sin(yaw)
    yaw_m = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    cp, sp = np.cos(pitch), np.sin(pitch)
    pitch_m = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])  # about camera x
    cr, sr = np.cos(roll), np.sin(roll)
    roll_m = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])  # about camera z
    return (yaw_m @ base @ pitch_m @ roll_m).astype(np.float32)


@dataclass
class Terrain:
    """Heightfield z = base + mask(x) * sum_k amp_k sin(freq_k . (x, y) + phase_k).

    mask rises smoothly from 0 for |x| <= flat_half_width to 1 at flat_half_width + ramp, so
    a street can run along the y axis on flat ground (flat_half_width < 0 means no flat band).
    """

    base: float
    amplitudes: np.ndarray  # (M,)
    frequencies: np.ndarray  # (M, 2) radians per metre
    phases: np.ndarray  # (M,)
    flat_half_width: float = -1.0
    ramp: float = 1.0
    obj_id: int = 0

    @property
    def max_height(self) -> float:
        return float(self.base + np.abs(self.amplitudes).sum())

    def height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        z = np.zeros_like(x)
        for amp, (fx, fy), ph in zip(self.amplitudes, self.frequencies, self.phases, strict=True):
            z += amp * np.sin(fx * x + fy * y + ph)
        if self.flat_half_width >= 0:
            s = np.clip((np.abs(x) - self.flat_half_width) / self.ramp, 0.0, 1.0)
            z *= s * s * (3 - 2 * s)
        return z + self.base


@dataclass
class Scene:
    """Primitives grouped by kind (arrays), one material per object id, lights and atmosphere.

    Rows of every `rot` array are the object's local axes in world coordinates
    (world -> local: rot @ (p - center)). Quads lie in their local xy plane; cylinders run
    along local z. A room is the inside of an axis-aligned box with materials for floor,
    walls and ceiling.
    """

    camera: Camera
    textures: TextureBank
    # materials, indexed by object id
    tex_id: np.ndarray  # (O,) int
    tint: np.ndarray  # (O, 3) linear RGB albedo multiplier
    tex_scale: np.ndarray  # (O,) metres per texture repeat
    specular: np.ndarray  # (O,) specular strength in [0, 1]
    frame_rot: np.ndarray  # (O, 3, 3) texture frame (rows: local axes)
    frame_origin: np.ndarray  # (O, 3)
    # primitives
    planes: dict = field(default_factory=dict)  # normal (P,3), offset (P,), ids (P,)
    boxes: dict = field(default_factory=dict)  # center, rot, half (B,3), ids
    spheres: dict = field(default_factory=dict)  # center, radius, ids
    cylinders: dict = field(default_factory=dict)  # center, rot, radius, half_height, ids
    quads: dict = field(default_factory=dict)  # center, rot, half (Q,2), ids
    room: dict | None = None  # lo (3,), hi (3,), ids (3,) floor/walls/ceiling
    terrain: Terrain | None = None
    # lighting and atmosphere
    sun_direction: np.ndarray | None = None  # (3,) unit, towards the sun
    light_position: np.ndarray | None = None  # (3,) point light
    light_radius: float = 3.0  # point light falloff 1 / (1 + (d / radius)^2)
    light_colour: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))
    ambient_colour: np.ndarray = field(default_factory=lambda: np.full(3, 0.3, np.float32))
    sky_horizon: np.ndarray = field(default_factory=lambda: np.array([0.8, 0.85, 0.9]))
    sky_zenith: np.ndarray = field(default_factory=lambda: np.array([0.3, 0.5, 0.9]))
    haze_distance: float = np.inf  # metres for 63% extinction
    haze_colour: np.ndarray = field(default_factory=lambda: np.array([0.7, 0.75, 0.8]))
    ao_strength: float = 0.6


# ----------------------------------------------------------------------------- intersections
# Each routine intersects rays o (M|1, 3), d (M, 3) with ONE object and returns t (M,), inf on
# a miss. The caller runs it on the rays that can possibly hit the object (see `cast`).
def _dot(a, b):
    """Row-wise dot product of (M, 3) arrays."""
    return np.einsum("ij,ij->i", a, b)


def _safe(x):
    return np.where(np.abs(x) < 1e-12, np.float32(1e-12), x)


def _local(o, d, center, rot):
    """Ray origins and directions in an object's frame, component-first: (3, M|1), (3, M)
    (rows x, y, z are contiguous, so the per-component arithmetic below streams)."""
    return matmul3(rot, (o - center).T), matmul3(rot, d.T)


def _hit_box(o, d, center, rot, half):
    ol, dl = _local(o, d, center, rot)
    inv = 1.0 / _safe(dl)
    t1 = (-half[:, None] - ol) * inv  # slab planes, all three axes at once: (3, M)
    t2 = (half[:, None] - ol) * inv
    tnear = np.minimum(t1, t2).max(0)
    tfar = np.maximum(t1, t2).min(0)
    ok = (tfar >= tnear) & (tfar > EPS)
    return np.where(ok, np.where(tnear > EPS, tnear, tfar), np.inf)


def _hit_sphere(o, d, center, radius):
    oc, dt = (o - center).T, d.T
    a = (dt * dt).sum(0)
    b = (oc * dt).sum(0)
    c = (oc * oc).sum(0) - radius * radius
    disc = b * b - a * c
    sq = np.sqrt(np.maximum(disc, 0))
    t0, t1 = (-b - sq) / a, (-b + sq) / a
    t = np.where(t0 > EPS, t0, np.where(t1 > EPS, t1, np.inf))
    return np.where(disc >= 0, t, np.inf)


def _hit_cylinder(o, d, center, rot, radius, half_height):
    (ox, oy, oz), (dx, dy, dz) = _local(o, d, center, rot)
    a = _safe(dx * dx + dy * dy)
    b = ox * dx + oy * dy
    c = ox * ox + oy * oy - radius * radius
    disc = b * b - a * c
    sq = np.sqrt(np.maximum(disc, 0))
    t = np.full(d.shape[0], np.inf, np.float32)
    for sign in (1.0, -1.0):  # far root first, the near root overrides it
        ts = (-b - sign * sq) / a
        t = np.where((disc >= 0) & (ts > EPS) & (np.abs(oz + ts * dz) <= half_height), ts, t)
    inv_z = 1.0 / _safe(dz)
    for sign in (1.0, -1.0):
        tc = (sign * half_height - oz) * inv_z
        x, y = ox + tc * dx, oy + tc * dy
        t = np.where((tc > EPS) & (x * x + y * y <= radius * radius) & (tc < t), tc, t)
    return t


def _hit_quad(o, d, center, rot, half):
    ol, dl = _local(o, d, center, rot)
    t = -ol[2] / _safe(dl[2])
    x = ol[0] + t * dl[0]
    y = ol[1] + t * dl[1]
    return np.where((t > EPS) & (np.abs(x) <= half[0]) & (np.abs(y) <= half[1]), t, np.inf)


def _hit_object(kind, prims, i, o, d):
    if kind == "boxes":
        return _hit_box(o, d, prims["center"][i], prims["rot"][i], prims["half"][i])
    if kind == "spheres":
        return _hit_sphere(o, d, prims["center"][i], prims["radius"][i])
    if kind == "cylinders":
        return _hit_cylinder(o, d, prims["center"][i], prims["rot"][i], prims["radius"][i],
                             prims["half_height"][i])
    return _hit_quad(o, d, prims["center"][i], prims["rot"][i], prims["half"][i])


def _normals(kind, prims, i, p):
    """World normals (M, 3) at surface points p (M, 3) of objects i (M,) of one kind."""
    if kind == "spheres":
        return (p - prims["center"][i]) / prims["radius"][i][:, None]
    rot = prims["rot"][i]
    if kind == "quads":
        return rot[:, 2]
    pl = np.einsum("mij,mj->mi", rot, p - prims["center"][i])
    m = np.arange(len(i))
    nl = np.zeros_like(pl)
    if kind == "boxes":
        axis = np.argmax(np.abs(pl) / prims["half"][i], axis=-1)
        nl[m, axis] = np.sign(pl[m, axis])
    else:  # cylinders
        rho = np.sqrt(pl[:, 0] ** 2 + pl[:, 1] ** 2)
        cap = np.abs(np.abs(pl[:, 2]) - prims["half_height"][i]) < np.abs(rho - prims["radius"][i])
        nl[:, 2] = np.where(cap, np.sign(pl[:, 2]), 0)
        side = ~cap
        nl[side, :2] = pl[side, :2] / np.maximum(rho[side], 1e-9)[:, None]
    return np.einsum("mji,mj->mi", rot, nl)


BOUNDED = ("boxes", "spheres", "cylinders", "quads")


_SIGNS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)],
                  np.float32)


def _corners(kind, prims):
    """Corners (K, 8, 3) of each object's oriented bounding box in world coordinates."""
    if kind == "spheres":
        r = prims["radius"][:, None, None]
        return prims["center"][:, None, :] + _SIGNS[None] * r
    if kind == "cylinders":
        r, hh = prims["radius"], prims["half_height"]
        ext = np.stack([r, r, hh], -1)
    elif kind == "quads":
        ext = np.concatenate([prims["half"], np.zeros((len(prims["half"]), 1), np.float32)], -1)
    else:
        ext = prims["half"]
    local = _SIGNS[None] * ext[:, None, :]  # (K, 8, 3)
    return prims["center"][:, None, :] + np.einsum("kci,kij->kcj", local, prims["rot"])


def _project_bounds(corners):
    """Image-plane bounds (x0, x1, y0, y1) of boxes seen by a pinhole with focal length 1
    looking along +z; corners (K, 8, 3) in its frame. Returns bounds (K, 4) and a flag:
    1 = bounded, 0 = crosses the pinhole's plane (whole view), -1 = entirely behind."""
    z = corners[..., 2]
    in_front = (z > 1e-6).all(-1)
    safe_z = np.where(z > 1e-6, z, 1.0)
    x, y = corners[..., 0] / safe_z, corners[..., 1] / safe_z
    bounds = np.stack([x.min(-1), x.max(-1), y.min(-1), y.max(-1)], -1)
    flag = np.where(in_front, 1, np.where((z > 0).any(-1), 0, -1))
    return bounds, flag


class _RayGrid:
    """Rays binned by a 2-D key (and a group id) so that the rays inside a key rectangle are
    found as a few contiguous slices of one sorted index array. `reach` (N,) is how far
    each ray's origin lies towards the light; an object whose nearest point is further
    along than `reach` lies behind the origin and cannot shadow it."""

    def __init__(self, kx, ky, groups, n_groups, reach, cells=48):
        self.cells = cells
        self.reach = reach
        self.key_min = np.array([kx.min(), ky.min()])
        self.key_max = np.array([kx.max(), ky.max()])
        # Cells span the central 98 % of the keys (a few far points, e.g. ground near the
        # horizon, would otherwise make the cells huge); outliers sit in the border cells.
        step = max(1, len(kx) // 4096)
        self.lo, hi = np.quantile(np.stack([kx[::step], ky[::step]]), [0.01, 0.99], axis=1)
        self.span = np.maximum(hi - self.lo, 1e-6)
        cx = np.clip(((kx - self.lo[0]) * (cells / self.span[0])).astype(np.int32), 0, cells - 1)
        cy = np.clip(((ky - self.lo[1]) * (cells / self.span[1])).astype(np.int32), 0, cells - 1)
        cell = ((groups * cells + cy) * cells + cx).astype(np.uint16)
        self.order = np.argsort(cell, kind="stable")  # a radix sort for 16-bit keys
        counts = np.bincount(cell, minlength=n_groups * cells * cells)
        self.start = np.concatenate([[0], np.cumsum(counts)])

    def rays_in(self, group, x0, x1, y0, y1, reach):
        lo, hi = self.key_min, self.key_max
        if x1 < lo[0] or y1 < lo[1] or x0 > hi[0] or y0 > hi[1]:
            return np.zeros(0, np.int64)
        c = self.cells
        cx0, cx1 = np.clip(((np.array([x0, x1]) - self.lo[0]) / self.span[0] * c).astype(int),
                           0, c - 1)
        cy0, cy1 = np.clip(((np.array([y0, y1]) - self.lo[1]) / self.span[1] * c).astype(int),
                           0, c - 1)
        rows = (group * c + np.arange(cy0, cy1 + 1)) * c  # one slice of `order` per row
        a, b = self.start[rows + cx0], self.start[rows + cx1 + 1]
        lengths = b - a
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, np.int64)
        ends = np.cumsum(lengths)
        idx = self.order[np.repeat(a - ends + lengths, lengths) + np.arange(total)]
        return idx[self.reach[idx] > reach]


def _candidates_primary(scene, corners, culling):
    """Per object: the pixel rectangle whose primary rays may hit it (None: no pixel)."""
    cam = scene.camera
    if not culling:
        return [slice(None)] * len(corners)
    bounds, flag = _project_bounds((corners - cam.position) @ cam.rotation)
    k = cam.intrinsics
    out = []
    for b, f in zip(bounds, flag, strict=True):
        if f < 0:
            out.append(None)
            continue
        if f == 0:
            out.append(slice(None))
            continue
        c0 = max(int(np.floor(k[0, 0] * b[0] + k[0, 2])), 0)
        c1 = min(int(np.ceil(k[0, 0] * b[1] + k[0, 2])) + 1, cam.width)
        r0 = max(int(np.floor(k[1, 1] * b[2] + k[1, 2])), 0)
        r1 = min(int(np.ceil(k[1, 1] * b[3] + k[1, 2])) + 1, cam.height)
        if c1 <= c0 or r1 <= r0:
            out.append(None)
        else:
            out.append((slice(r0, r1), slice(c0, c1)))
    return out


def _candidates_shadow(scene, corners, light_grid):
    """Per object: indices of the shadow rays whose path towards the light may meet it."""
    grid, mode, e = light_grid
    if mode == "sun":
        keys = corners @ e.T  # (K, 8, 3) orthographic along the sun direction
        lo, hi = keys.min(1), keys.max(1)
        # a ray from origin o towards the sun only meets objects with e2 . x > e2 . o
        return [grid.rays_in(0, a0, a1, b0, b1, -s1)
                for (a0, b0, _), (a1, b1, s1) in zip(lo, hi, strict=True)]
    w = corners - scene.light_position
    center = corners.mean(1)
    radius = np.sqrt(((corners - center[:, None]) ** 2).sum(-1)).max(-1)
    nearest = np.linalg.norm(center - scene.light_position, axis=-1) - radius
    per_face = []
    for axis in range(3):  # a cube map around the point light, one pinhole per face
        j, k = [a for a in range(3) if a != axis]
        for s in (1.0, -1.0):
            view = np.stack([w[..., j], w[..., k], s * w[..., axis]], -1)
            per_face.append(_project_bounds(view))
    out = []
    for i in range(len(corners)):
        parts = []
        for group, (bounds, flag) in enumerate(per_face):
            if flag[i] < 0:
                continue
            x0, x1, y0, y1 = bounds[i] if flag[i] > 0 else (-1, 1, -1, 1)
            if x1 < -1 or x0 > 1 or y1 < -1 or y0 > 1:
                continue
            parts.append(grid.rays_in(group, x0, x1, y0, y1, nearest[i]))
        out.append(np.concatenate(parts) if parts else np.zeros(0, np.int64))
    return out


def _light_grid(scene, origins):
    if scene.light_position is None:
        e = frame_from_direction(scene.sun_direction)
        kx, ky, along = matmul3(e, origins.T)  # orthographic view along the sun direction
        return _RayGrid(kx, ky, 0, 1, -along), "sun", e
    w0, w1, w2 = (origins - scene.light_position).T.copy()  # cube map around the light
    a0, a1, a2 = np.abs(w0), np.abs(w1), np.abs(w2)
    axis = np.where((a0 >= a1) & (a0 >= a2), 0, np.where(a1 >= a2, 1, 2))
    major = np.where(axis == 0, w0, np.where(axis == 1, w1, w2))
    inv = 1.0 / np.abs(major)
    kx = np.where(axis == 0, w1, w0) * inv
    ky = np.where(axis == 2, w1, w2) * inv
    groups = 2 * axis + (major < 0)
    return _RayGrid(kx, ky, groups, 6, np.sqrt(w0 * w0 + w1 * w1 + w2 * w2)), "point", None


def _hit_planes(p, o, d):
    n, off = p["normal"], p["offset"]
    t = (off[:, None] - matmul3(n, o.T)) / _safe(matmul3(n, d.T))
    t = np.where(t > EPS, t, np.inf)
    k = np.argmin(t, axis=0)
    return np.take_along_axis(t, k[None], 0)[0], k


def _hit_room(room, o, d):
    bound = np.where(d > 0, room["hi"], room["lo"])
    t_axes = (bound - o) / _safe(d)
    axis = np.argmin(t_axes, axis=-1)
    t = np.take_along_axis(t_axes, axis[:, None], -1)[:, 0]
    up = np.take_along_axis(d, axis[:, None], -1)[:, 0] > 0
    face = np.where(axis == 2, np.where(up, 2, 0), 1)
    return np.where(t > EPS, t, np.inf), face, axis


def _terrain(terrain, o, d, t_max, steps, t_first):
    """First crossing of the heightfield below t_max by geometric marching and bisection."""
    n = d.shape[0]
    t_hit = np.full(n, np.inf, np.float32)
    o = np.broadcast_to(o, d.shape)
    top = terrain.max_height
    active = np.nonzero(np.isfinite(t_max) | (d[:, 2] < 0) | (o[:, 2] < top))[0]
    t_end = np.minimum(t_max, 5000.0)
    ratio = (5000.0 / t_first) ** (1.0 / steps)
    lo_t = np.zeros(n, np.float32)
    hi_t = np.zeros(n, np.float32)
    found = np.zeros(n, bool)
    t_prev, t_cur = 0.0, t_first
    for _ in range(steps):
        if active.size == 0:
            break
        oa, da = o[active], d[active]
        p = oa + t_cur * da
        below = p[:, 2] < terrain.height(p[:, 0], p[:, 1])
        idx = active[below]
        found[idx] = True
        lo_t[idx], hi_t[idx] = t_prev, t_cur
        rising_above = (da[:, 2] >= 0) & (p[:, 2] > top)
        active = active[~below & ~rising_above & (t_cur < t_end[active])]
        t_prev, t_cur = t_cur, t_cur * ratio
    idx = np.nonzero(found)[0]
    if idx.size:
        oa, da = o[idx], d[idx]
        lo, hi = lo_t[idx], hi_t[idx]
        for _ in range(10):
            mid = 0.5 * (lo + hi)
            p = oa + mid[:, None] * da
            below = p[:, 2] < terrain.height(p[:, 0], p[:, 1])
            hi = np.where(below, mid, hi)
            lo = np.where(below, lo, mid)
        t_hit[idx] = hi
    return np.where(t_hit < t_max, t_hit, np.inf)


def _terrain_normals(terrain, p):
    e = 0.02 + 1e-3 * np.abs(p[:, :2]).max(-1)
    dx = terrain.height(p[:, 0] + e, p[:, 1]) - terrain.height(p[:, 0] - e, p[:, 1])
    dy = terrain.height(p[:, 0], p[:, 1] + e) - terrain.height(p[:, 0], p[:, 1] - e)
    n = np.stack([-dx, -dy, 2 * e], -1)
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


@dataclass
class Hits:
    """Nearest hit per ray: t (N,) (inf = miss), obj (N,) object id, normal (N, 3) world."""

    t: np.ndarray
    obj: np.ndarray
    normal: np.ndarray


def cast_primary(scene: Scene, culling: bool = True, dirs: np.ndarray | None = None) -> Hits:
    """Nearest hit of every pixel's ray: t is the z-depth (inf where the ray sees sky).

    With culling, each bounded object is tested only against the pixels inside its projected
    bounding sphere; without, against every pixel (the straightforward baseline)."""
    cam = scene.camera
    h, w = cam.height, cam.width
    dirs = cam.ray_directions() if dirs is None else dirs
    o = cam.position[None].astype(np.float32)
    t_best = np.full(h * w, np.inf, np.float32)
    obj = np.full(h * w, -1, np.int64)
    kind_of = np.full(h * w, -1, np.int64)  # 0..3 bounded kinds, 4 plane, 5 room, 6 terrain
    local = np.zeros(h * w, np.int64)  # index within its kind
    if len(scene.planes.get("ids", ())):
        t, k = _hit_planes(scene.planes, o, dirs)
        closer = t < t_best
        t_best[closer], kind_of[closer], local[closer] = t[closer], 4, k[closer]
    room_axis = None
    if scene.room is not None:
        t, face, room_axis = _hit_room(scene.room, o, dirs)
        closer = t < t_best
        t_best[closer], kind_of[closer], local[closer] = t[closer], 5, face[closer]
    t_img = t_best.reshape(h, w)
    dirs_img = dirs.reshape(h, w, 3)
    kind_img, local_img = kind_of.reshape(h, w), local.reshape(h, w)
    for kind_index, kind in enumerate(BOUNDED):
        prims = getattr(scene, kind)
        if not len(prims.get("ids", ())):
            continue
        regions = _candidates_primary(scene, _corners(kind, prims), culling)
        for i, region in enumerate(regions):
            if region is None:
                continue
            if isinstance(region, slice):
                region = (slice(None), slice(None))
            d = dirs_img[region]
            t = _hit_object(kind, prims, i, o, d.reshape(-1, 3)).reshape(d.shape[:2])
            sub_t = t_img[region]
            closer = t < sub_t
            sub_t[closer] = t[closer]
            kind_img[region][closer] = kind_index
            local_img[region][closer] = i
    if scene.terrain is not None:
        t = _terrain(scene.terrain, o, dirs, t_best, 48, 0.2)
        closer = t < t_best
        t_best[closer], kind_of[closer] = t[closer], 6
    normal = np.zeros((h * w, 3), np.float32)
    p = o + np.where(np.isfinite(t_best), t_best, 0)[:, None] * dirs
    for kind_index, kind in enumerate(BOUNDED):
        sel = kind_of == kind_index
        if sel.any():
            prims = getattr(scene, kind)
            normal[sel] = _normals(kind, prims, local[sel], p[sel])
            obj[sel] = prims["ids"][local[sel]]
    sel = kind_of == 4
    if sel.any():
        normal[sel] = scene.planes["normal"][local[sel]]
        obj[sel] = scene.planes["ids"][local[sel]]
    sel = kind_of == 5
    if sel.any():
        rows = np.nonzero(sel)[0]
        axis = room_axis[rows]
        normal[rows, axis] = -np.sign(dirs[rows, axis])
        obj[sel] = scene.room["ids"][local[sel]]
    sel = kind_of == 6
    if sel.any():
        normal[sel] = _terrain_normals(scene.terrain, p[sel])
        obj[sel] = scene.terrain.obj_id
    return Hits(t_best, obj, normal)


def cast_shadow(scene: Scene, origins: np.ndarray, dirs: np.ndarray, t_max: np.ndarray,
                culling: bool = True) -> np.ndarray:
    """Which shadow rays reach the light: origins, dirs (M, 3), t_max (M,) distance to the
    light in units of |dir| (inf for the sun). Returns bool (M,) True = lit. The room and
    infinite planes never cast shadows."""
    lit = np.ones(len(dirs), bool)
    if len(dirs) == 0:
        return lit
    light_grid = _light_grid(scene, origins) if culling else None
    tests = []  # (kind, object index, candidate ray indices)
    for kind in BOUNDED:
        prims = getattr(scene, kind)
        if not len(prims.get("ids", ())):
            continue
        if culling:
            cands = _candidates_shadow(scene, _corners(kind, prims), light_grid)
        else:
            cands = [np.arange(len(dirs))] * len(prims["ids"])
        tests += [(kind, i, idx) for i, idx in enumerate(cands) if idx.size]
    # Objects that may shadow the most rays first: rays found in shadow are not tested again.
    tests.sort(key=lambda test: -test[2].size)
    for kind, i, idx in tests:
        idx = idx[lit[idx]]
        if idx.size == 0:
            continue
        t = _hit_object(kind, getattr(scene, kind), i, origins[idx], dirs[idx])
        lit[idx[t < t_max[idx]]] = False
    if scene.terrain is not None:
        idx = np.nonzero(lit)[0]
        t = _terrain(scene.terrain, origins[idx], dirs[idx], t_max[idx], 20, 0.05)
        lit[idx[np.isfinite(t)]] = False
    return lit


def frame_from_direction(direction: np.ndarray) -> np.ndarray:
    """Rows (e1, e2, direction) of an orthonormal frame around a unit direction (3,)."""
    n = np.asarray(direction, np.float64)
    helper = np.array([1.0, 0, 0]) if abs(n[0]) < 0.9 else np.array([0, 1.0, 0])
    e1 = np.cross(n, helper)
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(n, e1), n]).astype(np.float32)


# ----------------------------------------------------------------------------- shading
@dataclass
class Render:
    """A rendered sample.

    image: float32 (H, W, 3) sRGB in [0, 1] (after camera effects); depth: float32 (H, W)
    exact z-depth in metres, inf where the ray sees sky; mask: bool (H, W) finite depth;
    intrinsics: float32 (3, 3); albedo: float32 (H, W) linear albedo luminance;
    specular: float32 (H, W) specular strength; normal: float32 (H, W, 3) camera frame;
    rotation: float32 (3, 3) camera -> world (world z up); family: scene family name.
    """

    image: np.ndarray
    depth: np.ndarray
    mask: np.ndarray
    intrinsics: np.ndarray
    albedo: np.ndarray
    specular: np.ndarray
    normal: np.ndarray
    rotation: np.ndarray
    family: str = ""


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return matmul3(rgb, np.array([0.2126, 0.7152, 0.0722], np.float32))


def luminance_depth_correlation(renders) -> float:
    """Pearson r between per-pixel luminance (Rec. 709 weights on the stored sRGB image) and
    log depth, pooled over the valid pixels of a set of `Render`s. Near 0 means brightness
    does not tell depth across the set (0.0 when it is undefined, e.g. no valid pixel)."""
    lum = np.concatenate([_luminance(r.image)[r.mask] for r in renders])
    log_depth = np.concatenate([np.log(r.depth[r.mask]) for r in renders])
    if lum.size < 2 or lum.std() == 0 or log_depth.std() == 0:
        return 0.0
    return float(np.corrcoef(lum, log_depth)[0, 1])


def _screen_space_ao(pos: np.ndarray, nrm: np.ndarray, valid: np.ndarray, radius: int):
    """Cheap ambient occlusion from camera-space positions and normals (3, h, w): the
    fraction of 8 neighbours at `radius` pixels that lie above the tangent plane and close
    in 3-D (neighbours outside the image do not occlude). Returns (h, w)."""
    _, h, w = pos.shape
    occ = np.zeros((h, w), np.float32)
    reach = pos[2] * np.float32(3.0 * radius / max(h, w))
    r = radius
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1)):
        ys = slice(max(0, -dy * r), h - max(0, dy * r))  # pixels whose neighbour exists
        xs = slice(max(0, -dx * r), w - max(0, dx * r))
        yn = slice(max(0, dy * r), h - max(0, -dy * r))  # their neighbours
        xn = slice(max(0, dx * r), w - max(0, -dx * r))
        v0 = pos[0, yn, xn] - pos[0, ys, xs]
        v1 = pos[1, yn, xn] - pos[1, ys, xs]
        v2 = pos[2, yn, xn] - pos[2, ys, xs]
        dist = np.sqrt(v0 * v0 + v1 * v1 + v2 * v2) + np.float32(1e-6)
        cos = (v0 * nrm[0, ys, xs] + v1 * nrm[1, ys, xs] + v2 * nrm[2, ys, xs]) / dist
        close = valid[yn, xn] & (dist < reach[ys, xs])
        occ[ys, xs] += np.where(close, np.clip(cos - 0.1, 0, 1), 0)
    return occ / 8.0


def shade(scene: Scene, culling: bool = True) -> tuple[np.ndarray, dict]:
    """Ray cast and shade: returns linear HDR radiance (H, W, 3) and a G-buffer dict with
    depth (H, W, inf = sky), albedo luminance, specular, camera-frame normals."""
    cam = scene.camera
    h, w = cam.height, cam.width
    dirs = cam.ray_directions()
    origin = cam.position[None].astype(np.float32)
    hits = cast_primary(scene, culling, dirs)
    hit = np.isfinite(hits.t)
    radiance = np.zeros((h * w, 3), np.float32)
    f32 = np.float32
    light_colour = scene.light_colour.astype(f32)

    # sky
    sky_idx = np.nonzero(~hit)[0]
    if sky_idx.size:
        ds = dirs[sky_idx]
        ds = ds / np.sqrt(_dot(ds, ds))[:, None]
        elev = np.sqrt(np.clip(ds[:, 2], 0, 1))[:, None]
        sky = scene.sky_horizon.astype(f32) * (1 - elev) + scene.sky_zenith.astype(f32) * elev
        if scene.sun_direction is not None:
            glow = np.clip(matmul3(ds, scene.sun_direction.astype(f32)), 0, 1) ** 64
            sky = sky + 0.6 * glow[:, None] * light_colour
        radiance[sky_idx] = sky

    idx = np.nonzero(hit)[0]
    t = hits.t[idx]
    obj = hits.obj[idx]
    d = dirs[idx]
    d_len = np.sqrt(_dot(d, d))
    dn = d / d_len[:, None]
    p = origin + t[:, None] * d
    n = hits.normal[idx]
    n = np.where((_dot(n, d) > 0)[:, None], -n, n)  # face the camera

    # texture lookup in world units (triplanar in the object's frame)
    rot = scene.frame_rot[obj]
    pl = np.einsum("nij,nj->ni", rot, p - scene.frame_origin[obj])
    nl = np.abs(np.einsum("nij,nj->ni", rot, n))
    axis = np.argmax(nl, axis=-1)
    u = np.where(axis == 0, pl[:, 1], pl[:, 0])
    v = np.where(axis == 2, pl[:, 1], pl[:, 2])
    scale = scene.tex_scale[obj]
    cos_view = np.abs(_dot(n, dn))
    pixel_metres = t / cam.intrinsics[0, 0] / np.maximum(cos_view, 0.2)
    footprint = pixel_metres / scale * TEXTURE_SIZE
    albedo = scene.textures.sample(scene.tex_id[obj], u / scale, v / scale, footprint)
    albedo = albedo * scene.tint[obj]

    # direct light with a shadow ray per pixel
    lift = p + n * (1e-3 + 1e-3 * t)[:, None]
    if scene.sun_direction is not None:
        to_light = np.broadcast_to(scene.sun_direction.astype(np.float32), p.shape)
        falloff = np.ones(len(idx), np.float32)
        limit = np.full(len(idx), np.inf, np.float32)
    else:
        to_light = (scene.light_position - lift).astype(np.float32)
        dist = np.sqrt(_dot(to_light, to_light))
        falloff = 1.0 / (1.0 + (dist / scene.light_radius) ** 2)
        to_light = to_light / dist[:, None]
        limit = dist
    ndotl = np.clip(_dot(n, to_light), 0, 1)
    lit = ndotl > 0
    visible = np.zeros(len(idx), np.float32)
    visible[lit] = cast_shadow(scene, lift[lit], np.ascontiguousarray(to_light[lit]),
                               limit[lit], culling)
    direct = (ndotl * falloff * visible)[:, None] * light_colour

    # camera-space geometry for AO and the G-buffer
    r_cw = cam.rotation
    n_cam = matmul3(n, r_cw)
    pos_cam = np.zeros((h * w, 3), np.float32)
    nrm_cam = np.zeros((h * w, 3), np.float32)
    pos_cam[idx] = matmul3(p - origin, r_cw)
    nrm_cam[idx] = n_cam
    half = (slice(None), slice(None, None, 2), slice(None, None, 2))
    ao_half = _screen_space_ao(
        np.ascontiguousarray(pos_cam.T.reshape(3, h, w)[half]),
        np.ascontiguousarray(nrm_cam.T.reshape(3, h, w)[half]),
        hit.reshape(h, w)[half[1:]], radius=max(1, w // 48),
    )
    ao = np.repeat(np.repeat(ao_half, 2, 0), 2, 1)[:h, :w].reshape(-1)[idx]
    ambient = scene.ambient_colour.astype(f32) * (1 - scene.ao_strength * ao)[:, None]
    colour = albedo * (ambient + direct)

    spec = scene.specular[obj]
    shiny = np.nonzero(spec > 0)[0]
    if shiny.size:  # Blinn-Phong highlight on specular materials only
        half_vec = to_light[shiny] - dn[shiny]
        half_vec /= np.sqrt(_dot(half_vec, half_vec))[:, None] + 1e-9
        highlight = np.clip(_dot(n[shiny], half_vec), 0, 1) ** 40
        gain = spec[shiny] * highlight * falloff[shiny] * visible[shiny] * 2.0
        colour[shiny] += gain[:, None] * light_colour

    # haze with Euclidean distance
    if np.isfinite(scene.haze_distance):
        trans = np.exp(-(t * d_len) / f32(scene.haze_distance))[:, None]
        colour = colour * trans + scene.haze_colour.astype(f32) * (1 - trans)
    radiance[idx] = colour

    depth = np.full(h * w, np.inf, np.float32)
    depth[idx] = t
    alb = np.zeros(h * w, np.float32)
    alb[idx] = _luminance(albedo)
    spec_map = np.zeros(h * w, np.float32)
    spec_map[idx] = spec
    gbuffer = {
        "depth": depth.reshape(h, w),
        "albedo": alb.reshape(h, w),
        "specular": spec_map.reshape(h, w),
        "normal": nrm_cam.reshape(h, w, 3),
    }
    return radiance.reshape(h, w, 3), gbuffer


def lens_blur(radiance: np.ndarray, depth: np.ndarray, rng: np.random.Generator,
              defocus_p: float = 0.3, motion_p: float = 0.08) -> np.ndarray:
    """Depth-of-field and motion blur on linear radiance (H, W, 3); depth (H, W), inf = sky.

    Defocus (a share `defocus_p` of the images): focus on the depth of a random valid pixel;
    the blur sigma grows linearly with |1/z - 1/z_focus| up to a random maximum (0.8-3.5 px
    at 256 px), and each pixel takes its colour from a stack of Gaussian-blurred copies,
    interpolated between the two nearest blur levels. Motion blur (a share `motion_p`): a
    straight streak of 3-9 px (at 256 px) in a random direction over the whole image.
    """
    h, w, _ = radiance.shape
    scale = h / 256
    out = radiance
    valid = np.isfinite(depth)
    if rng.random() < defocus_p and valid.any():
        inv = np.where(valid, 1.0 / np.where(valid, depth, 1.0), 0.0).astype(np.float32)
        focus = inv[valid][int(rng.integers(int(valid.sum())))]
        coc = np.abs(inv - focus)
        top = float(np.quantile(coc, 0.98))
        max_sigma = rng.uniform(0.8, 3.5) * scale
        if top > 0 and max_sigma > 0.3:
            sigma = np.clip(coc / top, 0, 1) * max_sigma
            levels = np.linspace(0.0, max_sigma, 5, dtype=np.float32)
            stack = np.stack([out] + [ndimage.gaussian_filter(out, (s, s, 0), mode="nearest")
                                      for s in levels[1:]])
            pos = sigma / levels[1]
            lo = np.minimum(pos.astype(np.int64), len(levels) - 2)
            frac = (pos - lo).astype(np.float32)[..., None]
            rows, cols = np.indices((h, w))
            out = stack[lo, rows, cols] * (1 - frac) + stack[lo + 1, rows, cols] * frac
    if rng.random() < motion_p:
        length = rng.uniform(3, 9) * scale
        angle = rng.uniform(0, np.pi)
        half = int(np.ceil(length / 2))
        kernel = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
        steps = np.linspace(-length / 2, length / 2, 4 * half + 1)
        np.add.at(kernel, (np.round(half + steps * np.sin(angle)).astype(np.int64),
                           np.round(half + steps * np.cos(angle)).astype(np.int64)), 1.0)
        kernel /= kernel.sum()
        out = np.stack([ndimage.convolve(out[..., c], kernel, mode="nearest")
                        for c in range(3)], -1)
    return np.ascontiguousarray(out, dtype=np.float32)


def camera_effects(radiance: np.ndarray, valid: np.ndarray, rng: np.random.Generator):
    """Exposure, tone curve, white balance, vignetting, blur, noise and JPEG artefacts.

    radiance: linear (H, W, 3); valid: bool (H, W) pixels used for auto-exposure.
    Returns float32 (H, W, 3) sRGB in [0, 1].
    """
    h, w, _ = radiance.shape
    lum = _luminance(radiance)
    ref = float(np.mean(lum[valid])) if valid.any() else float(np.mean(lum))
    key = rng.uniform(0.18, 0.45)
    x = radiance * (key / max(ref, 1e-6))
    x = x * rng.uniform(0.9, 1.1, size=3).astype(np.float32)  # white balance
    yy = np.linspace(-1, 1, h, dtype=np.float32)[:, None] ** 2
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :] ** 2
    x *= (1 - np.float32(rng.uniform(0, 0.25) / 2) * (xx + yy))[..., None]  # vignetting
    x /= 1 + x / 4.0  # soft highlight roll-off
    img = np.power(np.clip(x, 0, 1, out=x), 1 / 2.2, out=x)
    sigma = rng.uniform(0, 0.9) * h / 256
    if sigma > 0.2:
        img = ndimage.gaussian_filter(img, sigma=(sigma, sigma, 0), mode="nearest")
    noise = rng.uniform(0.002, 0.02)
    img += rng.standard_normal(img.shape, dtype=np.float32) * noise * np.sqrt(img + 0.05)
    img = np.clip(img, 0, 1, out=img)
    if rng.random() < 0.5:
        buf = io.BytesIO()
        Image.fromarray((img * 255 + 0.5).astype(np.uint8)).save(
            buf, format="JPEG", quality=int(rng.integers(35, 95))
        )
        img = np.asarray(Image.open(io.BytesIO(buf.getvalue())), dtype=np.float32) / 255.0
    return img.astype(np.float32)


def render(scene: Scene, rng: np.random.Generator, family: str = "", culling: bool = True
           ) -> Render:
    """Render `scene` into a `Render` (image, exact z-depth, mask, intrinsics, G-buffer).
    Lens blur changes the image only; the depth stays the sharp rendered z-depth."""
    radiance, g = shade(scene, culling)
    mask = np.isfinite(g["depth"])
    image = camera_effects(lens_blur(radiance, g["depth"], rng), mask, rng)
    return Render(
        image=image,
        depth=g["depth"],
        mask=mask,
        intrinsics=scene.camera.intrinsics.astype(np.float32),
        albedo=g["albedo"],
        specular=g["specular"],
        normal=g["normal"],
        rotation=scene.camera.rotation.astype(np.float32),
        family=family,
    )

"""Procedural scene families: rooms, streets, clutter, tabletops, large objects, landscapes,
forests and shelves of still lifes.

Each family is a function `(rng, height, width) -> Scene`. Families in `TRAIN_FAMILIES` feed
the training personalities; `HELDOUT_FAMILIES` never do, so evaluation on them is zero-shot.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mixdepth.errors import ConfigError
from mixdepth.synthetic.render import Camera, Render, Scene, Terrain, camera_rotation, render
from mixdepth.synthetic.textures import random_bank

DEG = np.pi / 180


def rot_z(yaw: float) -> np.ndarray:
    """World -> local rotation (rows = local axes) for a frame turned by `yaw` about z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]], np.float32)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation matrix (3, 3)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.astype(np.float32)


def frame_from_normal(normal, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Rows (u, v, n) of a frame whose third axis is `normal` (for quads and planes)."""
    n = np.asarray(normal, np.float64)
    n = n / np.linalg.norm(n)
    up = np.asarray(up, np.float64)
    if abs(n @ up) > 0.95:
        up = np.array([0.0, 1.0, 0.0])
    u = np.cross(up, n)
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    return np.stack([u, v, n]).astype(np.float32)


class SceneBuilder:
    """Accumulates primitives and materials, then packs them into a `Scene`."""

    def __init__(self, rng: np.random.Generator, n_textures: int = 8, photo_fraction=0.5):
        self.rng = rng
        self.bank = random_bank(rng, n_textures, photo_fraction)
        self.mats: list[tuple] = []  # (tex, tint, scale, specular, rot, origin)
        self.prims: dict[str, list] = {k: [] for k in ("planes", "boxes", "spheres",
                                                        "cylinders", "quads")}
        self.room = None
        self.terrain = None

    def material(self, scale=(0.3, 3.0), dark_p=0.08, specular_p=0.12, tint=None) -> dict:
        """Random material: scale is a (lo, hi) log-uniform range in metres per repeat."""
        rng = self.rng
        if tint is None:
            tint = rng.uniform(0.5, 1.3) * rng.uniform(0.8, 1.2, 3)
        tint = np.asarray(tint, np.float32)
        if rng.random() < dark_p:
            tint = tint * rng.uniform(0.03, 0.1)
        return {
            "tex": int(rng.integers(self.bank.count)),
            "tint": tint,
            "scale": float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1])))),
            "specular": float(rng.uniform(0.3, 1.0)) if rng.random() < specular_p else 0.0,
        }

    def _obj(self, mat: dict, rot, origin) -> int:
        rot = np.asarray(rot, np.float32)
        self.mats.append((mat["tex"], mat["tint"], mat["scale"], mat["specular"], rot,
                          np.asarray(origin, np.float32)))
        return len(self.mats) - 1

    def plane(self, normal, offset: float, mat: dict) -> None:
        rot = frame_from_normal(normal)
        oid = self._obj(mat, rot, np.zeros(3))
        self.prims["planes"].append((rot[2], offset, oid))

    def box(self, center, half, mat: dict, rot=None) -> None:
        rot = np.eye(3, dtype=np.float32) if rot is None else np.asarray(rot, np.float32)
        oid = self._obj(mat, rot, center)
        self.prims["boxes"].append((np.asarray(center), rot, np.asarray(half), oid))

    def sphere(self, center, radius: float, mat: dict) -> None:
        oid = self._obj(mat, random_rotation(self.rng), center)
        self.prims["spheres"].append((np.asarray(center), radius, oid))

    def cylinder(self, center, radius: float, half_height: float, mat: dict, rot=None) -> None:
        rot = np.eye(3, dtype=np.float32) if rot is None else np.asarray(rot, np.float32)
        oid = self._obj(mat, rot, center)
        self.prims["cylinders"].append((np.asarray(center), rot, radius, half_height, oid))

    def quad(self, center, half, rot, mat: dict) -> None:
        oid = self._obj(mat, rot, center)
        self.prims["quads"].append((np.asarray(center), np.asarray(rot), np.asarray(half), oid))

    def set_room(self, lo, hi, mats: tuple[dict, dict, dict]) -> None:
        ids = [self._obj(m, np.eye(3), np.zeros(3)) for m in mats]
        self.room = {"lo": np.asarray(lo, np.float32), "hi": np.asarray(hi, np.float32),
                     "ids": np.asarray(ids, np.int64)}

    def set_terrain(self, terrain: Terrain, mat: dict) -> None:
        terrain.obj_id = self._obj(mat, np.eye(3), np.zeros(3))
        self.terrain = terrain

    def build(self, camera: Camera, **lighting) -> Scene:
        f32 = np.float32

        def pack(rows, names):
            cols = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
            out = {}
            for name, col in zip(names, cols, strict=True):
                dtype = np.int64 if name == "ids" else f32
                out[name] = np.asarray(col, dtype)
            return out

        m = list(zip(*self.mats, strict=True))
        return Scene(
            camera=camera,
            textures=self.bank,
            tex_id=np.asarray(m[0], np.int64),
            tint=np.asarray(m[1], f32),
            tex_scale=np.asarray(m[2], f32),
            specular=np.asarray(m[3], f32),
            frame_rot=np.asarray(m[4], f32),
            frame_origin=np.asarray(m[5], f32),
            planes=pack(self.prims["planes"], ("normal", "offset", "ids")),
            boxes=pack(self.prims["boxes"], ("center", "rot", "half", "ids")),
            spheres=pack(self.prims["spheres"], ("center", "radius", "ids")),
            cylinders=pack(self.prims["cylinders"],
                           ("center", "rot", "radius", "half_height", "ids")),
            quads=pack(self.prims["quads"], ("center", "rot", "half", "ids")),
            room=self.room,
            terrain=self.terrain,
            **lighting,
        )


# ----------------------------------------------------------------------------- shared parts
def make_camera(rng, height, width, position, yaw, pitch, roll, fov=(40.0, 100.0)) -> Camera:
    """Perspective camera with a random horizontal field of view in degrees `fov`."""
    fov_h = rng.uniform(*fov) * DEG
    f = (width / 2) / np.tan(fov_h / 2)
    cx = width / 2 + rng.normal(0, 0.01 * width)
    cy = height / 2 + rng.normal(0, 0.01 * height)
    k = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]], np.float32)
    return Camera(k, camera_rotation(yaw, pitch, roll), np.asarray(position, np.float32),
                  height, width)


def outdoor_lighting(rng, haze=(100.0, 2000.0)) -> dict:
    """Sun, sky gradient and haze of a random time of day and weather."""
    elev = rng.uniform(12, 70) * DEG
    azim = rng.uniform(0, 2 * np.pi)
    sun = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
    kind = rng.choice(["clear", "overcast", "evening"], p=[0.5, 0.3, 0.2])
    if kind == "clear":
        horizon, zenith = np.array([0.75, 0.82, 0.9]), np.array([0.25, 0.45, 0.85])
        light = np.array([1.0, 0.96, 0.9]) * rng.uniform(2.0, 3.5)
    elif kind == "overcast":
        horizon, zenith = np.array([0.75, 0.75, 0.78]), np.array([0.6, 0.62, 0.66])
        light = np.array([1.0, 1.0, 1.0]) * rng.uniform(0.4, 1.0)
    else:
        horizon, zenith = np.array([0.95, 0.65, 0.45]), np.array([0.35, 0.35, 0.6])
        light = np.array([1.0, 0.7, 0.45]) * rng.uniform(1.5, 3.0)
    horizon = horizon * rng.uniform(0.85, 1.1, 3)
    ambient = (0.6 * horizon + 0.4 * zenith) * rng.uniform(0.3, 0.7)
    # Haze colour is the horizon colour at a random brightness, so far surfaces drift towards
    # a colour that is sometimes lighter and sometimes darker than the scene.
    haze_colour = horizon * rng.uniform(0.15, 0.9)
    return dict(
        sun_direction=sun.astype(np.float32),
        light_colour=light.astype(np.float32),
        ambient_colour=ambient.astype(np.float32),
        sky_horizon=horizon.astype(np.float32),
        sky_zenith=zenith.astype(np.float32),
        haze_distance=float(np.exp(rng.uniform(np.log(haze[0]), np.log(haze[1])))),
        haze_colour=haze_colour.astype(np.float32),
        ao_strength=float(rng.uniform(0.3, 0.8)),
    )


def indoor_lighting(rng, light_position) -> dict:
    colour = np.array([1.0, 0.9, 0.75]) * rng.uniform(0.9, 1.1, 3)
    return dict(
        light_position=np.asarray(light_position, np.float32),
        light_radius=float(rng.uniform(2.5, 6.0)),
        light_colour=(colour * rng.uniform(1.5, 3.0)).astype(np.float32),
        ambient_colour=(colour * rng.uniform(0.2, 0.5)).astype(np.float32),
        ao_strength=float(rng.uniform(0.4, 0.9)),
    )


def _tree(b: SceneBuilder, x, y, ground, rng, scale=1.0):
    trunk_h = rng.uniform(2.5, 8.0) * scale
    r = rng.uniform(0.08, 0.35) * scale
    bark = b.material((0.3, 1.0))
    b.cylinder((x, y, ground + trunk_h / 2 - 0.2), r, trunk_h / 2 + 0.2, bark)
    leaves = b.material((0.5, 2.0), tint=rng.uniform([0.2, 0.4, 0.1], [0.6, 0.9, 0.4]))
    crown = rng.uniform(1.0, 3.0) * scale
    if rng.random() < 0.6:
        b.sphere((x, y, ground + trunk_h + crown * 0.6), crown, leaves)
    else:
        b.cylinder((x, y, ground + trunk_h + crown), crown * 0.8, crown, leaves)


# ----------------------------------------------------------------------------- families
def indoor_room(rng: np.random.Generator, height: int, width: int) -> Scene:
    """A room (floor, walls, ceiling) with furniture-like boxes, tables on thin legs,
    shelves, balls, lamps, pillars, pictures and leaning boards."""
    b = SceneBuilder(rng)
    rw, rl, rh = rng.uniform(3, 8), rng.uniform(4, 12), rng.uniform(2.4, 3.5)
    floor, walls, ceiling = (b.material((0.4, 2.5), dark_p=0.1),
                             b.material((0.5, 3.0), dark_p=0.05),
                             b.material((0.5, 3.0), dark_p=0.0, specular_p=0.0))
    b.set_room((-rw / 2, 0, 0), (rw / 2, rl, rh), (floor, walls, ceiling))
    cam = np.array([rng.uniform(-rw / 2 + 0.4, rw / 2 - 0.4), rng.uniform(0.3, 1.2),
                    rng.uniform(0.6, 1.8)])
    for _ in range(int(rng.integers(5, 14))):
        x, y = rng.uniform(-rw / 2 + 0.3, rw / 2 - 0.3), rng.uniform(0.5, rl - 0.3)
        if np.hypot(x - cam[0], y - cam[1]) < 0.7:
            continue
        kind = rng.choice(["table", "cabinet", "ball", "lamp", "pillar", "crate", "board",
                           "picture"])
        m = b.material((0.2, 1.5))
        yaw = rng.uniform(0, np.pi)
        if kind == "table":
            hw, hd, th = rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.6), rng.uniform(0.45, 1.0)
            rot = rot_z(yaw)
            b.box((x, y, th), (hw, hd, 0.025), m, rot)
            leg = b.material((0.2, 1.0))
            for sx, sy in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                off = rot.T @ np.array([sx * (hw - 0.05), sy * (hd - 0.05), 0])
                b.cylinder((x + off[0], y + off[1], th / 2), 0.025, th / 2, leg)
            if rng.random() < 0.6:
                r = rng.uniform(0.05, 0.15)
                b.sphere((x, y, th + 0.025 + r), r, b.material((0.05, 0.5)))
        elif kind == "cabinet":
            half = (rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.5), rng.uniform(0.3, 1.1))
            b.box((x, y, half[2]), half, m, rot_z(yaw))
        elif kind == "crate":
            for level in range(int(rng.integers(1, 4))):
                s = rng.uniform(0.1, 0.35)
                b.box((x + rng.normal(0, 0.05), y, s + 2 * 0.3 * level), (s, s, s), m,
                      rot_z(yaw + rng.normal(0, 0.3)))
        elif kind == "ball":
            r = rng.uniform(0.08, 0.4)
            b.sphere((x, y, r), r, m)
        elif kind == "lamp":
            ph = rng.uniform(0.8, 1.8)
            b.cylinder((x, y, ph / 2), 0.02, ph / 2, b.material((0.2, 1.0)))
            b.sphere((x, y, ph + 0.12), 0.15, m)
        elif kind == "pillar":
            b.cylinder((x, y, rh / 2), rng.uniform(0.1, 0.3), rh / 2, m)
        elif kind == "board":
            tilt = rng.uniform(10, 60) * DEG
            n = np.array([np.sin(tilt) * np.cos(yaw), np.sin(tilt) * np.sin(yaw), np.cos(tilt)])
            half = (rng.uniform(0.3, 1.0), rng.uniform(0.3, 1.0))
            b.quad((x, y, half[1] * np.sin(tilt) + 0.02), half, frame_from_normal(n), m)
        else:  # picture on a side or back wall
            side = rng.integers(3)
            half = (rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.6))
            z = rng.uniform(1.0, rh - 0.8)
            if side == 2:
                b.quad((x, rl - 0.01, z), half, frame_from_normal((0, -1, 0)), m)
            else:
                sx = -1 if side == 0 else 1
                b.quad((sx * (rw / 2 - 0.01), y, z), half, frame_from_normal((-sx, 0, 0)), m)
    camera = make_camera(rng, height, width, cam, rng.uniform(-35, 35) * DEG,
                         rng.uniform(-25, 10) * DEG, rng.normal(0, 3) * DEG, fov=(50, 100))
    light = (rng.uniform(-rw / 2 + 0.3, rw / 2 - 0.3), rng.uniform(0.5, rl - 0.5), rh - 0.3)
    return b.build(camera, **indoor_lighting(rng, light))


def street(rng: np.random.Generator, height: int, width: int) -> Scene:
    """A street on flat ground: road, kerbs, building blocks,
    lamp posts, trees, cars, people and signs at many depths."""
    b = SceneBuilder(rng)
    road = rng.uniform(3, 7)
    ground = b.material((1.0, 4.0), dark_p=0.2, specular_p=0.0)
    b.plane((0, 0, 1), 0.0, ground)
    kerb = b.material((0.5, 2.0), specular_p=0.0)
    for sx in (-1, 1):
        b.box((sx * (road + 1.5), 100, 0.075), (1.5, 110, 0.075), kerb)
        y = rng.uniform(-15, 0)
        while y < 220:
            depth_y = rng.uniform(6, 25)
            if rng.random() < 0.85:
                hx, hz = rng.uniform(4, 10), rng.uniform(3, 25)
                setback = road + 3 + rng.uniform(0, 6)
                b.box((sx * (setback + hx), y + depth_y / 2, hz), (hx, depth_y / 2 - 0.2, hz),
                      b.material((1.0, 6.0), dark_p=0.05))
            y += depth_y
        for y in np.arange(rng.uniform(0, 10), 150, rng.uniform(10, 30)):
            if rng.random() < 0.5:
                ph = rng.uniform(4, 8)
                b.cylinder((sx * (road + 0.4), y, ph / 2), rng.uniform(0.06, 0.14), ph / 2,
                           b.material((0.3, 1.0)))
                if rng.random() < 0.5:
                    b.quad((sx * (road + 0.4), y - 0.05, ph * 0.7), (0.4, 0.3),
                           frame_from_normal((0, -1, 0)), b.material((0.3, 1.0)))
            else:
                _tree(b, sx * (road + 1.2), y, 0.0, rng, scale=rng.uniform(0.6, 1.2))
    for _ in range(int(rng.integers(2, 10))):
        x, y = rng.uniform(-road + 1, road - 1), rng.uniform(4, 90)
        body = b.material((0.3, 2.0), specular_p=0.5)
        yaw = rng.normal(0, 0.1)
        b.box((x, y, 0.65), (0.9, 2.1, 0.45), body, rot_z(yaw))
        b.box((x, y - 0.2, 1.3), (0.8, 1.1, 0.3), body, rot_z(yaw))
    for _ in range(int(rng.integers(0, 8))):
        x, y = rng.choice([-1, 1]) * (road + rng.uniform(0.5, 2.5)), rng.uniform(3, 60)
        hh = rng.uniform(0.75, 0.95)
        person = b.material((0.2, 1.0))
        b.cylinder((x, y, hh + 0.15), rng.uniform(0.15, 0.25), hh, person)
        b.sphere((x, y, 2 * hh + 0.3), 0.12, b.material((0.1, 0.5)))
    cam = (rng.uniform(-road + 1, road - 1), 0.0, rng.uniform(1.3, 2.5))
    camera = make_camera(rng, height, width, cam, rng.normal(0, 8) * DEG,
                         rng.uniform(-10, 5) * DEG, rng.normal(0, 2) * DEG, fov=(45, 100))
    return b.build(camera, **outdoor_lighting(rng, haze=(150, 2500)))


def clutter(rng: np.random.Generator, height: int, width: int) -> Scene:
    """Many objects of random shape, size and orientation in front of the camera, on a
    floor with an optional backdrop; an overall random scale from toy- to room-size."""
    b = SceneBuilder(rng)
    s = float(np.exp(rng.uniform(np.log(0.3), np.log(3.0))))
    b.plane((0, 0, 1), 0.0, b.material((0.3 * s, 2.0 * s), dark_p=0.1))
    if rng.random() < 0.7:
        back = rng.uniform(4, 14) * s
        b.plane((0, -1, 0), -back, b.material((0.5 * s, 3.0 * s)))
    yaw = rng.uniform(-0.4, 0.4)
    fwd = np.array([-np.sin(yaw), np.cos(yaw)])
    side = np.array([np.cos(yaw), np.sin(yaw)])
    for _ in range(int(rng.integers(15, 40))):
        dist = np.exp(rng.uniform(np.log(0.6), np.log(12))) * s
        xy = fwd * dist + side * rng.uniform(-0.8, 0.8) * dist
        size = np.exp(rng.uniform(np.log(0.05), np.log(0.7))) * s * (0.5 + dist / (6 * s))
        m = b.material((0.05 * s, 1.0 * s))
        floating = rng.random() < 0.25
        z = size * rng.uniform(1.0, 6.0) if floating else size
        kind = rng.choice(["box", "sphere", "cylinder", "quad", "pole"])
        if kind == "box":
            half = size * rng.uniform(0.3, 1.0, 3)
            rot = random_rotation(rng) if floating else rot_z(rng.uniform(0, np.pi))
            b.box((xy[0], xy[1], half[2] if not floating else z), half, m, rot)
        elif kind == "sphere":
            b.sphere((xy[0], xy[1], z), size, m)
        elif kind == "cylinder":
            rot = random_rotation(rng) if floating else np.eye(3)
            hh = size * rng.uniform(0.3, 1.5)
            b.cylinder((xy[0], xy[1], z if floating else hh), size * rng.uniform(0.2, 0.7), hh,
                       m, rot)
        elif kind == "quad":
            b.quad((xy[0], xy[1], z), (size, size * rng.uniform(0.3, 1.0)),
                   random_rotation(rng), m)
        else:
            hh = size * rng.uniform(2, 6)
            b.cylinder((xy[0], xy[1], hh), size * 0.05, hh, m)
    cam = (0.0, 0.0, rng.uniform(0.3, 2.0) * s)
    camera = make_camera(rng, height, width, cam, yaw, rng.uniform(-45, -5) * DEG,
                         rng.normal(0, 5) * DEG, fov=(40, 90))
    if rng.random() < 0.5:
        lighting = outdoor_lighting(rng, haze=(200 * s, 5000 * s))
    else:
        light = (rng.uniform(-3, 3) * s, rng.uniform(0, 6) * s, rng.uniform(2, 4) * s)
        lighting = indoor_lighting(rng, light)
        lighting["light_radius"] *= s
    return b.build(camera, **lighting)


def _terrain_sines(rng, count, amp, wavelength):
    amps = np.exp(rng.uniform(np.log(amp[0]), np.log(amp[1]), count))
    waves = np.exp(rng.uniform(np.log(wavelength[0]), np.log(wavelength[1]), count))
    order = np.argsort(-waves)
    amps = np.sort(amps)[::-1]  # longer waves get larger amplitudes
    ang = rng.uniform(0, np.pi, count)
    freqs = (2 * np.pi / waves[order])[:, None] * np.stack([np.cos(ang), np.sin(ang)], -1)
    return amps, freqs, rng.uniform(0, 2 * np.pi, count)


def landscape(rng: np.random.Generator, height: int, width: int) -> Scene:
    """Hills (heightfield) with boulders and a few trees, haze; the camera looks down a
    little so that much of the view lies within the 72-80 m of the evaluation protocol."""
    b = SceneBuilder(rng)
    amps, freqs, phases = _terrain_sines(rng, 6, (0.3, 40.0), (6.0, 800.0))
    terrain = Terrain(0.0, amps, freqs, phases)
    b.set_terrain(terrain, b.material((2.0, 10.0), dark_p=0.0, specular_p=0.0))
    yaw = rng.uniform(0, 2 * np.pi)
    fwd = np.array([-np.sin(yaw), np.cos(yaw)])
    for _ in range(int(rng.integers(3, 15))):
        dist = np.exp(rng.uniform(np.log(4), np.log(80)))
        xy = fwd * dist + np.array([fwd[1], -fwd[0]]) * rng.uniform(-0.7, 0.7) * dist
        gz = float(terrain.height(np.array([xy[0]]), np.array([xy[1]]))[0])
        if rng.random() < 0.6:
            r = rng.uniform(0.3, 3.0)
            b.sphere((xy[0], xy[1], gz + 0.3 * r), r, b.material((0.3, 2.0)))
        else:
            _tree(b, xy[0], xy[1], gz, rng)
    gz0 = float(terrain.height(np.zeros(1), np.zeros(1))[0])
    cam = (0.0, 0.0, gz0 + np.exp(rng.uniform(np.log(1.5), np.log(15))))
    camera = make_camera(rng, height, width, cam, yaw, rng.uniform(-30, 0) * DEG,
                         rng.normal(0, 3) * DEG, fov=(40, 100))
    return b.build(camera, **outdoor_lighting(rng, haze=(400, 4000)))


def forest(rng: np.random.Generator, height: int, width: int) -> Scene:
    """Gently rolling ground with many tree trunks (thin cylinders) and crowns, fallen logs
    and rocks, in fog."""
    b = SceneBuilder(rng)
    amps, freqs, phases = _terrain_sines(rng, 4, (0.2, 4.0), (5.0, 200.0))
    terrain = Terrain(0.0, amps, freqs, phases)
    b.set_terrain(terrain, b.material((0.5, 3.0), dark_p=0.0, specular_p=0.0))
    yaw = rng.uniform(0, 2 * np.pi)
    fwd = np.array([-np.sin(yaw), np.cos(yaw)])
    for _ in range(int(rng.integers(25, 70))):
        dist = np.exp(rng.uniform(np.log(2), np.log(80)))
        xy = fwd * dist + np.array([fwd[1], -fwd[0]]) * rng.uniform(-1.0, 1.0) * dist
        gz = float(terrain.height(np.array([xy[0]]), np.array([xy[1]]))[0])
        u = rng.random()
        if u < 0.75:
            _tree(b, xy[0], xy[1], gz, rng, scale=rng.uniform(0.8, 2.0))
        elif u < 0.9:
            r, hh = rng.uniform(0.1, 0.4), rng.uniform(1, 4)
            rot = np.array([[0, 0, 1], [np.sin(a := rng.uniform(0, np.pi)), np.cos(a), 0],
                            [np.cos(a), -np.sin(a), 0]], np.float32)
            b.cylinder((xy[0], xy[1], gz + r * 0.7), r, hh, b.material((0.3, 1.0)), rot)
        else:
            r = rng.uniform(0.2, 1.5)
            b.sphere((xy[0], xy[1], gz + 0.2 * r), r, b.material((0.3, 1.5)))
    gz0 = float(terrain.height(np.zeros(1), np.zeros(1))[0])
    cam = (0.0, 0.0, gz0 + rng.uniform(1.2, 2.2))
    camera = make_camera(rng, height, width, cam, yaw, rng.uniform(-15, 15) * DEG,
                         rng.normal(0, 3) * DEG, fov=(45, 100))
    lighting = outdoor_lighting(rng, haze=(30, 300))
    lighting["ambient_colour"] = lighting["ambient_colour"] * np.array([0.85, 1.0, 0.8], np.float32)
    return b.build(camera, **lighting)


# ----------------------------------------------------------------------------- object kits
def _axis_rot(axis) -> np.ndarray:
    """Rotation whose local z axis (a cylinder's axis) points along `axis`."""
    return frame_from_normal(axis, up=(0.0, 0.0, 1.0))


def _rod(b: SceneBuilder, start, end, radius: float, mat: dict) -> None:
    """A capped cylinder from point `start` to point `end`."""
    start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
    axis = end - start
    length = float(np.linalg.norm(axis))
    b.cylinder((start + end) / 2, radius, length / 2, mat, _axis_rot(axis / length))


def _small_object(b: SceneBuilder, rng, x: float, y: float, z0: float, size: float,
                  yaw: float) -> float:
    """One 5-30 cm object standing at (x, y, z0): a box, ball, can, cup with a handle,
    bottle, book stack, bowl with fruit, lying roll or a stacked compound. Returns its top."""
    m = b.material((0.02, 0.3), dark_p=0.06, specular_p=0.25)
    rot = rot_z(yaw)
    side = rot[0]  # the object's local x axis in world coordinates
    kind = rng.choice(["box", "ball", "can", "cup", "bottle", "books", "bowl", "roll",
                       "stack"], p=[0.14, 0.1, 0.1, 0.14, 0.12, 0.1, 0.1, 0.08, 0.12])
    if kind == "box":
        half = size * rng.uniform(0.25, 0.5, 3)
        b.box((x, y, z0 + half[2]), half, m, rot)
        return z0 + 2 * half[2]
    if kind == "ball":
        r = size * rng.uniform(0.3, 0.5)
        b.sphere((x, y, z0 + r), r, m)
        return z0 + 2 * r
    if kind == "can":
        r, hh = size * rng.uniform(0.15, 0.35), size * rng.uniform(0.3, 0.5)
        b.cylinder((x, y, z0 + hh), r, hh, m)
        return z0 + 2 * hh
    if kind == "cup":
        r, hh = size * rng.uniform(0.2, 0.3), size * rng.uniform(0.25, 0.4)
        b.cylinder((x, y, z0 + hh), r, hh, m)
        t, reach = 0.1 * r + 0.002, 0.45 * r
        b.box((x + side[0] * (r + reach), y + side[1] * (r + reach), z0 + hh), (t, t, 0.55 * hh),
              m, rot)
        for dz in (-0.5 * hh, 0.5 * hh):
            c = r + reach / 2
            b.box((x + side[0] * c, y + side[1] * c, z0 + hh + dz), (reach / 2 + t, t, t), m, rot)
        return z0 + 2 * hh
    if kind == "bottle":
        r, hh = size * rng.uniform(0.1, 0.18), size * rng.uniform(0.25, 0.35)
        b.cylinder((x, y, z0 + hh), r, hh, m)
        b.sphere((x, y, z0 + 2 * hh), r, m)
        nh = size * rng.uniform(0.08, 0.15)
        b.cylinder((x, y, z0 + 2 * hh + r + nh * 0.6), r * 0.35, nh, b.material((0.02, 0.2)))
        return z0 + 2 * hh + r + 1.6 * nh
    if kind == "books":
        z = z0
        w, d = size * rng.uniform(0.35, 0.5), size * rng.uniform(0.25, 0.4)
        for _ in range(int(rng.integers(2, 6))):
            t = size * rng.uniform(0.03, 0.08)
            b.box((x + rng.normal(0, 0.05 * w), y + rng.normal(0, 0.05 * w), z + t), (w, d, t),
                  b.material((0.02, 0.3)), rot_z(yaw + rng.normal(0, 0.15)))
            z += 2 * t
        return z
    if kind == "bowl":
        r, hh = size * rng.uniform(0.35, 0.5), size * rng.uniform(0.08, 0.15)
        b.cylinder((x, y, z0 + hh), r, hh, m)
        for _ in range(int(rng.integers(1, 4))):
            fr = r * rng.uniform(0.25, 0.45)
            ang, off = rng.uniform(0, 2 * np.pi), rng.uniform(0, r - fr)
            b.sphere((x + off * np.cos(ang), y + off * np.sin(ang), z0 + 2 * hh + fr * 0.8), fr,
                     b.material((0.02, 0.2)))
        return z0 + 2 * hh + r
    if kind == "roll":
        r, hh = size * rng.uniform(0.1, 0.2), size * rng.uniform(0.3, 0.5)
        b.cylinder((x, y, z0 + r), r, hh, m, _axis_rot(side))
        return z0 + 2 * r
    # stack: a box base with a smaller thing on top
    half = size * np.array([rng.uniform(0.3, 0.5), rng.uniform(0.3, 0.5), rng.uniform(0.15, 0.3)])
    b.box((x, y, z0 + half[2]), half, m, rot)
    return _small_object(b, rng, x, y, z0 + 2 * half[2], size * rng.uniform(0.4, 0.7),
                         yaw + rng.normal(0, 0.4))


def _quadruped(b: SceneBuilder, rng, x, y, z0, length, yaw) -> float:
    """An animal-like composite: capsule body, four legs, neck, head, tail. Returns height."""
    f = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    s = np.array([-f[1], f[0], 0.0])
    up = np.array([0.0, 0.0, 1.0])
    rb = length * rng.uniform(0.14, 0.24)
    leg = length * rng.uniform(0.3, 0.75)
    skin = b.material((0.05, 0.6), dark_p=0.1)
    base = np.array([x, y, z0 + leg + rb * 0.8])
    half = length / 2 - rb
    _rod(b, base - f * half, base + f * half, rb, skin)
    for end in (-1, 1):
        b.sphere(base + end * f * half, rb, skin)
        for side in (-1, 1):
            hip = base + f * end * half * 0.9 + s * side * rb * 0.55
            _rod(b, np.array([hip[0], hip[1], z0]), hip, rb * 0.28, skin)
    tilt = rng.uniform(20, 75) * DEG
    neck_end = base + f * (half + rb * 0.5) + (f * np.cos(tilt) + up * np.sin(tilt)) * (
        length * rng.uniform(0.2, 0.4))
    _rod(b, base + f * half, neck_end, rb * rng.uniform(0.35, 0.55), skin)
    head = rb * rng.uniform(0.55, 0.85)
    if rng.random() < 0.6:
        b.sphere(neck_end + f * head * 0.5, head, skin)
    else:
        b.box(neck_end + f * head * 0.6, (head * 1.3, head * 0.7, head * 0.7),
              skin, rot_z(yaw))
    if rng.random() < 0.7:
        tail = base - f * (half + rb * 0.8)
        _rod(b, tail, tail - f * length * 0.25 + up * rng.uniform(-0.3, 0.2) * length,
             rb * 0.12, skin)
    return float(neck_end[2] + head - z0)


def _person(b: SceneBuilder, rng, x, y, z0, height, yaw) -> float:
    """A person-like composite: legs, torso, arms, head (and sometimes a hat)."""
    f = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    s = np.array([-f[1], f[0], 0.0])
    p = np.array([x, y, z0])
    leg, torso = height * 0.47, height * 0.3
    wide = height * rng.uniform(0.1, 0.14)
    trousers, shirt = b.material((0.05, 0.5)), b.material((0.05, 0.5))
    stride = rng.uniform(0, 0.12) * height
    for side in (-1, 1):
        _rod(b, p + s * side * wide * 0.5 + f * side * stride, p + s * side * wide * 0.5
             + np.array([0, 0, leg]), wide * 0.4, trousers)
    hip = p + np.array([0, 0, leg + torso / 2])
    if rng.random() < 0.5:
        b.box(hip, (wide * 0.6, wide, torso / 2), shirt, rot_z(yaw))
    else:
        b.cylinder(hip, wide, torso / 2, shirt)
    shoulder = p + np.array([0, 0, leg + torso * 0.95])
    for side in (-1, 1):
        lift = rng.uniform(-0.3, 1.2)
        hand = shoulder + s * side * (wide * 1.2 + 0.3 * height * abs(np.sin(lift * 0.5))) \
            + np.array([0, 0, -0.38 * height * np.cos(lift)]) + f * rng.uniform(-0.1, 0.2) * height
        _rod(b, shoulder + s * side * wide * 1.1, hand, wide * 0.28, shirt)
    head_r = height * 0.065
    head = p + np.array([0, 0, leg + torso + head_r * 1.3])
    b.sphere(head, head_r, b.material((0.03, 0.3)))
    if rng.random() < 0.3:
        b.cylinder(head + np.array([0, 0, head_r * 0.9]), head_r * 1.2, head_r * 0.3,
                   b.material((0.05, 0.3)))
    return float(height)


def _chair(b: SceneBuilder, rng, x, y, z0, height, yaw) -> float:
    """A chair: seat, four legs, back rest (sometimes arm rests)."""
    rot = rot_z(yaw)
    f, s = rot[0], rot[1]
    seat_h, half = height * rng.uniform(0.45, 0.55), height * rng.uniform(0.22, 0.3)
    wood = b.material((0.1, 1.0), specular_p=0.2)
    b.box((x, y, z0 + seat_h), (half, half, height * 0.03), wood, rot)
    p = np.array([x, y, z0])
    for a in (-1, 1):
        for c in (-1, 1):
            foot = p + (f * a + s * c) * (half * 0.85)
            _rod(b, foot, foot + np.array([0, 0, seat_h]), height * 0.025, wood)
    back = p - f * half * 0.95 + np.array([0, 0, seat_h + (height - seat_h) / 2])
    b.box(back, (height * 0.025, half, (height - seat_h) / 2), wood, rot)
    if rng.random() < 0.3:
        for c in (-1, 1):
            b.box(p + s * c * half + np.array([0, 0, seat_h + 0.25 * height]),
                  (half * 0.9, height * 0.025, height * 0.02), wood, rot)
    return float(height)


def _vehicle(b: SceneBuilder, rng, x, y, z0, length, yaw) -> float:
    """A vehicle-like shape: body, cabin, four wheels with horizontal axles, lamps."""
    rot = rot_z(yaw)
    f, s = rot[0], rot[1]
    width, wheel = length * rng.uniform(0.35, 0.5), length * rng.uniform(0.1, 0.16)
    body_h = length * rng.uniform(0.12, 0.2)
    paint = b.material((0.1, 1.0), specular_p=0.6)
    p = np.array([x, y, z0])
    centre = p + np.array([0, 0, wheel + body_h])
    b.box(centre, (length / 2, width / 2, body_h), paint, rot)
    cab = length * rng.uniform(0.25, 0.4)
    cab_h = length * rng.uniform(0.08, 0.16)
    b.box(centre + f * rng.uniform(-0.15, 0.05) * length + np.array([0, 0, body_h + cab_h]),
          (cab, width / 2 * 0.9, cab_h), b.material((0.1, 1.0), specular_p=0.8), rot)
    tyre = b.material((0.05, 0.3), dark_p=0.6)
    for a in (-1, 1):
        for c in (-1, 1):
            b.cylinder(p + f * a * (length / 2 - wheel * 1.3) + s * c * (width / 2)
                       + np.array([0, 0, wheel]), wheel, width * 0.08, tyre, _axis_rot(s))
    for c in (-1, 1):
        b.sphere(centre + f * length / 2 + s * c * width * 0.3, wheel * 0.25,
                 b.material((0.05, 0.2)))
    return float(wheel + 2 * body_h + 2 * cab_h)


def _totem(b: SceneBuilder, rng, x, y, z0, height, yaw) -> float:
    """A stacked figure (snowman, post with parts): alternating spheres, boxes, cylinders."""
    z, r = z0, height * rng.uniform(0.15, 0.25)
    while z - z0 < height * 0.85:
        m = b.material((0.05, 0.8))
        kind = rng.choice(["sphere", "box", "cylinder"])
        if kind == "sphere":
            b.sphere((x, y, z + r), r, m)
        elif kind == "box":
            b.box((x, y, z + r), (r, r * rng.uniform(0.6, 1.0), r), m,
                  rot_z(yaw + rng.normal(0, 0.3)))
        else:
            b.cylinder((x, y, z + r), r * rng.uniform(0.6, 1.0), r, m)
        z += 2 * r * 0.95
        r *= rng.uniform(0.6, 0.9)
    return float(z - z0)


THINGS = {"animal": (_quadruped, (0.4, 2.2)), "person": (_person, (1.0, 1.9)),
          "chair": (_chair, (0.8, 1.1)), "vehicle": (_vehicle, (1.2, 4.5)),
          "totem": (_totem, (0.6, 2.0))}


def _thing(b: SceneBuilder, rng, x, y, z0, yaw) -> float:
    """A random large composite of `THINGS` standing at (x, y, z0); returns its height."""
    build, (lo, hi) = THINGS[str(rng.choice(list(THINGS)))]
    return build(b, rng, x, y, z0, float(rng.uniform(lo, hi)), yaw)


def _aim(camera_pos, target) -> tuple[float, float]:
    """(yaw, pitch) that point the camera from `camera_pos` at `target`."""
    d = np.asarray(target, np.float64) - np.asarray(camera_pos, np.float64)
    return float(np.arctan2(-d[0], d[1])), float(np.arctan2(d[2], np.hypot(d[0], d[1])))


# ----------------------------------------------------------------------------- object families
def tabletop(rng: np.random.Generator, height: int, width: int) -> Scene:
    """Objects of 5-30 cm (boxes, balls, cans, cups with handles, bottles, book stacks, bowls
    with fruit, stacked compounds) on a table seen from 0.4-1.5 m, looking down 10-50
    degrees at one of them; a room or a wall 1-4 m behind."""
    b = SceneBuilder(rng, n_textures=10, photo_fraction=0.6)
    th = rng.uniform(0.45, 1.0)
    dist, pitch = rng.uniform(0.4, 1.5), rng.uniform(10, 50) * DEG
    fov = rng.uniform(40, 80)
    t_yaw = rng.normal(0, 0.3)
    t_rot = rot_z(t_yaw)
    hx, hy = rng.uniform(0.4, 1.1), rng.uniform(0.3, 0.8)
    focus = np.array([0.0, 0.0, th])
    centre = focus[:2] - t_rot.T[:2, :2] @ (rng.uniform(-0.6, 0.6, 2) * (hx, hy))
    top = b.material((0.2, 1.5), dark_p=0.1, specular_p=0.2)
    b.box((centre[0], centre[1], th - 0.015), (hx, hy, 0.015), top, t_rot)
    leg = b.material((0.1, 1.0))
    for sx, sy in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        off = t_rot.T[:2, :2] @ np.array([sx * (hx - 0.06), sy * (hy - 0.06)])
        b.box((centre[0] + off[0], centre[1] + off[1], (th - 0.03) / 2), (0.025, 0.025,
              (th - 0.03) / 2), leg, t_rot)
    yaw = t_yaw + rng.normal(0, 0.35)
    fwd = np.array([-np.sin(yaw), np.cos(yaw)])
    cam = np.array([*(focus[:2] - fwd * dist * np.cos(pitch)), th + dist * np.sin(pitch)])
    # objects: the first at the focus point, the others around it on the table
    reach = dist * np.tan(fov * DEG / 2) * 0.8
    placed: list[tuple[float, float, float]] = []
    for k in range(int(rng.integers(4, 13))):
        size = float(np.exp(rng.uniform(np.log(0.05), np.log(0.3)))) ** 0.8 * 0.3 ** 0.2
        for _ in range(6):
            xy = focus[:2] if k == 0 else focus[:2] + rng.uniform(-reach, reach, 2)
            local = t_rot[:2, :2] @ (xy - centre)
            if (np.abs(local) > np.array([hx, hy]) - size * 0.3).any():
                continue
            if all(np.hypot(xy[0] - px, xy[1] - py) > 0.45 * (size + ps)
                   for px, py, ps in placed):
                break
        else:
            continue
        if np.hypot(*(xy - cam[:2])) < 0.15:
            continue
        _small_object(b, rng, xy[0], xy[1], th, size, rng.uniform(0, 2 * np.pi))
        placed.append((xy[0], xy[1], size))
    back = float(focus[1] + rng.uniform(1.0, 4.0))
    if rng.random() < 0.7:
        lo = np.array([min(cam[0], centre[0]) - rng.uniform(1.0, 3.5),
                       min(cam[1], centre[1] - hy) - rng.uniform(0.5, 2.5), 0.0])
        hi = np.array([max(cam[0], centre[0]) + rng.uniform(1.0, 3.5), back,
                       rng.uniform(2.4, 3.2)])
        b.set_room(lo, hi, (b.material((0.3, 2.0), dark_p=0.1), b.material((0.4, 3.0)),
                            b.material((0.5, 3.0), dark_p=0.0, specular_p=0.0)))
        for _ in range(int(rng.integers(0, 4))):  # pictures and shelves on the back wall
            half = (rng.uniform(0.15, 0.6), rng.uniform(0.1, 0.4))
            b.quad((rng.uniform(lo[0] + 0.6, hi[0] - 0.6), back - 0.01,
                    rng.uniform(th + 0.2, hi[2] - 0.5)), half, frame_from_normal((0, -1, 0)),
                   b.material((0.05, 0.5)))
        light = (np.clip(cam[0] + rng.uniform(-1.5, 1.5), lo[0] + 0.2, hi[0] - 0.2),
                 rng.uniform(cam[1], back - 0.2), hi[2] - 0.2)
        lighting = indoor_lighting(rng, light)
    else:
        b.plane((0, 0, 1), 0.0, b.material((0.5, 3.0), dark_p=0.1, specular_p=0.0))
        b.box((0.0, back + 0.15, 1.5), (rng.uniform(3, 12), 0.15, rng.uniform(1.5, 4.0)),
              b.material((0.4, 3.0)))
        lighting = outdoor_lighting(rng, haze=(300, 3000))
    camera = make_camera(rng, height, width, cam, yaw, -pitch + rng.normal(0, 3) * DEG,
                         rng.normal(0, 4) * DEG, fov=(fov, fov))
    return b.build(camera, **lighting)


def objects(rng: np.random.Generator, height: int, width: int) -> Scene:
    """One to three animal-, person-, chair-, vehicle- or totem-like composites 1-5 m from
    the camera, filling 20-70 % of the frame, before a backdrop or open ground and sky; the
    camera is low looking up, level or high looking down."""
    b = SceneBuilder(rng, n_textures=10, photo_fraction=0.6)
    outdoor = rng.random() < 0.6
    b.plane((0, 0, 1), 0.0, b.material((0.3, 3.0), dark_p=0.1, specular_p=0.05))
    fov = rng.uniform(45, 90)
    span = 2 * np.tan(fov * DEG / 2)  # frame width at unit depth
    kind = str(rng.choice(list(THINGS)))
    build, (lo, hi) = THINGS[kind]
    size = float(rng.uniform(lo, hi))
    dist = float(np.clip(size / (rng.uniform(0.3, 0.9) * span), 1.0, 5.0))
    yaw0 = rng.uniform(0, 2 * np.pi)
    top = build(b, rng, 0.0, dist, 0.0, size, yaw0)
    for _ in range(int(rng.integers(0, 3))):  # further things, some nearer than the main one
        d = rng.uniform(0.8, dist + 5)
        x = rng.choice([-1, 1]) * rng.uniform(0.4, 1.5) * d * span / 2
        _thing(b, rng, x, d, 0.0, rng.uniform(0, 2 * np.pi))
    if not outdoor or rng.random() < 0.4:  # a wall or backdrop behind
        b.plane((0, -1, 0), -(dist + rng.uniform(0.8, 6.0)), b.material((0.3, 3.0)))
    else:
        for _ in range(int(rng.integers(0, 8))):  # far context: blocks and trees
            y = rng.uniform(dist + 8, 80)
            x = rng.uniform(-0.8, 0.8) * y
            if rng.random() < 0.5:
                _tree(b, x, y, 0.0, rng)
            else:
                hz = rng.uniform(1, 10)
                b.box((x, y, hz), (rng.uniform(1, 8), rng.uniform(1, 8), hz),
                      b.material((1.0, 6.0)), rot_z(rng.uniform(0, np.pi)))
    mode = rng.choice(["low", "level", "high"], p=[0.35, 0.35, 0.3])
    if mode == "low":
        cam_z = rng.uniform(0.1, 0.5) * max(top, 0.5)
    elif mode == "level":
        cam_z = top * rng.uniform(0.4, 0.9)
    else:
        cam_z = top + rng.uniform(0.3, 2.0)
    cam = np.array([0.0, 0.0, cam_z])
    yaw, pitch = _aim(cam, (0.0, dist, top * rng.uniform(0.3, 0.7)))
    spread = fov * DEG / 2
    yaw += rng.uniform(-0.25, 0.25) * spread
    pitch += rng.uniform(-0.25, 0.25) * spread
    camera = make_camera(rng, height, width, cam, yaw, pitch, rng.normal(0, 4) * DEG,
                         fov=(fov, fov))
    if outdoor:
        lighting = outdoor_lighting(rng, haze=(150, 2500))
    else:
        light = (rng.uniform(-3, 3), rng.uniform(-1, dist), rng.uniform(2, 4))
        lighting = indoor_lighting(rng, light)
    return b.build(camera, **lighting)


def still_life(rng: np.random.Generator, height: int, width: int) -> Scene:
    """Held out: shelves seen level from 0.6-3 m, rows of upright books, lathe-like vases
    (stacked cylinders), fruit piles, boxes and leaning frames on several levels, in a room."""
    b = SceneBuilder(rng, n_textures=10, photo_fraction=0.6)
    sw, sh, sd = rng.uniform(0.8, 2.5), rng.uniform(1.2, 2.2), rng.uniform(0.25, 0.45)
    back_y = rng.uniform(0.8, 3.0)
    wood = b.material((0.2, 1.5), dark_p=0.1, specular_p=0.2)
    b.box((0.0, back_y + 0.01, sh / 2), (sw / 2, 0.01, sh / 2), b.material((0.2, 1.5)))
    for sx in (-1, 1):
        b.box((sx * sw / 2, back_y - sd / 2, sh / 2), (0.015, sd / 2, sh / 2), wood)
    n_levels = int(rng.integers(2, 6))
    levels = np.linspace(rng.uniform(0.05, 0.4), sh, n_levels + 1)
    for z in levels:
        b.box((0.0, back_y - sd / 2, z - 0.015), (sw / 2, sd / 2, 0.015), wood)
    for z, z_next in zip(levels[:-1], levels[1:], strict=True):
        room = z_next - z - 0.05
        x = -sw / 2 + 0.03
        while x < sw / 2 - 0.08:
            kind = rng.choice(["books", "vase", "fruit", "box", "frame", "gap"],
                              p=[0.35, 0.2, 0.12, 0.13, 0.1, 0.1])
            y = back_y - sd * rng.uniform(0.35, 0.65)
            if kind == "books":
                for _ in range(int(rng.integers(3, 12))):
                    t, bh = rng.uniform(0.01, 0.03), room * rng.uniform(0.55, 0.95)
                    if x + 2 * t > sw / 2 - 0.03:
                        break
                    b.box((x + t, back_y - sd * 0.45, z + bh / 2), (t, sd * 0.4, bh / 2),
                          b.material((0.05, 0.4)))
                    x += 2 * t + 0.002
            elif kind == "vase":
                r, zz = min(room * rng.uniform(0.1, 0.25), sd * 0.4), z
                m = b.material((0.03, 0.3), specular_p=0.5)
                while zz - z < room * 0.8 and r > 0.01:
                    hh = room * rng.uniform(0.06, 0.15)
                    b.cylinder((x + r, y, zz + hh), r, hh, m)
                    zz += 2 * hh
                    r *= rng.uniform(0.6, 1.25)
                    r = min(r, sd * 0.4)
                x += 2 * r + 0.03
            elif kind == "fruit":
                r = min(room * rng.uniform(0.08, 0.15), sd * 0.25)
                for i in range(int(rng.integers(2, 6))):
                    b.sphere((x + r * (1 + 1.6 * (i % 3)), y + rng.normal(0, r * 0.3),
                              z + r * (1 + 1.5 * (i // 3))), r, b.material((0.02, 0.2)))
                x += r * 5 + 0.03
            elif kind == "box":
                half = (rng.uniform(0.04, 0.15), sd * rng.uniform(0.2, 0.4),
                        room * rng.uniform(0.15, 0.45))
                b.box((x + half[0], y, z + half[2]), half, b.material((0.03, 0.4)),
                      rot_z(rng.normal(0, 0.1)))
                x += 2 * half[0] + 0.03
            elif kind == "frame":
                fh = room * rng.uniform(0.5, 0.9)
                tilt = rng.uniform(5, 20) * DEG
                n = np.array([0.0, -np.cos(tilt), np.sin(tilt)])
                b.quad((x + fh * 0.4, back_y - 0.03 - fh / 2 * np.sin(tilt), z + fh / 2 *
                        np.cos(tilt)), (fh * 0.4, fh / 2), frame_from_normal(n),
                       b.material((0.05, 0.5)))
                x += fh * 0.8 + 0.03
            else:
                x += rng.uniform(0.05, 0.25)
    rw, rh = sw + rng.uniform(1, 5), max(sh + rng.uniform(0.3, 1.0), 2.4)
    fov = rng.uniform(40, 80)
    dist = float(np.clip(sw / (2 * np.tan(fov * DEG / 2) * rng.uniform(0.6, 1.3)), 0.6, 3.0))
    b.set_room((-rw / 2, back_y - sd - dist - rng.uniform(0.3, 2), 0), (rw / 2, back_y + 0.02,
               rh), (b.material((0.3, 2.0)), b.material((0.4, 3.0)),
                     b.material((0.5, 3.0), dark_p=0.0, specular_p=0.0)))
    cam = np.array([rng.uniform(-0.3, 0.3) * sw, back_y - sd - dist,
                    rng.uniform(0.4, min(sh, 1.9))])
    camera = make_camera(rng, height, width, cam, rng.uniform(-25, 25) * DEG,
                         rng.uniform(-10, 10) * DEG, rng.normal(0, 3) * DEG, fov=(fov, fov))
    light = (rng.uniform(-rw / 2, rw / 2), cam[1] + rng.uniform(0, dist), rh - 0.2)
    return b.build(camera, **indoor_lighting(rng, light))


FAMILIES: dict[str, Callable[[np.random.Generator, int, int], Scene]] = {
    "indoor": indoor_room,
    "street": street,
    "clutter": clutter,
    "landscape": landscape,
    "forest": forest,
    "tabletop": tabletop,
    "objects": objects,
    "still-life": still_life,
}
TRAIN_FAMILIES = ("indoor", "street", "clutter", "tabletop", "objects")
HELDOUT_FAMILIES = ("landscape", "forest", "still-life")


def check_family(name: str) -> str:
    if name not in FAMILIES:
        raise ConfigError(f"family: unknown scene family {name!r}; choose one of "
                          f"{', '.join(FAMILIES)}")
    return name


def render_family(family: str, rng: np.random.Generator, height: int, width: int,
                  culling: bool = True) -> Render:
    """Build a random scene of `family` and render it (see `render.Render`). culling=False
    tests every object against every ray (same result, slower; a baseline)."""
    scene = FAMILIES[check_family(family)](rng, height, width)
    return render(scene, rng, family=family, culling=culling)

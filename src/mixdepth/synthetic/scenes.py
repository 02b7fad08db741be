"""Procedural scene families: indoor rooms, streets, object clutter, landscapes, forests.

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


FAMILIES: dict[str, Callable[[np.random.Generator, int, int], Scene]] = {
    "indoor": indoor_room,
    "street": street,
    "clutter": clutter,
    "landscape": landscape,
    "forest": forest,
}
TRAIN_FAMILIES = ("indoor", "street", "clutter")
HELDOUT_FAMILIES = ("landscape", "forest")


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

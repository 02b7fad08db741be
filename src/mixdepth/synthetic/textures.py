"""Texture bank: crops of real photographs and procedural patterns, with a mip pyramid.

Textures are sampled at world-space coordinates measured in metres divided by a per-material
`scale` (metres per texture repeat), so the texture gradient on a surface is a true depth cue.
Photographs come from sample images bundled with installed packages (scikit-image, matplotlib).
The project's real-photo test cases (`TEST_PHOTOS`: astronaut, chelsea, coffee, rocket and the
motorcycle stereo pair) are deliberately excluded and must never appear in training renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

TEXTURE_SIZE = 128  # texels per side of mip level 0 (a power of two)
MIP_LEVELS = 5  # 128, 64, 32, 16, 8

# Real photographs used by the project as test cases: never textures.
TEST_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
)

# (package, path inside the package) of sample photographs with permissive licences.
PHOTO_SOURCES = (
    ("skimage", "data/brick.png"),
    ("skimage", "data/camera.png"),
    ("skimage", "data/grass.png"),
    ("skimage", "data/gravel.png"),
    ("skimage", "data/moon.png"),
    ("skimage", "data/coins.png"),
    ("skimage", "data/ihc.png"),
    ("skimage", "data/hubble_deep_field.jpg"),
    ("skimage", "data/page.png"),
    ("skimage", "data/clock_motion.png"),
    ("skimage", "data/text.png"),  # photograph of painted text on a wall, public domain
    ("skimage", "data/retina.jpg"),  # fundus photograph, CC0
    ("skimage", "data/cell.png"),  # microscope photograph, CC0
    ("skimage", "data/microaneurysms.png"),  # retinal photograph detail, CC0
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),  # U.S. Navy photograph
)
PHOTO_NAMES = tuple(Path(path).name for _, path in PHOTO_SOURCES)

PROCEDURAL_KINDS = ("noise", "stripes", "checkers", "wood", "marble", "bricks", "tiles")


def photo_paths() -> list[Path]:
    """Files of `PHOTO_SOURCES` that exist in this environment (missing packages skipped)."""
    import importlib.util

    paths = []
    for package, relative in PHOTO_SOURCES:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            continue
        path = Path(spec.origin).parent / relative
        if path.exists() and path.name not in TEST_PHOTOS:
            paths.append(path)
    return paths


@lru_cache(maxsize=1)
def load_photos() -> tuple[Image.Image, ...]:
    """The bundled sample photographs as RGB PIL images (loaded once per process)."""
    return tuple(Image.open(path).convert("RGB") for path in photo_paths())


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Approximate sRGB decoding (gamma 2.2) of values in [0, 1]."""
    return np.power(np.clip(x, 0.0, 1.0), 2.2, dtype=np.float32)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """A linear-space albedo colour (3,) with moderate saturation."""
    hue_mix = rng.dirichlet([1.5, 1.5, 1.5]).astype(np.float32)
    grey = float(rng.uniform(0.15, 0.85))
    saturation = float(rng.uniform(0.0, 0.7))
    colour = grey * (1 - saturation + saturation * 3 * hue_mix)
    return np.clip(colour, 0.02, 1.0).astype(np.float32)


def photo_texture(rng: np.random.Generator) -> np.ndarray:
    """A random square crop of a sample photograph: float32 (S, S, 3) linear RGB in [0, 1].

    Greyscale photographs are tinted with a random colour so that they do not all look grey.
    """
    photos = load_photos()
    if not photos:
        return procedural_texture(rng, "noise")
    photo = photos[int(rng.integers(len(photos)))]
    w, h = photo.size
    side = int(rng.integers(min(64, w, h), min(w, h) + 1))
    x0 = int(rng.integers(0, w - side + 1))
    y0 = int(rng.integers(0, h - side + 1))
    crop = photo.crop((x0, y0, x0 + side, y0 + side)).resize(
        (TEXTURE_SIZE, TEXTURE_SIZE), Image.Resampling.BILINEAR
    )
    tex = srgb_to_linear(np.asarray(crop, dtype=np.float32) / 255.0)
    if rng.random() < 0.5:
        tex = tex.mean(axis=2, keepdims=True) * _random_colour(rng) * 1.6
    return np.clip(tex, 0.0, 1.0).astype(np.float32)


def periodic_noise(rng: np.random.Generator, size: int, beta: float) -> np.ndarray:
    """Tileable 1/f^beta noise (size, size), normalised to zero mean and unit std."""
    freq = np.fft.fftfreq(size)
    radius = np.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2)
    radius[0, 0] = 1.0
    spectrum = np.fft.fft2(rng.standard_normal((size, size))) / radius**beta
    spectrum[0, 0] = 0.0
    noise = np.real(np.fft.ifft2(spectrum))
    return ((noise - noise.mean()) / (noise.std() + 1e-8)).astype(np.float32)


def procedural_texture(rng: np.random.Generator, kind: str | None = None) -> np.ndarray:
    """A tileable procedural texture: float32 (S, S, 3) linear RGB in [0, 1].

    kind: one of PROCEDURAL_KINDS (random when None). Every pattern has an integer number of
    periods across the tile so that it repeats without seams.
    """
    size = TEXTURE_SIZE
    kind = kind or PROCEDURAL_KINDS[int(rng.integers(len(PROCEDURAL_KINDS)))]
    y, x = np.meshgrid(np.arange(size) / size, np.arange(size) / size, indexing="ij")
    noise = periodic_noise(rng, size, beta=float(rng.uniform(1.0, 2.0)))
    fine = periodic_noise(rng, size, beta=0.6)
    if kind == "noise":
        pattern = 0.5 + 0.25 * noise
    elif kind == "stripes":
        a, b = int(rng.integers(1, 6)), int(rng.integers(0, 3))
        pattern = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * (a * x + b * y)))
    elif kind == "checkers":
        n = int(rng.integers(1, 5)) * 2
        pattern = ((np.floor(x * n) + np.floor(y * n)) % 2).astype(np.float32)
    elif kind == "wood":
        rings = int(rng.integers(4, 12))
        pattern = 0.5 + 0.5 * np.sin(2 * np.pi * (rings * y + 0.15 * noise)) ** 2
    elif kind == "marble":
        veins = int(rng.integers(1, 4))
        pattern = 0.5 + 0.5 * np.sin(2 * np.pi * (veins * (x + y) + 0.6 * noise))
    elif kind == "bricks":
        rows = int(rng.integers(2, 7)) * 2
        cols = rows // 2
        row = np.floor(y * rows)
        shifted = x * cols + 0.5 * (row % 2)
        mortar = (np.abs((y * rows) % 1 - 0.5) > 0.42) | (np.abs(shifted % 1 - 0.5) > 0.46)
        pattern = np.where(mortar, 0.15, 0.75 + 0.1 * noise)
    else:  # tiles
        n = int(rng.integers(2, 8))
        grout = (np.abs((x * n) % 1 - 0.5) > 0.45) | (np.abs((y * n) % 1 - 0.5) > 0.45)
        pattern = np.where(grout, 0.2, 0.8)
    pattern = np.clip(pattern + 0.08 * fine, 0.0, 1.0)[..., None]
    a, b = _random_colour(rng), _random_colour(rng)
    return (a * pattern + b * (1 - pattern)).astype(np.float32)


@dataclass
class TextureBank:
    """A few textures with mip pyramids flattened into one array for one-shot gathering.

    texels: float32 (M, 3) all levels of all textures; offsets: int64 (T, L) start of level l
    of texture t in `texels`; sizes: int64 (L,) side of level l.
    """

    texels: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray

    @property
    def count(self) -> int:
        return int(self.offsets.shape[0])

    def sample(
        self, tex_id: np.ndarray, u: np.ndarray, v: np.ndarray, footprint: np.ndarray
    ) -> np.ndarray:
        """Look textures up at (u, v) in repeats (mirror-tiled), choosing the mip level from
        `footprint` (size of a pixel in level-0 texels). All inputs (N,); returns (N, 3)."""
        level = np.clip(np.log2(np.maximum(footprint, 1.0)), 0, len(self.sizes) - 1)
        level = level.astype(np.int64)
        size = self.sizes[level]
        fsize = size.astype(np.float32)
        # Sizes are powers of two, so "modulo the mirrored period" is a bitwise and (which
        # is also right for negative coordinates).
        iu = np.floor(u * fsize).astype(np.int64) & (2 * size - 1)
        iv = np.floor(v * fsize).astype(np.int64) & (2 * size - 1)
        iu = np.where(iu >= size, 2 * size - 1 - iu, iu)
        iv = np.where(iv >= size, 2 * size - 1 - iv, iv)
        return self.texels[self.offsets[tex_id, level] + iv * size + iu]


POOL_SIZE = 192  # fixed pool of textures shared by all samples (built lazily, cached)
_POOL_SEED = 20201


@lru_cache(maxsize=POOL_SIZE)
def pool_texture(index: int) -> np.ndarray:
    """Mip levels of pool texture `index`, flattened: float32 (sum of level texels, 3).

    The pool is a pure function of the index (even = photograph crop, odd = procedural), so
    every process builds identical textures; per-object tints and world-space scales make
    each use look different.
    """
    rng = np.random.default_rng([_POOL_SEED, index])
    tex = photo_texture(rng) if index % 2 == 0 else procedural_texture(rng)
    levels = []
    for _ in range(MIP_LEVELS):
        levels.append(tex.reshape(-1, 3))
        s = tex.shape[0] // 2
        tex = tex.reshape(s, 2, s, 2, 3).mean(axis=(1, 3)) if s else tex
    return np.concatenate(levels).astype(np.float32)


def warm_pool() -> None:
    """Build every pool texture now (before forking workers, so that they share them)."""
    for index in range(POOL_SIZE):
        pool_texture(index)


def random_bank(rng: np.random.Generator, count: int, photo_fraction: float = 0.5) -> TextureBank:
    """A bank of `count` textures drawn from the pool, about `photo_fraction` photographs."""
    half = POOL_SIZE // 2
    picks = [
        2 * int(rng.integers(half)) + (0 if rng.random() < photo_fraction else 1)
        for _ in range(count)
    ]
    chunks = [pool_texture(i) for i in picks]
    sizes = np.array([TEXTURE_SIZE >> level for level in range(MIP_LEVELS)], dtype=np.int64)
    level_offsets = np.concatenate([[0], np.cumsum(sizes**2)[:-1]])
    per_tex = int((sizes**2).sum())
    offsets = np.arange(count, dtype=np.int64)[:, None] * per_tex + level_offsets[None]
    return TextureBank(np.concatenate(chunks), offsets, sizes)

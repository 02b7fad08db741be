"""Write generated sets in the real datasets' on-disk layouts, in parallel, streaming.

`generate_set` renders samples one at a time (optionally in worker processes) and writes
each straight to disk, so memory does not grow with the set. Sample i is rendered from a
random generator seeded by (seed, personality, families, i) alone, so a set is identical
whatever the number of workers. `generate_preset` writes the default training mix and the
held-out families plus `mix.yaml`.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from mixdepth.data.sample import depth_to_disparity
from mixdepth.errors import ConfigError
from mixdepth.io import (
    KITTI_DEPTH_SCALE,
    TUM_DEPTH_SCALE,
    write_diw_csv,
    write_h5,
    write_image,
    write_pfm,
    write_png16,
    write_sintel_cam,
    write_sintel_dpt,
    write_uint8_png,
)
from mixdepth.synthetic.personalities import Annotation, get_personality
from mixdepth.synthetic.render import Render
from mixdepth.synthetic.scenes import HELDOUT_FAMILIES, TRAIN_FAMILIES, check_family, render_family
from mixdepth.synthetic.textures import warm_pool

CONTACT_COLUMNS = 6  # samples shown in a contact sheet
HELDOUT = "exact"  # held-out families are written with exact depth (Sintel layout)
TUM_SEQUENCE = "rgbd_dataset_synthetic_indoor"  # no "freiburgN": the loader adds no intrinsics
MEGADEPTH_SCENE = "0000/dense0"
HRWSI_SPLIT = "train"
DIW_IMAGES = "DIW_train_val"


def _stable_id(text: str) -> int:
    return zlib.crc32(text.encode())


def sample_rng(seed: int, personality: str, families: tuple[str, ...], index: int):
    """The random generator of sample `index` of a set: a function of its identity only."""
    return np.random.default_rng(
        [seed, _stable_id(personality), _stable_id(",".join(families)), index]
    )


def make_sample(personality: str, families: tuple[str, ...], seed: int, size: int, index: int,
                culling: bool = True) -> tuple[Render, Annotation, np.random.Generator]:
    """Render and annotate sample `index` of a set (deterministic)."""
    rng = sample_rng(seed, personality, families, index)
    p = get_personality(personality)
    for _ in range(8):  # a new scene (same generator) when nothing at all is annotated
        family = families[int(rng.integers(len(families)))]
        render = render_family(family, rng, size, size, culling)
        annotation = p.annotate(render, rng)
        if annotation.pairs is not None or annotation.mask.any():
            break
    return render, annotation, rng


# ----------------------------------------------------------------------------- layouts
def _at(path: Path) -> Path:
    """`path`, with its folder created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _write_png_fast(path: Path, image: np.ndarray) -> None:
    """RGB float [0, 1] -> 8-bit PNG with light zlib compression (rendered images with
    sensor noise barely compress; level 1 is several times faster than the default)."""
    from PIL import Image

    pixels = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    Image.fromarray(pixels).save(_at(path), format="PNG", compress_level=1)


# Each writer stores sample `index` under `root` and returns a small record for the index
# files that `finish` writes once all samples are done.
def _write_tum(root: Path, i: int, r: Render, a: Annotation, rng) -> dict:
    seq = root / TUM_SEQUENCE
    stamp = 1_300_000_000.0 + i / 30.0
    rgb, depth = f"rgb/{stamp:.6f}.png", f"depth/{stamp + 0.004:.6f}.png"
    _write_png_fast(seq / rgb, r.image)
    write_png16(_at(seq / depth), a.target, TUM_DEPTH_SCALE)
    return {"rgb": (stamp, rgb), "depth": (stamp + 0.004, depth)}


def _kitti_drive(i: int) -> tuple[str, str]:
    """One synthetic drive (and date, i.e. one calibration) per sample: intrinsics vary."""
    date = f"{2000 + i // 10000:04d}_{(i // 100) % 100:02d}_{i % 100:02d}"
    return date, f"{date}_drive_0001_sync"


def _write_kitti(root: Path, i: int, r: Render, a: Annotation, rng) -> dict:
    date, drive = _kitti_drive(i)
    frame = f"{0:010d}.png"
    _write_png_fast(root / date / drive / "image_02" / "data" / frame, r.image)
    gt = root / "data_depth_annotated" / "train" / drive / "proj_depth" / "groundtruth"
    write_png16(_at(gt / "image_02" / frame), a.target, KITTI_DEPTH_SCALE)
    p = np.zeros((3, 4))
    p[:, :3] = r.intrinsics
    line = " ".join(f"{v:.6e}" for v in p.reshape(-1))
    (root / date / "calib_cam_to_cam.txt").write_text(f"P_rect_02: {line}\n")
    return {}


def _write_megadepth(root: Path, i: int, r: Render, a: Annotation, rng) -> dict:
    base = root / MEGADEPTH_SCENE
    write_image(_at(base / "imgs" / f"{i:06d}.jpg"), r.image, quality=int(rng.integers(80, 96)))
    write_h5(_at(base / "depths" / f"{i:06d}.h5"), a.target)
    return {}


def _write_hrwsi(root: Path, i: int, r: Render, a: Annotation, rng) -> dict:
    base = root / HRWSI_SPLIT
    write_image(_at(base / "imgs" / f"{i:06d}.jpg"), r.image, quality=int(rng.integers(80, 96)))
    write_png16(_at(base / "gts" / f"{i:06d}.png"), a.target, 65535.0)
    write_uint8_png(_at(base / "valid_masks" / f"{i:06d}.png"), a.mask.astype(np.uint8) * 255)
    return {}


def _write_folder(root: Path, i: int, r: Render, a: Annotation, rng) -> dict:
    image = r.image if a.image is None else a.image
    write_image(_at(root / "images" / f"{i:06d}.jpg"), image, quality=int(rng.integers(75, 96)))
    write_pfm(_at(root / "targets" / f"{i:06d}.pfm"), a.target)
    write_uint8_png(_at(root / "masks" / f"{i:06d}.png"), a.mask.astype(np.uint8) * 255)
    return {}


def _write_diw(root: Path, i: int, r: Render, a: Annotation, rng) -> dict:
    name = f"{DIW_IMAGES}/{i:06d}.thumb"
    write_image(_at(root / f"{name}.jpg"), r.image, quality=int(rng.integers(70, 95)))
    (root / f"{name}.jpg").rename(root / name)  # DIW's JPEG images are named *.thumb
    h, w = r.depth.shape
    return {"diw": (f"./{name}", a.pairs[:1], (h, w))}


def _write_sintel(root: Path, i: int, r: Render, a: Annotation, rng) -> dict:
    scene, frame = r.family, f"frame_{i + 1:04d}"
    _write_png_fast(root / "training" / "final" / scene / f"{frame}.png", r.image)
    write_sintel_dpt(_at(root / "training" / "depth" / scene / f"{frame}.dpt"), a.target)
    write_sintel_cam(_at(root / "training" / "camdata_left" / scene / f"{frame}.cam"), r.intrinsics)
    return {}


def _finish_tum(root: Path, records: list[dict], space) -> None:
    seq = root / TUM_SEQUENCE
    for key in ("rgb", "depth"):
        lines = [f"# {key} maps", "# synthetic sequence", "# timestamp filename"]
        lines += [f"{t:.6f} {name}" for t, name in (r[key] for r in records)]
        (seq / f"{key}.txt").write_text("\n".join(lines) + "\n")


def _finish_diw(root: Path, records: list[dict], space) -> None:
    folder = root / "DIW_Annotations"
    folder.mkdir(parents=True, exist_ok=True)
    write_diw_csv(folder / "DIW_train.csv", [r["diw"] for r in records])


def _finish_folder(root: Path, records: list[dict], space) -> None:
    text = yaml.safe_dump({"space": str(space), "zero_invalid": False})
    (root / "dataset.yaml").write_text(text)


@dataclass(frozen=True)
class Layout:
    """write: store one sample (creating folders); finish: index files; split: the split to
    pass to create_dataset."""

    write: Callable
    finish: Callable | None = None
    split: str | None = None


LAYOUTS: dict[str, Layout] = {
    "tum": Layout(_write_tum, _finish_tum),
    "kitti": Layout(_write_kitti, None, "train"),
    "megadepth": Layout(_write_megadepth),
    "hrwsi": Layout(_write_hrwsi, None, HRWSI_SPLIT),
    "folder": Layout(_write_folder, _finish_folder),
    "diw": Layout(_write_diw, _finish_diw, "train"),
    "sintel": Layout(_write_sintel, None, "training"),
}


# ----------------------------------------------------------------------------- contact sheet
def _colourise(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Turbo colour map (H, W, 3) of values normalised by robust percentiles on `mask`."""
    from matplotlib import colormaps

    out = np.zeros(values.shape + (3,), np.float32)
    if mask.any():
        lo, hi = np.percentile(values[mask], [2, 98])
        x = np.clip((values - lo) / max(hi - lo, 1e-12), 0, 1)
        out = colormaps["turbo"](x)[..., :3].astype(np.float32)
        out[~mask] = 0
    return out


def contact_tiles(r: Render, a: Annotation, space, tile: int) -> np.ndarray:
    """Column of three tiles (3*tile, tile, 3): image | target colour map | valid mask.

    The colour map shows disparity-like values (depth targets are inverted) so that near is
    warm for every personality; ordinal sets show the exact disparity with the pair drawn."""
    from PIL import Image, ImageDraw

    image = r.image if a.image is None else a.image
    if space.is_depth:
        colour = _colourise(depth_to_disparity(a.target, a.mask)[0], a.mask)
    elif a.pairs is not None:
        colour = _colourise(depth_to_disparity(r.depth, r.mask)[0], r.mask)
    else:
        colour = _colourise(a.target, a.mask)
    if a.mask.any():  # sparse targets: grow points so they stay visible when shrunk
        grow = max(1, r.depth.shape[0] // tile)
        from scipy import ndimage

        filled = ndimage.maximum_filter(a.mask.astype(np.uint8), size=grow) > 0
        if filled.mean() > a.mask.mean() * 1.5:
            idx = ndimage.distance_transform_edt(~a.mask, return_distances=False,
                                                 return_indices=True)
            colour = np.where(filled[..., None], colour[idx[0], idx[1]], 0)
    tiles = []
    for array in (image, colour, np.repeat(a.mask[..., None], 3, -1).astype(np.float32)):
        pil = Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8)).resize(
            (tile, tile), Image.Resampling.BILINEAR
        )
        if a.pairs is not None and array is not colour:
            draw = ImageDraw.Draw(pil)
            s = tile / r.depth.shape[0]
            for ya, xa, yb, xb, label in a.pairs:
                near, far = ((xa, ya), (xb, yb)) if label > 0 else ((xb, yb), (xa, ya))
                for (x, y), c in ((near, (255, 40, 40)), (far, (40, 120, 255))):
                    draw.ellipse([x * s - 3, y * s - 3, x * s + 3, y * s + 3], outline=c, width=2)
        tiles.append(np.asarray(pil))
    return np.concatenate(tiles, 0)


def write_contact_sheet(path: Path, columns: list[np.ndarray]) -> None:
    """Save tile columns side by side as a palette PNG (small enough for docs)."""
    from PIL import Image

    if not columns:
        return
    sheet = np.concatenate(columns, 1)
    Image.fromarray(sheet).quantize(colors=256, dither=Image.Dither.NONE).save(path,
                                                                             optimize=True)


# ----------------------------------------------------------------------------- generation
def _job(args) -> tuple[int, dict, np.ndarray | None]:
    personality, families, seed, size, index, root, tile = args
    p = get_personality(personality)
    r, a, rng = make_sample(personality, families, seed, size, index)
    record = LAYOUTS[p.dataset].write(Path(root), index, r, a, rng)
    tiles = contact_tiles(r, a, p.space, tile) if tile else None
    return index, record, tiles


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def worker_pool(workers: int):
    """A process pool for `generate_set(..., pool=)` (one pool can serve many sets).
    Workers only run numpy/PIL code, so forking is safe and starts fastest where available."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    return context.Pool(workers)


def generate_set(
    out: str | Path,
    personality: str,
    n: int,
    seed: int = 0,
    size: int = 256,
    families: tuple[str, ...] | None = None,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    contact_sheet: bool = True,
    overwrite: bool = False,
    pool=None,
) -> dict:
    """Generate `n` samples of `personality` into `out` in its real dataset layout.

    families: scene families to draw from (default: the personality's). workers: processes
    (results do not depend on it). progress: called with 1 after each sample. A non-empty
    `out` is refused (stale files of an earlier set would be read with the new ones) unless
    overwrite=True, which deletes it first. pool: a `worker_pool` to run on instead of
    starting `workers` new processes. Returns the set's entry for mix.yaml: name, dataset,
    root, split, space, families, n, size, seed.
    """
    p = get_personality(personality)
    families = tuple(check_family(f) for f in (families or p.families))
    if n < 1:
        raise ConfigError(f"n: need at least one sample, got {n}")
    if size < 16:
        raise ConfigError(f"size: images must be at least 16 pixels, got {size}")
    if workers < 1:
        raise ConfigError(f"workers: need at least one worker, got {workers}")
    root = Path(out)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        if not overwrite:
            raise ConfigError(f"out: {root} exists and is not empty; choose a new folder "
                              "or overwrite it (--overwrite)")
        if root.is_dir():
            shutil.rmtree(root)
        else:
            root.unlink()
    root.mkdir(parents=True, exist_ok=True)
    layout = LAYOUTS[p.dataset]
    tile = min(size, 128) if contact_sheet else 0
    jobs = [(personality, families, seed, size, i, str(root),
             tile if i < CONTACT_COLUMNS else 0) for i in range(n)]
    records: list[dict] = []
    columns: list[np.ndarray] = []

    def collect(result):
        _, record, tiles = result
        records.append(record)
        if tiles is not None:
            columns.append(tiles)
        if progress is not None:
            progress(1)

    if pool is not None:
        for result in pool.imap(_job, jobs, chunksize=1):
            collect(result)
    elif workers == 1:
        for job in jobs:
            collect(_job(job))
    else:
        if n >= 64:  # a set this large uses nearly every pool texture in each worker
            warm_pool()  # so build them once here; forked workers inherit them
        with worker_pool(workers) as own_pool:
            for result in own_pool.imap(_job, jobs, chunksize=1):
                collect(result)
    if layout.finish is not None:
        layout.finish(root, records, p.space)
    if contact_sheet:
        write_contact_sheet(root / "contact_sheet.png", columns)
    return {
        "name": personality,
        "dataset": p.dataset,
        "root": str(root),
        "split": layout.split,
        "space": str(p.space),
        "families": list(families),
        "n": n,
        "size": size,
        "seed": seed,
    }


PRESETS = {"default-mix": "every personality on the training families, plus held-out families"}


def generate_preset(
    preset: str,
    out: str | Path,
    n_per_set: int = 200,
    seed: int = 0,
    size: int = 256,
    workers: int = 1,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a preset: OUT/train/<personality>/ for every personality (training families),
    OUT/heldout/<family>/ (exact depth, Sintel layout) for every held-out family, and
    OUT/mix.yaml listing each set. progress(label, total) returns a per-sample callback.
    Returns the path of mix.yaml."""
    if preset not in PRESETS:
        raise ConfigError(f"preset: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    from mixdepth.synthetic.personalities import PERSONALITIES

    out = Path(out)
    train, heldout = [], []
    pool = None
    if workers > 1:
        if n_per_set >= 16:
            warm_pool()  # every set of the preset draws from the same textures
        pool = worker_pool(workers)
    try:
        for name, p in PERSONALITIES.items():
            families = tuple(f for f in p.families if f in TRAIN_FAMILIES)
            bar = progress(f"train/{name}", n_per_set) if progress else None
            entry = generate_set(out / "train" / name, name, n_per_set, seed, size, families,
                                 workers, bar, overwrite=overwrite, pool=pool)
            train.append({**entry, "root": f"train/{name}"})
        for family in HELDOUT_FAMILIES:
            bar = progress(f"heldout/{family}", n_per_set) if progress else None
            entry = generate_set(out / "heldout" / family, HELDOUT, n_per_set, seed, size,
                                 (family,), workers, bar, overwrite=overwrite, pool=pool)
            heldout.append({**entry, "name": family, "root": f"heldout/{family}"})
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    mix = {
        "preset": preset,
        "seed": seed,
        "size": size,
        "n_per_set": n_per_set,
        "note": "roots are relative to this file's folder",
        "train": train,
        "heldout": heldout,
    }
    path = out / "mix.yaml"
    path.write_text(yaml.safe_dump(mix, sort_keys=False))
    return path

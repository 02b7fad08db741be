"""Metric depth from a relative prediction and a few known depths ("hints").

A mixdepth model predicts disparity up to an unknown scale and shift. Given K hints
(pixel position, metric depth in metres) the fit is made where the model is invariant, in
disparity space:

    1 / depth  ~=  scale * disparity + shift          (1/m; scale > 0)

by least squares (`mixdepth.losses.align_lstsq`) on the hints, robustly by default: RANSAC
over pairs of hints scored on relative depth error, then least squares on the inliers. See
docs/align.md for the model, the choice of the inlier threshold and the uncertainty interval.

Conventions: pixel centres sit at integer coordinates, x is the column and y the row of the
disparity map's pixel grid, so the map covers -0.5 <= x <= W - 0.5, -0.5 <= y <= H - 0.5.
Output depth is float32 metres with 0 marking pixels without a valid depth.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mixdepth.errors import AlignmentError, ConfigError
from mixdepth.outputs import back_project as metric_point_cloud  # public here, for metric depth
from mixdepth.outputs import camera_from_fov

# A hint is an inlier when the fitted depth is within this relative error of its own depth,
# |depth_fit - depth_hint| / depth_hint <= INLIER_THRESHOLD (see docs/align.md: above the error
# of good hints on an imperfect prediction, below that of gross mistakes).
INLIER_THRESHOLD = 0.4
# RANSAC tries every pair of hints when there are at most this many pairs, else this many
# random pairs (single hints with scale_only).
RANSAC_CANDIDATES = 2000
# Candidates are scored on at most this many hints (a random subset of a dense hint map).
SCORING_HINTS = 4096
# Least-squares refits on the inlier set until it stops changing, at most this many times.
MAX_REFITS = 10
# When the least-squares fit on a candidate's inliers has a non-positive scale, the next best
# candidate is tried, up to this many.
REFIT_CANDIDATES = 20
# Number of bootstrap resamples of the inliers behind `MetricAlignment.interval`.
BOOTSTRAP_SAMPLES = 200
# Elements per batched least-squares call (bootstrap resamples x inliers).
BATCH_ELEMENTS = 1 << 21
# Disparities at the usable hints whose spread is below this fraction of their magnitude are
# treated as constant (the prediction cannot tell any hint from another).
CONSTANT_SPREAD = 1e-9

FLOAT32_MAX = float(np.finfo(np.float32).max)


def _as_numpy(x, name: str) -> np.ndarray:
    """A torch tensor or array-like -> numpy array (float64 for lists)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    try:
        array = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise AlignmentError(f"{name}: cannot read as an array ({err})") from None
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise AlignmentError(f"{name}: expected numbers, got an array of {array.dtype}")
    return array


def _check_range(min_depth: float | None, max_depth: float | None) -> None:
    for name, value in (("min_depth", min_depth), ("max_depth", max_depth)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a positive number of metres, got {value}")
    if min_depth is not None and max_depth is not None and not min_depth < max_depth:
        raise ConfigError(f"min_depth ({min_depth}) must be below max_depth ({max_depth})")


def metric_depth(
    disparity,
    scale: float,
    shift: float,
    *,
    min_depth: float | None = None,
    max_depth: float | None = None,
) -> np.ndarray:
    """Depth in metres, float32 (H, W), from disparity (H, W): 1 / (scale * disparity + shift).

    Where the aligned disparity is not positive (or so small the depth overflows float32) the
    point is beyond any finite depth: max_depth when given, else 0 (invalid). Non-finite
    disparity gives 0. Valid depths are clipped to [min_depth, max_depth] when given.
    """
    _check_range(min_depth, max_depth)
    d = _as_numpy(disparity, "disparity").astype(np.float64)
    q = scale * d + shift
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        depth = 1.0 / q
    valid = (q > 0) & (depth <= FLOAT32_MAX)
    far = ~valid & ~np.isnan(q) & (q != np.inf)
    if max_depth is not None:
        depth = np.where(valid, np.minimum(depth, max_depth), np.where(far, max_depth, 0.0))
    else:
        depth = np.where(valid, depth, 0.0)
    if min_depth is not None:
        depth = np.where(depth > 0, np.maximum(depth, min_depth), 0.0)
    return depth.astype(np.float32)


def sample_bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of image (H, W) at pixel coordinates x, y (same shape) -> float64.

    Pixel centres are at integers; positions within half a pixel outside the centres take
    the border pixels. A neighbour with zero weight is never read, so a hint exactly on a
    pixel centre ignores non-finite neighbours.
    """
    height, width = image.shape
    xc = np.clip(np.asarray(x, np.float64), 0.0, width - 1)
    yc = np.clip(np.asarray(y, np.float64), 0.0, height - 1)
    x0 = np.floor(xc).astype(np.intp)
    y0 = np.floor(yc).astype(np.intp)
    x1 = np.minimum(x0 + 1, width - 1)
    y1 = np.minimum(y0 + 1, height - 1)
    fx, fy = xc - x0, yc - y0
    total = np.zeros(xc.shape, np.float64)
    for yy, xx, weight in (
        (y0, x0, (1 - fx) * (1 - fy)),
        (y0, x1, fx * (1 - fy)),
        (y1, x0, (1 - fx) * fy),
        (y1, x1, fx * fy),
    ):
        value = image[yy, xx].astype(np.float64)
        total += np.where(weight > 0, value, 0.0) * weight
    return total


def hints_from_map(depth_map: np.ndarray) -> np.ndarray:
    """Sparse metric depth (H, W), 0/NaN/+inf unknown -> hints (K, 3) x, y, depth, float64.

    Hints are the known pixels in row-major order. Negative depths are an error naming the
    pixel.
    """
    values = np.asarray(depth_map, np.float64)
    negative = np.argwhere(values < 0)
    if len(negative):
        row, col = negative[0]
        raise AlignmentError(
            f"hint map pixel (x={col}, y={row}) has depth {values[row, col]:g}: depths must be "
            f"positive metres (0 or NaN mark unknown pixels); {len(negative)} negative pixel(s)"
        )
    rows, cols = np.nonzero(np.isfinite(values) & (values > 0))
    return np.stack([cols, rows, values[rows, cols]], axis=1).astype(np.float64)


def _describe(index: int, hints: np.ndarray) -> str:
    x, y, depth = hints[index]
    return f"hint {index} (x={x:g}, y={y:g}, depth={depth:g})"


def check_hints(hints, shape: tuple[int, int]) -> np.ndarray:
    """Hints (K, 3) [x, y, depth_m] or a sparse depth map of `shape` -> float64 (K, 3).

    A 2-D input with exactly the disparity's shape is read as a map (`hints_from_map`).
    Raises AlignmentError naming the first hint outside the image or with a non-positive or
    non-finite depth.
    """
    array = _as_numpy(hints, "hints")
    if array.ndim == 2 and array.shape == tuple(shape):
        return hints_from_map(array)
    if array.ndim == 1 and array.shape == (3,):
        array = array[None]
    if array.ndim != 2 or array.shape[1] != 3:
        raise AlignmentError(
            f"hints must be (K, 3) rows of x, y, depth or a sparse depth map of the "
            f"prediction's shape {tuple(shape)}, got shape {array.shape}"
        )
    array = array.astype(np.float64)
    height, width = shape
    x, y, depth = array.T
    outside = ~(np.isfinite(x) & np.isfinite(y) & (x >= -0.5) & (x <= width - 0.5)
                & (y >= -0.5) & (y <= height - 0.5))
    if outside.any():
        index = int(np.flatnonzero(outside)[0])
        more = int(outside.sum()) - 1
        raise AlignmentError(
            f"{_describe(index, array)} lies outside the {width} x {height} prediction "
            f"(x from -0.5 to {width - 0.5:g}, y from -0.5 to {height - 0.5:g})"
            + (f"; {more} more hint(s) outside" if more else ""),
            index,
        )
    bad = ~(np.isfinite(depth) & (depth > 0))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        more = int(bad.sum()) - 1
        raise AlignmentError(
            f"{_describe(index, array)}: depths must be positive, finite metres"
            + (f"; {more} more such hint(s)" if more else ""),
            index,
        )
    return array


def read_hints_csv(path: str | Path) -> np.ndarray:
    """A CSV file with a header naming columns x, y and depth (any order, other columns
    ignored; blank lines and lines starting with # skipped) -> float64 (K, 3) x, y, depth."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise AlignmentError(f"{path}: cannot read hints ({err})") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise AlignmentError(f"{path}: no header line; expected columns x,y,depth")
    rows = list(csv.reader(io.StringIO("\n".join(line for _, line in lines))))
    header = [name.strip().lower() for name in rows[0]]
    missing = [name for name in ("x", "y", "depth") if name not in header]
    if missing:
        raise AlignmentError(
            f"{path}: header {','.join(header)} lacks column(s) {', '.join(missing)}; "
            "expected x,y,depth (pixel column, pixel row, metres)"
        )
    columns = [header.index(name) for name in ("x", "y", "depth")]
    values = np.empty((len(rows) - 1, 3), np.float64)
    for row_index, row in enumerate(rows[1:]):
        number = lines[row_index + 1][0]
        if len(row) < len(header):
            raise AlignmentError(f"{path} line {number}: {len(row)} field(s), expected "
                                 f"{len(header)}")
        for j, column in enumerate(columns):
            try:
                values[row_index, j] = float(row[column])
            except ValueError:
                raise AlignmentError(
                    f"{path} line {number}: {header[column]} {row[column].strip()!r} is not a "
                    "number"
                ) from None
    return values


def _batched_lstsq(p: np.ndarray, t: np.ndarray, scale_only: bool) -> tuple[np.ndarray, ...]:
    """Least-squares (scale, shift) per row of p, t (B, N) float64: t ~ scale * p + shift.

    Scale and shift come from `align_lstsq` (shift fixed at 0 with scale_only:
    scale = sum p t / sum p^2). Rows with a constant p get scale 0.
    """
    if scale_only:
        energy = (p * p).sum(axis=1)
        scale = np.where(energy > 0, (p * t).sum(axis=1) / np.where(energy > 0, energy, 1), 0)
        return scale, np.zeros_like(scale)
    from mixdepth.losses.alignment import align_lstsq

    pred = torch.from_numpy(np.ascontiguousarray(p))[:, None]
    target = torch.from_numpy(np.ascontiguousarray(t))[:, None]
    scale, shift = align_lstsq(pred, target, torch.ones(pred.shape, dtype=torch.bool))
    return scale.numpy(), shift.numpy()


def _lstsq(p: np.ndarray, t: np.ndarray, scale_only: bool) -> tuple[float, float]:
    scale, shift = _batched_lstsq(p[None], t[None], scale_only)
    return float(scale[0]), float(shift[0])


def relative_error(q: np.ndarray, t: np.ndarray) -> np.ndarray:
    """|depth_fit - depth| / depth for fitted disparity q and hint disparity t = 1/depth
    (broadcast): |t / q - 1|, inf where q <= 0 (the fit puts the hint beyond infinity)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q > 0, np.abs(t / np.where(q > 0, q, 1.0) - 1.0), np.inf)


def _ransac(p, t, scale_only, threshold, rng) -> list[tuple[float, float]]:
    """The best REFIT_CANDIDATES (scale, shift) of minimal fits (pairs of hints, or single
    hints with scale_only), best first, by the truncated squared relative depth error
    (MSAC); empty if no candidate has a positive scale."""
    count = len(p)
    if scale_only:
        index = np.arange(count) if count <= RANSAC_CANDIDATES else rng.choice(
            count, RANSAC_CANDIDATES, replace=False)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = t[index] / p[index]
        shift = np.zeros_like(scale)
    else:
        if count * (count - 1) // 2 <= RANSAC_CANDIDATES:
            i, j = np.triu_indices(count, 1)
        else:
            i = rng.integers(count, size=RANSAC_CANDIDATES)
            j = (i + rng.integers(1, count, size=RANSAC_CANDIDATES)) % count
        with np.errstate(divide="ignore", invalid="ignore"):  # equal disparities: dropped below
            scale = (t[i] - t[j]) / (p[i] - p[j])
            shift = t[i] - scale * p[i]
    keep = np.isfinite(scale) & np.isfinite(shift) & (scale > 0)
    if not keep.any():
        return []
    scale, shift = scale[keep], shift[keep]
    if count > SCORING_HINTS:
        subset = rng.choice(count, SCORING_HINTS, replace=False)
        p, t = p[subset], t[subset]
    cost = np.empty(len(scale))
    step = max(1, BATCH_ELEMENTS // len(p))
    for start in range(0, len(scale), step):
        q = scale[start:start + step, None] * p[None] + shift[start:start + step, None]
        error = np.minimum(relative_error(q, t[None]), threshold)
        cost[start:start + step] = (error * error).sum(axis=1)
    best = np.argsort(cost, kind="stable")[:REFIT_CANDIDATES]
    return [(float(scale[i]), float(shift[i])) for i in best]


def _refit(p, t, scale, shift, scale_only, threshold, minimum):
    """Least squares on the inliers of (scale, shift), repeated while the inlier set changes.
    Returns (scale, shift, inliers) with (scale, shift) the fit on exactly those inliers."""
    inliers = relative_error(scale * p + shift, t) <= threshold
    scale, shift = _lstsq(p[inliers], t[inliers], scale_only)
    for _ in range(MAX_REFITS):
        if not scale > 0:
            break
        updated = relative_error(scale * p + shift, t) <= threshold
        if np.array_equal(updated, inliers) or updated.sum() < minimum:
            break
        new_scale, new_shift = _lstsq(p[updated], t[updated], scale_only)
        if not new_scale > 0:
            break
        inliers, scale, shift = updated, new_scale, new_shift
    return scale, shift, inliers


def _bootstrap(p, t, scale_only, rng) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) fits on BOOTSTRAP_SAMPLES resamples (with replacement) of the inliers
    p, t (N,); degenerate resamples (non-positive scale) are dropped."""
    count = len(p)
    index = rng.integers(count, size=(BOOTSTRAP_SAMPLES, count))
    step = max(1, BATCH_ELEMENTS // count)
    parts = [_batched_lstsq(p[index[s:s + step]], t[index[s:s + step]], scale_only)
             for s in range(0, BOOTSTRAP_SAMPLES, step)]
    scale = np.concatenate([part[0] for part in parts])
    shift = np.concatenate([part[1] for part in parts])
    keep = np.isfinite(scale) & np.isfinite(shift) & (scale > 0)
    return scale[keep], shift[keep]


@dataclass(frozen=True)
class MetricAlignment:
    """Result of `align_to_hints`.

    depth: float32 (H, W) metres, 0 where no valid depth; scale, shift: the fit
    1/depth = scale * disparity + shift (disparity space, 1/m); inliers: bool (K,), one per
    hint (for a hint map: its known pixels in row-major order); residual: median relative
    depth error |depth_fit - depth| / depth over the inliers; hints: float64 (K, 3) x, y,
    depth as used. `interval` gives a bootstrap interval of the depth at any pixel.
    """

    depth: np.ndarray = field(repr=False)
    scale: float
    shift: float
    inliers: np.ndarray = field(repr=False)
    residual: float
    hints: np.ndarray = field(repr=False)
    min_depth: float | None = None
    max_depth: float | None = None
    disparity: np.ndarray = field(default=None, repr=False)
    bootstrap_scale: np.ndarray = field(default=None, repr=False)
    bootstrap_shift: np.ndarray = field(default=None, repr=False)

    @property
    def inlier_count(self) -> int:
        return int(self.inliers.sum())

    def interval(self, x, y, level: float = 0.9):
        """Bootstrap interval (low, high) in metres of the depth at pixel positions x, y.

        x, y: scalars or arrays of one shape (bilinear sampling, as for hints). The fit is
        repeated on resamples of the inlier hints with replacement; the bounds are the
        (1 - level) / 2 and (1 + level) / 2 quantiles of the resampled depths (inf when a
        resample puts the pixel beyond infinity, clipped to min/max_depth when set). This is
        the uncertainty of the alignment, not of the network's relative depth at the pixel;
        with two inliers it collapses to the fitted depth. Scalars in, floats out.
        """
        if not 0 < level < 1:
            raise ConfigError(f"level must be between 0 and 1, got {level}")
        scalar = np.ndim(x) == 0 and np.ndim(y) == 0
        x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
        height, width = self.disparity.shape
        inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
        if not inside.all():
            raise AlignmentError(f"interval: position outside the {width} x {height} map")
        p = sample_bilinear(self.disparity, x.ravel(), y.ravel())
        scale, shift = self.bootstrap_scale, self.bootstrap_shift
        if len(scale) == 0:
            scale, shift = np.array([self.scale]), np.array([self.shift])
        q = scale[:, None] * p[None] + shift[:, None]
        q_low, q_high = np.quantile(q, [(1 - level) / 2, (1 + level) / 2], axis=0)
        with np.errstate(divide="ignore"):
            low = np.where(q_high > 0, 1.0 / np.where(q_high > 0, q_high, 1.0), np.inf)
            high = np.where(q_low > 0, 1.0 / np.where(q_low > 0, q_low, 1.0), np.inf)
        if self.min_depth is not None or self.max_depth is not None:
            low, high = (np.clip(b, self.min_depth, self.max_depth) for b in (low, high))
        low, high = low.reshape(x.shape), high.reshape(x.shape)
        return (float(low), float(high)) if scalar else (low, high)


def align_to_hints(
    disparity,
    hints,
    *,
    robust: bool = True,
    min_depth: float | None = None,
    max_depth: float | None = None,
    scale_only: bool = False,
    seed: int = 0,
    threshold: float = INLIER_THRESHOLD,
) -> MetricAlignment:
    """Align a relative prediction to metric depth hints.

    disparity: (H, W) relative inverse depth (numpy or torch) as a mixdepth model predicts.
    hints: (K, 3) rows x, y, depth_m (pixel column and row in the disparity's grid, sub-pixel
    positions sampled bilinearly; metres), or a sparse (H, W) metric depth map with 0/NaN
    where unknown. Fits 1/depth = scale * disparity + shift (shift = 0 with scale_only, which
    also accepts a single hint) by least squares on the hints; with robust=True, by RANSAC
    over pairs of hints (MSAC score on relative depth error, inlier if at most `threshold`)
    then least squares on the inliers. The result does not depend on the order of the hints
    and is deterministic for a given seed.

    Raises AlignmentError for hints outside the image, non-positive or non-finite depths,
    too few usable hints, or a fitted scale that is not positive.
    """
    _check_range(min_depth, max_depth)
    if not (math.isfinite(threshold) and threshold > 0):
        raise ConfigError(f"threshold must be a positive relative error, got {threshold}")
    disparity = _as_numpy(disparity, "disparity")
    if disparity.ndim != 2 or disparity.size == 0:
        raise AlignmentError(f"disparity must be a (H, W) map, got shape {disparity.shape}")
    hints = check_hints(hints, disparity.shape)
    count = len(hints)
    minimum = 1 if scale_only else 2
    if count == 0:
        raise AlignmentError("no hints: the hint map has no known depth (all 0 or NaN)")
    if count == 1 and not scale_only:
        raise AlignmentError(
            "1 hint fixes a scale but not a shift: give at least 2 hints, or fit the scale "
            "alone with scale_only=True (--scale-only)", 0)

    # A canonical order (by x, y, depth) makes the result independent of the hints' order.
    order = np.lexsort((hints[:, 2], hints[:, 1], hints[:, 0]))
    p_all = sample_bilinear(disparity, hints[order, 0], hints[order, 1])
    t_all = 1.0 / hints[order, 2]
    usable = np.isfinite(p_all)
    if usable.sum() < minimum:
        lost = order[~usable]
        raise AlignmentError(
            f"{int(usable.sum())} usable hint(s) of {count}, need at least {minimum}: "
            + ", ".join(f"hint {i}" for i in sorted(lost.tolist())[:5])
            + " fall(s) on non-finite prediction pixels",
            int(lost.min()) if len(lost) else None,
        )
    p, t = p_all[usable], t_all[usable]
    spread = np.ptp(p)
    if not scale_only and not spread > CONSTANT_SPREAD * np.abs(p).max():
        raise AlignmentError(
            "the prediction has the same value at every usable hint, so it cannot tell near "
            "from far and no scale can be fitted (scale_only=True fits a scale alone)"
        )

    rng = np.random.default_rng(seed)
    if robust:
        candidates = _ransac(p, t, scale_only, threshold, rng)
        if not candidates:
            raise AlignmentError(
                "no pair of hints gives a positive scale: the prediction and the hints disagree "
                "on near and far (hints with larger depth have larger predicted disparity)"
                if not scale_only else
                "no hint gives a positive scale: the prediction is not positive at the hints"
            )
        for candidate in candidates:
            scale, shift, inliers = _refit(p, t, *candidate, scale_only, threshold, minimum)
            if scale > 0:
                break
    else:
        scale, shift = _lstsq(p, t, scale_only)
        inliers = np.ones(len(p), bool)
    if not scale > 0:
        raise AlignmentError(
            f"the fitted scale is {scale:.4g} (not positive): the prediction and the hints "
            "disagree on near and far; check the hints' positions (x = column, y = row) and "
            "that the prediction is disparity (near = high), not depth"
        )

    error = relative_error(scale * p[inliers] + shift, t[inliers])
    boot_scale, boot_shift = _bootstrap(p[inliers], t[inliers], scale_only, rng)
    flags = np.zeros(count, bool)
    usable_index = order[usable]
    flags[usable_index[inliers]] = True
    return MetricAlignment(
        depth=metric_depth(disparity, scale, shift, min_depth=min_depth, max_depth=max_depth),
        scale=float(scale),
        shift=float(shift),
        inliers=flags,
        residual=float(np.median(error)),
        hints=hints,
        min_depth=min_depth,
        max_depth=max_depth,
        disparity=disparity,
        bootstrap_scale=boot_scale,
        bootstrap_shift=boot_shift,
    )


__all__ = [
    "INLIER_THRESHOLD",
    "MetricAlignment",
    "align_to_hints",
    "camera_from_fov",
    "check_hints",
    "hints_from_map",
    "metric_depth",
    "metric_point_cloud",
    "read_hints_csv",
    "relative_error",
    "sample_bilinear",
]

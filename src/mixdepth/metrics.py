"""Zero-shot evaluation metrics (METHOD.md section 6) and the ordinal WHDR.

`zero_shot_metrics` scores ONE image: the predicted relative disparity is aligned to the
ground-truth disparity with least squares (scale and shift), clamped below at 1/cap, turned
into depth and compared with the ground-truth depth on the valid pixels. `aggregate` takes
the mean of per-image results, as published. `whdr` scores ordinal point pairs (DIW).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from mixdepth.data.sample import depth_to_disparity
from mixdepth.errors import MixdepthError
from mixdepth.losses.alignment import align_lstsq

METRIC_NAMES = ("absrel", "sqrel", "rmse", "rmse_log", "delta1", "delta2", "delta3", "bad_pixel")
BAD_PIXEL_THRESHOLD = 1.25


def as_float64_tensor(x, name: str) -> torch.Tensor:
    """A numpy array, torch tensor or nested sequence as a float64 CPU tensor (no gradient)."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64)
    try:
        return torch.from_numpy(np.asarray(x, dtype=np.float64))
    except (TypeError, ValueError) as error:
        raise MixdepthError(f"{name}: expected a numeric array, got {type(x).__name__}") from error


def zero_shot_metrics(pred_disparity, gt_depth, mask=None, cap: float = 80.0) -> dict[str, float]:
    """Metrics of one image under the zero-shot protocol (METHOD.md section 6).

    pred_disparity: (H, W) relative inverse depth at the ground-truth resolution (numpy array
        or torch tensor; resize it to the ground truth before calling).
    gt_depth: (H, W) ground-truth depth in metres.
    mask: optional bool (H, W) of pixels to evaluate. Pass the benchmark's valid range and
        crop here (e.g. gt_depth <= cap, an eval crop); pixels whose depth is not finite or
        not > 0 are always excluded, so None means "every pixel with a usable depth".
    cap: maximum depth in metres (NYU/TUM 10, KITTI 80, ETH3D/Sintel 72); the aligned
        disparity is clamped below at 1/cap before inversion.

    Steps: ground-truth depth -> disparity (`depth_to_disparity`), least-squares scale and
    shift of the prediction onto it (`align_lstsq`, float64), clamp at 1/cap, depth =
    1/disparity, then over the valid pixels (d predicted depth, d* ground truth):
    absrel = mean |d - d*| / d*; sqrel = mean (d - d*)^2 / d*; rmse = sqrt(mean (d - d*)^2);
    rmse_log = sqrt(mean (ln d - ln d*)^2); deltaK = fraction (0..1) with
    max(d/d*, d*/d) < 1.25^K; bad_pixel = percent (0..100) with max(d/d*, d*/d) > 1.25.

    Raises MixdepthError when the shapes differ, the image has no valid pixel (the caller
    records a skip) or the prediction is not finite on a valid pixel. Never returns NaN.
    """
    pred = as_float64_tensor(pred_disparity, "pred_disparity")
    gt = as_float64_tensor(gt_depth, "gt_depth")
    if pred.ndim != 2 or gt.shape != pred.shape:
        raise MixdepthError(
            f"zero_shot_metrics: pred_disparity {tuple(pred.shape)} and gt_depth "
            f"{tuple(gt.shape)} must both be one (H, W) image of the same size"
        )
    if mask is None:
        mask_t = torch.ones_like(gt, dtype=torch.bool)
    else:
        mask_t = (mask.detach().cpu() if isinstance(mask, torch.Tensor) else
                  torch.from_numpy(np.asarray(mask))).to(torch.bool)
        if mask_t.shape != gt.shape:
            raise MixdepthError(
                f"zero_shot_metrics: mask {tuple(mask_t.shape)} must have the shape of gt_depth "
                f"{tuple(gt.shape)}"
            )
    if not (cap > 0 and np.isfinite(cap)):
        raise MixdepthError(f"zero_shot_metrics: cap must be a positive depth in metres, got {cap}")
    gt_disparity, valid = depth_to_disparity(gt, mask_t)
    if not bool(valid.any()):
        raise MixdepthError("zero_shot_metrics: the image has no valid ground-truth pixel")
    bad_pred = int((valid & ~torch.isfinite(pred)).sum())
    if bad_pred:
        raise MixdepthError(
            f"zero_shot_metrics: pred_disparity is NaN or infinite at {bad_pred} valid pixels"
        )
    scale, shift = align_lstsq(pred[None], gt_disparity[None], valid[None])
    aligned = (scale[0] * pred[valid] + shift[0]).clamp_min(1.0 / cap)
    return depth_errors(1.0 / aligned, gt[valid])


def depth_errors(depth: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """The standard depth metrics of predicted vs ground-truth depths, no alignment.

    depth, target: 1-D float64 tensors of the valid pixels' depths (> 0), same length >= 1.
    Keys and formulas as in `zero_shot_metrics` (deltas as fractions, bad_pixel in percent).
    """
    diff = depth - target
    ratio = torch.maximum(depth / target, target / depth)
    return {
        "absrel": float((diff.abs() / target).mean()),
        "sqrel": float((diff**2 / target).mean()),
        "rmse": float(torch.sqrt((diff**2).mean())),
        "rmse_log": float(torch.sqrt(((torch.log(depth) - torch.log(target)) ** 2).mean())),
        "delta1": float((ratio < BAD_PIXEL_THRESHOLD).double().mean()),
        "delta2": float((ratio < BAD_PIXEL_THRESHOLD**2).double().mean()),
        "delta3": float((ratio < BAD_PIXEL_THRESHOLD**3).double().mean()),
        "bad_pixel": 100.0 * float((ratio > BAD_PIXEL_THRESHOLD).double().mean()),
    }


def aggregate(results: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean over images of per-image metric dicts (every dict must have the same keys).

    This is the published per-image averaging: each image counts once, whatever its number
    of valid pixels. Raises MixdepthError for an empty list or mismatched keys.
    """
    results = list(results)
    if not results:
        raise MixdepthError("aggregate: no per-image results to average (every image skipped?)")
    keys = list(results[0])
    for index, result in enumerate(results):
        if set(result) != set(keys):
            raise MixdepthError(
                f"aggregate: result {index} has keys {sorted(result)}, expected {sorted(keys)}"
            )
    return {key: float(np.mean([float(result[key]) for result in results])) for key in keys}


def whdr(pred, pairs) -> float:
    """Weighted human disagreement rate (all weights 1): share of pairs ordered wrongly.

    pred: (H, W) predicted disparity (larger = closer), numpy or torch.
    pairs: (N, 5) integers [y_a, x_a, y_b, x_b, label], label +1 if a is closer than b (larger
        disparity), -1 if it is further.
    A pair counts as wrong when sign(pred[a] - pred[b]) differs from its label; ties (equal
    predicted disparities) and NaN predictions count as wrong. Returns a float in [0, 1].
    Raises MixdepthError for no pairs, labels other than +-1 or coordinates outside the image.
    """
    pred_t = as_float64_tensor(pred, "pred")
    if pred_t.ndim != 2:
        raise MixdepthError(f"whdr: pred must be one (H, W) map, got shape {tuple(pred_t.shape)}")
    pairs_t = pairs.detach().cpu() if isinstance(pairs, torch.Tensor) else torch.as_tensor(
        np.asarray(pairs)
    )
    if pairs_t.ndim != 2 or pairs_t.shape[1] != 5:
        raise MixdepthError(f"whdr: pairs must have shape (N, 5), got {tuple(pairs_t.shape)}")
    if pairs_t.shape[0] == 0:
        raise MixdepthError("whdr: no ordinal pairs to score")
    if pairs_t.is_floating_point() and not bool((pairs_t == pairs_t.round()).all()):
        raise MixdepthError("whdr: pair coordinates and labels must be integers")
    pairs_t = pairs_t.to(torch.int64)
    y_a, x_a, y_b, x_b, label = pairs_t.unbind(1)
    height, width = pred_t.shape
    inside = ((y_a >= 0) & (y_a < height) & (y_b >= 0) & (y_b < height)
              & (x_a >= 0) & (x_a < width) & (x_b >= 0) & (x_b < width))
    if not bool(inside.all()):
        row = int((~inside).nonzero()[0, 0])
        raise MixdepthError(
            f"whdr: pair {row} {pairs_t[row].tolist()} lies outside the {height}x{width} image"
        )
    if not bool(((label == 1) | (label == -1)).all()):
        raise MixdepthError("whdr: pair labels must be +1 (a closer) or -1 (a further)")
    ordering = torch.sign(pred_t[y_a, x_a] - pred_t[y_b, x_b])
    return float((ordering != label.to(ordering.dtype)).double().mean())

"""Scoring one image: the published protocol and the alternative alignments users ask for.

`score_dense` is the whole per-image step of the zero-shot protocol. The default alignment,
"disparity", is exactly `mixdepth.metrics.zero_shot_metrics` (least squares in disparity
space, clamp below 1/cap, invert, metrics). The alternatives produce an aligned depth map and
score it with `depth_metrics`, which uses the same formulas without any alignment:

- "depth":  least-squares scale and shift in depth space (`align_lstsq` on depth maps);
- "median": one scale, median(gt depth) / median(predicted depth) over the valid pixels;
- "none":   the prediction is taken as metric (inverse) depth as it is.

Every aligned depth is clamped into [min_depth, cap] before scoring, so the same cap applies
whatever the alignment.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from mixdepth.data.sample import depth_to_disparity
from mixdepth.losses.alignment import align_lstsq, masked_median
from mixdepth.metrics import depth_errors, zero_shot_metrics

Alignment = Literal["disparity", "depth", "median", "none"]
ALIGNMENTS: tuple[str, ...] = ("disparity", "depth", "median", "none")
# Smallest aligned depth kept when a benchmark declares no valid range (metres).
MIN_DEPTH = 1e-3


def depth_metrics(pred_depth: np.ndarray, gt_depth: np.ndarray, mask: np.ndarray) -> dict:
    """The metrics of `zero_shot_metrics` for an already aligned depth map (no alignment).

    pred_depth, gt_depth: (H, W) depth in metres, pred_depth > 0 on the mask; mask: bool
    (H, W) with at least one pixel. Same keys and formulas as `zero_shot_metrics` (delta as a
    fraction, bad_pixel in percent).
    """
    depth = torch.from_numpy(np.asarray(pred_depth, dtype=np.float64)[mask])
    target = torch.from_numpy(np.asarray(gt_depth, dtype=np.float64)[mask])
    return depth_errors(depth, target)


def aligned_depth(
    pred_disparity: np.ndarray,
    gt_depth: np.ndarray,
    mask: np.ndarray,
    align: Alignment,
    cap: float,
    min_depth: float = MIN_DEPTH,
) -> np.ndarray:
    """The prediction as depth after one of the alternative alignments, clamped to [min, cap].

    pred_disparity: (H, W) relative inverse depth (0 = infinitely far); gt_depth: (H, W)
    metres; mask: bool (H, W) valid ground truth. Returns float64 (H, W) depth. Pixels where
    the prediction is 0 (infinitely far) end up at the cap. "disparity" is also accepted and
    gives the depth that `zero_shot_metrics` scores.
    """
    pred = torch.from_numpy(np.asarray(pred_disparity, dtype=np.float64))
    gt = torch.from_numpy(np.asarray(gt_depth, dtype=np.float64))
    valid = torch.from_numpy(np.asarray(mask, dtype=bool))
    if align == "disparity":
        gt_disparity, gt_valid = depth_to_disparity(gt, valid)
        scale, shift = align_lstsq(pred[None], gt_disparity[None], gt_valid[None])
        disparity = (scale[0] * pred + shift[0]).clamp_min(1.0 / cap)
        return (1.0 / disparity).numpy()
    pred_depth, pred_valid = depth_to_disparity(pred, torch.ones_like(valid))  # 1/x on x > 0
    pred_valid &= torch.isfinite(pred_depth)  # 1/x overflows for subnormal x
    pred_depth = torch.where(pred_valid, pred_depth, torch.full_like(pred, cap))
    fit = valid & pred_valid
    if align == "depth":
        scale, shift = align_lstsq(pred_depth[None], gt[None], fit[None])
        depth = scale[0] * pred_depth + shift[0]
    elif align == "median":
        pred_median = masked_median(pred_depth[None], fit[None])[0]
        gt_median = masked_median(gt[None], fit[None])[0]
        scale = gt_median / pred_median if float(pred_median) > 0 else torch.ones(())
        depth = scale * pred_depth
    elif align == "none":
        depth = pred_depth
    else:
        raise ValueError(f"alignment must be one of {', '.join(ALIGNMENTS)}: {align!r}")
    return depth.clamp(min_depth, cap).numpy()


def score_dense(
    pred_disparity: np.ndarray,
    gt_depth: np.ndarray,
    mask: np.ndarray,
    cap: float,
    align: Alignment = "disparity",
    min_depth: float = MIN_DEPTH,
) -> dict:
    """Metrics of one image: (H, W) prediction (relative inverse depth) against (H, W) metric
    ground truth on the bool (H, W) mask, at the ground-truth resolution.

    align="disparity" is the published protocol (`zero_shot_metrics`); the others align as
    described in the module docstring and score with `depth_metrics`.
    """
    if align == "disparity":
        return zero_shot_metrics(pred_disparity, gt_depth, mask, cap=cap)
    depth = aligned_depth(pred_disparity, gt_depth, mask, align, cap, min_depth)
    return depth_metrics(depth, gt_depth, mask)

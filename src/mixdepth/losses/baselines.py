"""Baseline losses for ablations (METHOD.md section 3): plain, log-scale-invariant, shift-only.

Inputs: pred and target (B, H, W) in disparity space, mask bool (B, H, W) of valid target
pixels (values outside it are never used). Reductions as everywhere in `mixdepth.losses`:
"batch" = sum over the batch / sum of normalisers, "image" = mean of per-image losses over
images with valid pixels, "none" = (B,). No alignment is differentiated here except the
closed-form shift of `shift_invariant_loss`, which is differentiated through.
"""

from __future__ import annotations

from torch import Tensor

from mixdepth.errors import MixdepthError
from mixdepth.losses.alignment import check_inputs, masked, valid_counts
from mixdepth.losses.reduction import check_reduction, reduce_sums

# Disparities are clamped below at this value before taking logs in `silog_loss`.
LOG_FLOOR = 1e-6


def mse_loss(pred: Tensor, target: Tensor, mask: Tensor, reduction: str = "batch") -> Tensor:
    """Plain mean squared error in disparity space: (1/M) sum (pred_i - target_i)^2."""
    check_inputs(pred, target, mask, "mse_loss")
    check_reduction(reduction)
    sums = masked(pred - target, mask).square().flatten(1).sum(1)
    return reduce_sums(sums, valid_counts(mask), reduction)


def mae_loss(pred: Tensor, target: Tensor, mask: Tensor, reduction: str = "batch") -> Tensor:
    """Plain mean absolute error in disparity space: (1/M) sum |pred_i - target_i|."""
    check_inputs(pred, target, mask, "mae_loss")
    check_reduction(reduction)
    sums = masked(pred - target, mask).abs().flatten(1).sum(1)
    return reduce_sums(sums, valid_counts(mask), reduction)


def silog_loss(
    pred: Tensor,
    target: Tensor,
    mask: Tensor,
    variance_focus: float = 0.5,
    reduction: str = "batch",
) -> Tensor:
    """Scale-invariant log loss (Eigen et al. 2014) on disparities.

    With g_i = ln pred_i - ln target_i over the M valid pixels of an image:
    (1/M) sum g_i^2 - variance_focus * (1/M^2) (sum g_i)^2. variance_focus = 1 makes it fully
    invariant to the scale of pred; 0.5 is Eigen et al.'s training choice. Since
    ln disparity = -ln depth, the value equals the loss on depths. Both maps are clamped below
    at 1e-6 before the log (a ReLU output of 0 gives a finite value, zero gradient there).
    """
    check_inputs(pred, target, mask, "silog_loss")
    check_reduction(reduction)
    if not 0.0 <= variance_focus <= 1.0:
        raise MixdepthError(f"silog_loss: variance_focus must be in [0, 1], got {variance_focus}")
    log_pred = masked(pred, mask).clamp_min(LOG_FLOOR).log()
    log_target = masked(target, mask).clamp_min(LOG_FLOOR).log()
    g = masked(log_pred - log_target, mask).flatten(1)
    count = valid_counts(mask)
    sums = g.square().sum(1) - variance_focus * g.sum(1).square() / count.clamp_min(1)
    return reduce_sums(sums, count, reduction)


def shift_invariant_loss(
    pred: Tensor, target: Tensor, mask: Tensor, reduction: str = "batch"
) -> Tensor:
    """Shift-only invariant loss: 1/(2M) sum (pred_i + t - target_i)^2 with the optimal t.

    t = mean over valid pixels of (target - pred), per image (the least-squares shift with the
    scale fixed at 1), differentiated through. Equals half the variance of the residual.
    """
    check_inputs(pred, target, mask, "shift_invariant_loss")
    check_reduction(reduction)
    difference = masked(pred - target, mask)
    count = valid_counts(mask)
    shift = difference.flatten(1).sum(1) / count.clamp_min(1)
    residual = masked(difference - shift[:, None, None], mask)
    return reduce_sums(residual.square().flatten(1).sum(1), 2 * count, reduction)

"""The scale-and-shift-invariant losses of MiDaS (METHOD.md section 3) and the full loss.

Inputs: pred and target (B, H, W) in disparity space, mask bool (B, H, W) of valid target
pixels; values outside the mask are never used (they may be NaN or inf). M is the number of
valid pixels of an image.

- ssi_mse:  align the prediction with least squares (`align_lstsq`), 1/(2M) sum r_i^2.
            Measured in the target's units; kind "mse-norm" first normalises the target with
            median/MAD, so that datasets whose targets differ in units weigh alike.
- ssi_mae:  normalise prediction and target with median/MAD (`normalize_median_mad`),
            1/(2M) sum |r_i|.
- ssi_trim: as ssi_mae but the sum runs over the floor((1 - trim) * M) smallest |r_i| of
            each image only (the largest residuals are dropped); still divided by 2M as in
            the paper. The kept set is found by one batched selection (`trim_selection`).

The alignment (scale, shift, median, MAD) is differentiated through. With a target that needs
no gradient, kinds "mse"/"mse-norm" run as one autograd node (`lstsq_loss_sums`, same values
and gradients, fewer passes over the maps). Reductions: "batch"
divides the sum over the batch by the sum of 2M over the batch (the reference), "image"
averages the per-image losses over images that have valid pixels, "none" returns (B,).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mixdepth.errors import MixdepthError
from mixdepth.losses.alignment import (
    align_lstsq,
    check_inputs,
    masked,
    normalize_median_mad,
    select_valid_rank,
    valid_counts,
)
from mixdepth.losses.gradient import residual_gradient_matching, scale_sums
from mixdepth.losses.lstsq_sums import lstsq_loss_sums
from mixdepth.losses.reduction import check_reduction, reduce_sums, zero_loss

KINDS = ("mse", "mse-norm", "mae", "trim")
# Tolerance added before flooring (1 - trim) * M so that e.g. 0.7 * 10 keeps 7, not 6.
KEEP_COUNT_TOLERANCE = 1e-9


def aligned_residual(pred: Tensor, target: Tensor, mask: Tensor, kind: str) -> Tensor:
    """R = aligned prediction - (aligned) target, (B, H, W), 0 outside the mask.

    kind "mse": R = s * pred + t - target with (s, t) from `align_lstsq`.
    kind "mse-norm": the same with normalize_median_mad(target) in place of target.
    kind "mae"/"trim": R = normalize_median_mad(pred) - normalize_median_mad(target).
    """
    if kind in ("mse", "mse-norm"):
        if kind == "mse-norm":
            target = normalize_median_mad(target, mask)
        scale, shift = align_lstsq(pred, target, mask)
        pred = masked(pred, mask)  # 0 * inf off the mask would poison the gradient of scale
        return masked(scale[:, None, None] * pred + shift[:, None, None] - target, mask)
    if kind in ("mae", "trim"):
        return normalize_median_mad(pred, mask) - normalize_median_mad(target, mask)
    raise MixdepthError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")


def keep_count(count: Tensor | int, trim: float) -> Tensor | int:
    """K = floor((1 - trim) * M): how many residuals of an image with M valid pixels are kept."""
    if isinstance(count, Tensor):
        return torch.floor((1.0 - trim) * count.to(torch.float64) + KEEP_COUNT_TOLERANCE).long()
    return math.floor((1.0 - trim) * count + KEEP_COUNT_TOLERANCE)


def trim_selection(
    abs_residual: Tensor, mask: Tensor, trim: float, count: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Which residuals the trimmed loss keeps: the K = floor((1 - trim) * M) smallest valid.

    abs_residual: (B, H, W); mask: bool (B, H, W); count: valid counts (B,). Returns
    (below, index, extra): `below` bool (B, H, W) marks valid residuals strictly smaller than
    the K-th smallest one, whose flat position is `index` (B,); `extra` (B,) = K minus the
    number of pixels in `below` (1 unless the K-th value is tied; 0 when K = 0). The sum of
    the K smallest residuals is then sum(below * r) + extra * r[index], exactly, ties included.
    The selection is one batched `torch.kthvalue` (see `select_valid_rank`), without autograd.
    """
    with torch.no_grad():
        keep = keep_count(count, trim)
        pixels = mask.shape[1] * mask.shape[2]
        common_rank = keep_count(pixels, trim) - 1
        if common_rank < 0:  # images this small keep nothing
            nothing = torch.zeros_like(count)
            return torch.zeros_like(mask), nothing, nothing
        # K(M) - 1 and M - K(M) both grow with M, so the common rank fits every image.
        index = select_valid_rank(abs_residual, mask, (keep - 1).clamp_min(0), common_rank)
        threshold = abs_residual.flatten(1).gather(1, index[:, None])
        below = mask & (abs_residual < threshold[:, :, None]) & (keep > 0)[:, None, None]
        extra = keep - valid_counts(below)
    return below, index, extra


def data_term_sums(
    residual: Tensor, mask: Tensor, kind: str, trim: float = 0.2, count: Tensor | None = None
) -> Tensor:
    """Per-image sums (B,) of the data term: r^2 for "mse"/"mse-norm", |r| for "mae", kept |r|
    for "trim"."""
    if kind in ("mse", "mse-norm"):
        return residual.square().flatten(1).sum(1)
    magnitude = residual.abs()
    if kind == "mae":
        return magnitude.flatten(1).sum(1)
    count = valid_counts(mask) if count is None else count
    below, index, extra = trim_selection(magnitude.detach(), mask, trim, count)
    at_threshold = magnitude.flatten(1).gather(1, index[:, None])[:, 0]
    return masked(magnitude, below).flatten(1).sum(1) + extra.to(magnitude.dtype) * at_threshold


def check_trim(trim: float) -> None:
    if not (isinstance(trim, int | float) and 0.0 <= trim < 1.0):
        raise MixdepthError(f"trim must be a fraction in [0, 1), got {trim!r}")


def ssi_loss(
    pred: Tensor,
    target: Tensor,
    mask: Tensor,
    kind: str = "mse",
    trim: float = 0.2,
    reduction: str = "batch",
) -> Tensor:
    """The scale-and-shift-invariant data term of the given kind (one of KINDS).

    Shapes and spaces as in the module docstring. Returns a scalar ((B,) for "none").
    """
    check_inputs(pred, target, mask, f"ssi_{kind}")
    check_reduction(reduction)
    check_trim(trim)
    count = valid_counts(mask)
    if kind in ("mse", "mse-norm") and not target.requires_grad:
        if kind == "mse-norm":
            target = normalize_median_mad(target, mask)
        sums = lstsq_loss_sums(pred, target, mask, 0)[0]
    else:
        residual = aligned_residual(pred, target, mask, kind)
        sums = data_term_sums(residual, mask, kind, trim, count)
    return reduce_sums(sums, 2 * count, reduction)


def ssi_mse(pred: Tensor, target: Tensor, mask: Tensor, reduction: str = "batch") -> Tensor:
    """Least-squares aligned loss: 1/(2M) sum (s * pred_i + t - target_i)^2 over valid pixels.

    pred, target: (B, H, W) disparity; mask: bool (B, H, W). (s, t) from `align_lstsq`,
    differentiated through. Degenerate images (constant prediction, one valid pixel) use
    s = 0, t = mean target; images without valid pixels contribute nothing.
    """
    return ssi_loss(pred, target, mask, "mse", reduction=reduction)


def ssi_mae(pred: Tensor, target: Tensor, mask: Tensor, reduction: str = "batch") -> Tensor:
    """Median/MAD aligned loss: 1/(2M) sum |pred_hat_i - target_hat_i| over valid pixels.

    pred, target: (B, H, W) disparity; mask: bool (B, H, W). Both maps are normalised on
    their own valid pixels (`normalize_median_mad`, differentiated through).
    """
    return ssi_loss(pred, target, mask, "mae", reduction=reduction)


def ssi_trim(
    pred: Tensor, target: Tensor, mask: Tensor, trim: float = 0.2, reduction: str = "batch"
) -> Tensor:
    """Trimmed median/MAD loss: 1/(2M) sum of the smallest |pred_hat_i - target_hat_i|.

    pred, target: (B, H, W) disparity; mask: bool (B, H, W). Per image, the
    K = floor((1 - trim) * M) smallest absolute residuals are summed (the largest
    M - K are dropped) and the sum is divided by 2M, as in the paper. Normalisation as in
    `ssi_mae` (differentiated through); the selection of kept pixels is not differentiated
    (it is piecewise constant).
    """
    return ssi_loss(pred, target, mask, "trim", trim=trim, reduction=reduction)


class ScaleShiftInvariantLoss(nn.Module):
    """The complete per-dataset MiDaS loss: L_ssi + alpha * L_reg.

    kind: "mse" (least-squares alignment), "mse-norm" (the same onto the target normalised
    by median/MAD), "mae" or "trim" (median/MAD normalisation).
    alpha: weight of the gradient-matching term (0 disables it).
    scales: number of scales K of the gradient-matching term.
    reduction: "batch", "image" or "none" (see the module docstring); both terms use it.
    trim: fraction of the largest residuals dropped per image by kind "trim".

    forward(pred, target, mask) with pred, target (B, H, W) disparity and mask bool (B, H, W)
    returns (total, {"data": data, "grad": grad}); all three are tensors in the autograd
    graph (call .item() to log). The gradient term is computed on the same aligned residual
    as the data term (R = s * pred + t - target, or pred_hat - target_hat).
    """

    def __init__(
        self,
        kind: str = "mse",
        alpha: float = 0.5,
        scales: int = 4,
        reduction: str = "batch",
        trim: float = 0.2,
    ):
        super().__init__()
        if kind not in KINDS:
            raise MixdepthError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        check_reduction(reduction)
        check_trim(trim)
        if alpha < 0:
            raise MixdepthError(f"alpha must be >= 0, got {alpha!r}")
        if alpha > 0 and (not isinstance(scales, int) or scales < 1):
            raise MixdepthError(f"scales must be an integer >= 1, got {scales!r}")
        self.kind = kind
        self.alpha = float(alpha)
        self.scales = scales
        self.reduction = reduction
        self.trim = float(trim)

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, dict]:
        check_inputs(pred, target, mask, "ScaleShiftInvariantLoss")
        count = valid_counts(mask)
        if self.kind in ("mse", "mse-norm") and not target.requires_grad:
            return self._least_squares(pred, target, mask, count)
        residual = aligned_residual(pred, target, mask, self.kind)
        sums = data_term_sums(residual, mask, self.kind, self.trim, count)
        data = reduce_sums(sums, 2 * count, self.reduction)
        if self.alpha > 0:
            grad = residual_gradient_matching(
                residual, mask, self.scales, self.reduction, count
            )
        else:
            grad = torch.zeros_like(data) + zero_loss(residual)
        return data + self.alpha * grad, {"data": data, "grad": grad}

    def _least_squares(self, pred: Tensor, target: Tensor, mask: Tensor, count: Tensor
                       ) -> tuple[Tensor, dict]:
        """kind "mse"/"mse-norm" with a target that needs no gradient: the alignment, both
        sums and their backward pass in one node (`lstsq_loss_sums`)."""
        if self.kind == "mse-norm":
            target = normalize_median_mad(target, mask)
        scales = self.scales if self.alpha > 0 else 0
        sums, grad_sums = lstsq_loss_sums(pred, target, mask, scales)
        data = reduce_sums(sums, 2 * count, self.reduction)
        if scales:
            grad = scale_sums(grad_sums, mask, self.reduction, count)
        else:
            grad = torch.zeros_like(data) + zero_loss(sums)
        return data + self.alpha * grad, {"data": data, "grad": grad}

    def extra_repr(self) -> str:
        return (
            f"kind={self.kind!r}, alpha={self.alpha}, scales={self.scales}, "
            f"reduction={self.reduction!r}, trim={self.trim}"
        )

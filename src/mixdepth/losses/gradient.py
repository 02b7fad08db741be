"""Multi-scale gradient matching (the regulariser of the MiDaS loss)."""

from __future__ import annotations

from torch import Tensor

from mixdepth.errors import MixdepthError
from mixdepth.losses.alignment import check_inputs, masked, valid_counts
from mixdepth.losses.reduction import check_reduction, reduce_sums


def gradient_matching(
    pred_aligned: Tensor,
    target: Tensor,
    mask: Tensor,
    scales: int = 4,
    reduction: str = "batch",
) -> Tensor:
    """Multi-scale gradient matching loss on R = pred_aligned - target.

    pred_aligned: (B, H, W) prediction already aligned to the target (s * pred + t for the
        least-squares loss, the median/MAD-normalised prediction for the robust losses).
    target: (B, H, W) target in the same space (normalised for the robust losses).
    mask: bool (B, H, W) valid target pixels.
    scales: K; scale k (k = 0..K-1) takes every 2^k-th pixel of R and of the mask in both
        directions (the reference's subsampling).

    At each scale, sum_i |dx R_i| + |dy R_i| over the forward differences whose two pixels are
    both valid, divided by the number of valid pixels at that scale (per image for "image",
    summed over the batch for "batch"); the scales are then summed. This per-scale
    normalisation follows the reference implementation. Gradients flow into pred_aligned
    and target (and, through them, into any alignment). Returns a scalar, or (B,) for
    reduction="none". Images without valid pixels contribute nothing.
    """
    check_inputs(pred_aligned, target, mask, "gradient_matching")
    check_reduction(reduction)
    if not isinstance(scales, int) or scales < 1:
        raise MixdepthError(f"gradient_matching: scales must be an integer >= 1, got {scales!r}")
    return residual_gradient_matching(masked(pred_aligned - target, mask), mask, scales, reduction)


def residual_gradient_matching(
    residual: Tensor,
    mask: Tensor,
    scales: int = 4,
    reduction: str = "batch",
    count: Tensor | None = None,
) -> Tensor:
    """`gradient_matching` of a residual map R (B, H, W) that is already 0 outside the mask.

    count: optional valid counts (B,) of the full-resolution mask if already known.
    """
    total = None
    for k in range(scales):
        step = 2**k
        r = residual[:, ::step, ::step]
        m = mask[:, ::step, ::step]
        valid_x = m[:, :, 1:] & m[:, :, :-1]
        valid_y = m[:, 1:, :] & m[:, :-1, :]
        grad_x = masked(r[:, :, 1:] - r[:, :, :-1], valid_x).abs()
        grad_y = masked(r[:, 1:, :] - r[:, :-1, :], valid_y).abs()
        sums = grad_x.flatten(1).sum(1) + grad_y.flatten(1).sum(1)
        scale_count = count if (k == 0 and count is not None) else valid_counts(m)
        term = reduce_sums(sums, scale_count, reduction)
        total = term if total is None else total + term
    return total

"""Multi-scale gradient matching (the regulariser of the MiDaS loss)."""

from __future__ import annotations

import torch
from torch import Tensor

from mixdepth.errors import MixdepthError
from mixdepth.losses.alignment import check_inputs, mask_weights, masked, valid_counts
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
    return scale_sums(GradientSums.apply(residual, mask, scales), mask, reduction, count)


def scale_sums(sums: Tensor, mask: Tensor, reduction: str, count: Tensor | None = None) -> Tensor:
    """Reduce per-scale sums (K, B) of gradient matching, each scale k by its own valid
    counts (those of mask[:, ::2^k, ::2^k]), and add the scales up. count: optional valid
    counts (B,) of the full-resolution mask if already known."""
    total = None
    for k in range(sums.shape[0]):
        m = mask[:, :: 2**k, :: 2**k]
        scale_count = count if (k == 0 and count is not None) else valid_counts(m)
        term = reduce_sums(sums[k], scale_count, reduction)
        total = term if total is None else total + term
    return total


def _view(buffer: Tensor, shape: torch.Size) -> Tensor:
    """A contiguous tensor of `shape` on the first elements of `buffer` (a work buffer)."""
    return buffer.view(-1)[: shape.numel()].view(shape)


def work_buffers(like: Tensor) -> tuple[Tensor, Tensor]:
    """Two contiguous (B, H, W) work buffers shaped like `like`, for the functions below."""
    return tuple(torch.empty_like(like, memory_format=torch.contiguous_format) for _ in "ab")


def valid_and_differences(r: Tensor, w: Tensor, dim: int, scratch: tuple[Tensor, Tensor]
                          ) -> tuple[Tensor, Tensor]:
    """(valid pairs, forward differences r[i + 1] - r[i]) of a map r and its 0/1 mask w along
    `dim` (both one element shorter), written into the two work buffers."""
    length = r.shape[dim]
    shape = r.narrow(dim, 1, length - 1).shape
    valid = torch.mul(w.narrow(dim, 1, length - 1), w.narrow(dim, 0, length - 1),
                      out=_view(scratch[0], shape))
    difference = torch.sub(r.narrow(dim, 1, length - 1), r.narrow(dim, 0, length - 1),
                           out=_view(scratch[1], shape))
    return valid, difference


def gradient_sums(residual: Tensor, weights: Tensor, scales: int,
                  scratch: tuple[Tensor, Tensor]) -> Tensor:
    """(K, B) sums of |dx R| + |dy R| over valid differences, scale k every 2^k-th pixel.
    weights: the mask as 0/1 floats; validity is applied by multiplying (branch-free; R is
    finite and 0 outside the mask)."""
    sums = residual.new_zeros(scales, residual.shape[0])
    for k in range(scales):
        r = residual[:, :: 2**k, :: 2**k]
        w = weights[:, :: 2**k, :: 2**k]
        for dim in (1, 2):
            if r.shape[dim] >= 2:
                valid, difference = valid_and_differences(r, w, dim, scratch)
                sums[k] += difference.abs_().mul_(valid).flatten(1).sum(1)
    return sums


def add_gradient_signs(grad: Tensor, residual: Tensor, weights: Tensor, grad_sums: Tensor,
                       scratch: tuple[Tensor, Tensor]) -> None:
    """grad += d(sum_k grad_sums[k] . gradient sums of scale k) / dR, in place; the signs of
    the differences are recomputed from R (d|a - b| = sign(a - b))."""
    for k in range(grad_sums.shape[0]):
        r = residual[:, :: 2**k, :: 2**k]
        w = weights[:, :: 2**k, :: 2**k]
        g = grad[:, :: 2**k, :: 2**k]  # a strided view: writes land in `grad`
        for dim in (1, 2):
            length = r.shape[dim]
            if length < 2:
                continue
            valid, difference = valid_and_differences(r, w, dim, scratch)
            step = difference.sign_().mul_(valid).mul_(grad_sums[k][:, None, None])
            g.narrow(dim, 1, length - 1).add_(step)
            g.narrow(dim, 0, length - 1).sub_(step)


class GradientSums(torch.autograd.Function):
    """Per-scale, per-image sums (K, B) of |dx R| + |dy R| over valid differences.

    Scale k takes every 2^k-th pixel of R and of the mask. Validity is applied by multiplying
    with the 0/1 mask (branch-free; R is finite and 0 outside the mask). The backward pass
    recomputes the signs of the differences from R instead of storing them
    (d|a - b| = sign(a - b)).
    """

    @staticmethod
    def forward(ctx, residual: Tensor, mask: Tensor, scales: int):
        sums = gradient_sums(residual, mask_weights(mask, residual.dtype), scales,
                             work_buffers(residual))
        ctx.save_for_backward(residual, mask)
        ctx.scales = scales
        return sums

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_sums: Tensor):
        residual, mask = ctx.saved_tensors
        grad = torch.zeros_like(residual)
        add_gradient_signs(grad, residual, mask_weights(mask, residual.dtype), grad_sums,
                           work_buffers(residual))
        return grad, None, None

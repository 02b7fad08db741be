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


def masked_differences(residual: Tensor, weights: Tensor, scales: int, scratch: Tensor
                       ) -> list[tuple[int, int, Tensor]]:
    """The forward differences of R over valid pairs, per scale and direction: a list of
    (k, dim, D) with D = (r[i + 1] - r[i]) * w[i + 1] * w[i] along `dim` (1 or 2) of
    r = R[:, ::2^k, ::2^k] (one element shorter along `dim`), w the mask as 0/1 floats.
    `scratch` is a (B, H, W) work buffer for the valid-pair weights."""
    out = []
    for k in range(scales):
        r = residual[:, :: 2**k, :: 2**k]
        w = weights[:, :: 2**k, :: 2**k]
        for dim in (1, 2):
            length = r.shape[dim]
            if length < 2:
                continue
            shape = r.narrow(dim, 1, length - 1).shape
            valid = torch.mul(w.narrow(dim, 1, length - 1), w.narrow(dim, 0, length - 1),
                              out=_view(scratch, shape))
            difference = torch.sub(r.narrow(dim, 1, length - 1), r.narrow(dim, 0, length - 1))
            out.append((k, dim, difference.mul_(valid)))
    return out


def gradient_sums(differences: list[tuple[int, int, Tensor]], residual: Tensor, scales: int
                  ) -> Tensor:
    """(K, B) sums of |dx R| + |dy R| over valid pairs from `masked_differences` of
    `residual` (an L1 norm per image: one pass, no temporary)."""
    sums = residual.new_zeros(scales, residual.shape[0])
    for k, _, difference in differences:
        sums[k] += torch.linalg.vector_norm(difference.flatten(1), ord=1, dim=1)
    return sums


def add_gradient_signs(grad: Tensor, differences: list[tuple[int, int, Tensor]],
                       grad_sums: Tensor, scratch: Tensor) -> None:
    """grad (B, H, W) += d(sum_k grad_sums[k] . gradient sums of scale k) / dR, in place, from
    the saved `masked_differences` (d|a - b| = sign(a - b); 0 on invalid pairs, whose D is 0).
    `scratch` is a (B, H, W) work buffer."""
    for k, dim, difference in differences:
        g = grad[:, :: 2**k, :: 2**k]  # a strided view: writes land in `grad`
        length = g.shape[dim]
        step = torch.sign(difference, out=_view(scratch, difference.shape))
        step.mul_(grad_sums[k][:, None, None])
        g.narrow(dim, 1, length - 1).add_(step)
        g.narrow(dim, 0, length - 1).sub_(step)


class GradientSums(torch.autograd.Function):
    """Per-scale, per-image sums (K, B) of |dx R| + |dy R| over valid differences.

    Scale k takes every 2^k-th pixel of R and of the mask. Validity is applied by multiplying
    with the 0/1 mask (branch-free; R is finite and 0 outside the mask). The masked
    differences are kept for the backward pass, which needs only their signs.
    """

    @staticmethod
    def forward(ctx, residual: Tensor, mask: Tensor, scales: int):
        scratch = torch.empty_like(residual, memory_format=torch.contiguous_format)
        differences = masked_differences(residual, mask_weights(mask, residual.dtype), scales,
                                         scratch)
        ctx.save_for_backward(*(d for _, _, d in differences))
        ctx.layout = [(k, dim) for k, dim, _ in differences]
        ctx.like = (residual.shape, residual.dtype)
        return gradient_sums(differences, residual, scales)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_sums: Tensor):
        differences = [(k, dim, d) for (k, dim), d in zip(ctx.layout, ctx.saved_tensors,
                                                           strict=True)]
        shape, dtype = ctx.like
        grad = torch.zeros(shape, dtype=dtype, device=grad_sums.device)
        add_gradient_signs(grad, differences, grad_sums, torch.empty_like(grad))
        return grad, None, None

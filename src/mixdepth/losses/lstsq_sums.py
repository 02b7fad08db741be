"""The least-squares loss in one autograd node: alignment, residual, data and gradient sums.

`lstsq_loss_sums(pred, target, mask, scales)` returns the per-image sums of the ssimse data
term, sum_i R_i^2 (B,), and of the gradient-matching term, (K, B) as `GradientSums`, where
R = s * pred + t - target on the valid pixels (0 elsewhere) and (s, t) is the least-squares
alignment of `align_lstsq` (same moments around the per-image means, accumulated in float64
across rows). Gradients flow to `pred` only (the target is data), through R and through
(s, t); the backward pass is closed-form:

    G = dL/dR = 2 g_data R + (gradient-matching signs),   p~ = pred - mean(pred) (valid),
    dL/dpred_i = s G_i + (sum_j G_j p~_j / var) (-R_i - s p~_i) - s (sum_j G_j) / M,

which is `LstsqAlign`'s backward with t~ - 2 s p~ = -R - s p~. Masking is done by multiplying
with the 0/1 mask (see `masked`), which keeps the whole pass free of `torch.where`.
Shapes: pred, target (B, H, W) disparity, mask bool (B, H, W).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mixdepth.losses.alignment import (
    RELATIVE_VARIANCE_FLOOR,
    image_sum,
    mask_weights,
    masked_with_sums,
    per_image,
)
from mixdepth.losses.gradient import add_gradient_signs, gradient_sums, masked_differences


def lstsq_loss_sums(pred: Tensor, target: Tensor, mask: Tensor, scales: int
                    ) -> tuple[Tensor, Tensor]:
    """(data sums (B,), gradient-matching sums (K, B)) of the least-squares aligned residual;
    `scales` = 0 gives an empty (0, B) second result. Differentiable in `pred` only."""
    return LstsqLossSums.apply(pred, target.detach(), mask, scales)


def _moments(pred: Tensor, target: Tensor, mask: Tensor, weights: Tensor, scratch: Tensor):
    """Per-image moments (float64, (B,)) and the maps centred around rounded means.

    Returns (count, mean_p, var_p, cov, centred_p, centred_t, offset_p, offset_t): the
    centred maps (B, H, W) are pred - m_p and target - m_t on the valid pixels (0
    elsewhere) for means m_p, m_t rounded to the input dtype; offset_p = mean of centred_p
    (and offset_t) is what that rounding left, so mean_p = m_p + offset_p exactly, and
    var_p, cov are the centred second moments with the offsets removed. `scratch` is a
    (B, H, W) work buffer.
    """
    count = image_sum(weights)
    safe_count = count.clamp_min(1.0)
    centred_p, sum_p = masked_with_sums(pred, mask, weights)
    centred_t, sum_t = masked_with_sums(target, mask, weights)
    mean_p = sum_p / safe_count
    mean_t = sum_t / safe_count
    centred_p.addcmul_(weights, per_image(-mean_p, pred))
    centred_t.addcmul_(weights, per_image(-mean_t, target))
    offset_p = image_sum(centred_p) / safe_count
    offset_t = image_sum(centred_t) / safe_count
    var_p = image_sum(torch.mul(centred_p, centred_p, out=scratch)) - offset_p**2 * count
    cov = image_sum(torch.mul(centred_p, centred_t, out=scratch)) - offset_p * offset_t * count
    return (count, mean_p + offset_p, var_p, cov, centred_p, centred_t, offset_p, offset_t)


class LstsqLossSums(torch.autograd.Function):
    """See the module docstring: (data sums (B,), gradient sums (K, B)) with a closed-form
    backward pass to `pred`. Temporaries go to reused work buffers."""

    @staticmethod
    def forward(ctx, pred: Tensor, target: Tensor, mask: Tensor, scales: int):
        weights = mask_weights(mask, pred.dtype)
        scratch = torch.empty_like(pred, memory_format=torch.contiguous_format)
        count, mean_p, var_p, cov, centred_p, centred_t, offset_p, offset_t = _moments(
            pred, target, mask, weights, scratch)
        singular = (count < 2) | (var_p <= RELATIVE_VARIANCE_FLOOR * (var_p + mean_p**2 * count))
        safe_var = torch.where(singular, 1.0, var_p)
        scale = torch.where(singular, 0.0, cov / safe_var)
        # With shift = mean_t - s mean_p, R = s (pred - mean_p) - (target - mean_t) on the
        # valid pixels: the centred maps, corrected by their offsets. centred_p is kept for
        # the backward pass; R takes the place of centred_t.
        residual = centred_t.neg_().addcmul_(centred_p, per_image(scale, pred))
        residual.addcmul_(weights, per_image(offset_t - scale * offset_p, pred))
        data = image_sum(torch.mul(residual, residual, out=scratch)).to(pred.dtype)
        differences = masked_differences(residual, weights, scales, scratch)
        grads = gradient_sums(differences, residual, scales)
        ctx.save_for_backward(centred_p, weights, residual, count, offset_p, safe_var, scale,
                              singular, *(d for _, _, d in differences))
        ctx.layout = [(k, dim) for k, dim, _ in differences]
        return data, grads

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_data: Tensor, grad_grads: Tensor):
        centred_p, weights, residual, count, offset_p, safe_var, scale, singular, *saved = \
            ctx.saved_tensors
        grad = residual * per_image(2.0 * grad_data.to(torch.float64), residual)
        scratch = torch.empty_like(grad)
        if grad_grads.numel():
            differences = [(k, dim, d) for (k, dim), d in zip(ctx.layout, saved, strict=True)]
            add_gradient_signs(grad, differences, grad_grads, scratch)
        # p~ = centred_p - offset_p on the valid pixels, where G (0 off the mask) lives
        total_g = image_sum(grad)
        total_gp = image_sum(torch.mul(grad, centred_p, out=scratch)) - offset_p * total_g
        inverse_count = torch.where(count > 0, 1.0 / count.clamp_min(1.0), 0.0)
        through_scale = torch.where(singular, 0.0, total_gp / safe_var)
        # s G + ts (-R - s p~) - s (sum G) / M, on the valid pixels
        out = grad.mul_(per_image(scale, grad))
        out.addcmul_(residual, per_image(-through_scale, grad))
        out.addcmul_(centred_p, per_image(-through_scale * scale, grad))
        correction = through_scale * scale * offset_p - scale * total_g * inverse_count
        out.addcmul_(weights, per_image(correction, grad))
        return out, None, None, None

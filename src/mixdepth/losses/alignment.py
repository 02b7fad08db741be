"""Per-image alignment of a prediction to a target: least squares and median/MAD.

All functions take batched tensors in disparity space: prediction and target (B, H, W), a
boolean mask (B, H, W) of valid target pixels. Values outside the mask are never read (they
may be NaN or inf). Everything is vectorised over the batch; there are no per-image loops.

Differentiation: the alignment is differentiated through. The least-squares scale and
shift are smooth functions of the prediction and the target, and gradients flow through
them; the median is a selected pixel (the gradient flows to that pixel) and the mean
absolute deviation is differentiated as usual.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mixdepth.errors import MixdepthError

# A prediction whose variance over the valid pixels is below this fraction of its mean square
# is treated as constant (the 2x2 normal equations are singular): scale 0, shift = mean target.
RELATIVE_VARIANCE_FLOOR = 1e-12
# Smallest mean absolute deviation used as a divisor in `normalize_median_mad`.
MAD_FLOOR = 1e-8


def check_inputs(pred: Tensor, target: Tensor, mask: Tensor, name: str = "loss") -> None:
    """Raise MixdepthError unless pred/target are floating (B, H, W) and mask is bool (B, H, W)."""
    for label, x in (("pred", pred), ("target", target), ("mask", mask)):
        if not isinstance(x, Tensor):
            raise MixdepthError(f"{name}: {label} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 3:
            raise MixdepthError(
                f"{name}: {label} must have shape (B, H, W), got {tuple(x.shape)}"
            )
    if pred.shape != target.shape or pred.shape != mask.shape:
        raise MixdepthError(
            f"{name}: pred {tuple(pred.shape)}, target {tuple(target.shape)} and mask "
            f"{tuple(mask.shape)} must have the same shape"
        )
    if not pred.is_floating_point() or not target.is_floating_point():
        raise MixdepthError(
            f"{name}: pred and target must be floating point, got {pred.dtype} and {target.dtype}"
        )
    if mask.dtype != torch.bool:
        raise MixdepthError(f"{name}: mask must be a bool tensor, got {mask.dtype}")


def masked(x: Tensor, mask: Tensor) -> Tensor:
    """x where mask is True, 0 elsewhere (also removes NaN/inf outside the mask)."""
    return torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))


def valid_counts(mask: Tensor) -> Tensor:
    """Number of valid pixels per image: int64 (B,)."""
    return mask.flatten(1).sum(dim=1)


def align_lstsq(pred: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Least-squares scale and shift that map `pred` onto `target` on the valid pixels.

    pred, target: (B, H, W) disparity; mask: bool (B, H, W). Returns (scale, shift), each
    (B,) in the dtype of `pred`, minimising sum_i (scale * pred_i + shift - target_i)^2 over
    the valid pixels of each image. The 2x2 normal equations are solved in closed form; the
    moments are taken around a per-image reference value (shifted data) and accumulated in
    float64 across rows (`image_sum`), so large offsets do not cancel catastrophically.

    Degenerate images give finite values: with no valid pixel, scale 0 and shift 0; with one
    valid pixel or a constant prediction (variance below 1e-12 of its mean square), scale 0
    and shift = mean of the target. Differentiated through (gradients reach pred and target).
    """
    check_inputs(pred, target, mask, "align_lstsq")
    count = valid_counts(mask).to(torch.float64)
    safe_count = count.clamp_min(1.0)
    # Reference values (the masked means, no gradient needed: the shifted-data formulas
    # below are exact for any reference) keep the second moments free of cancellation.
    with torch.no_grad():
        p_ref = (image_sum(masked(pred, mask)) / safe_count).to(pred.dtype)
        t_ref = (image_sum(masked(target, mask)) / safe_count).to(target.dtype)
    dp = masked(pred - p_ref[:, None, None], mask)
    dt = masked(target - t_ref[:, None, None], mask)
    sum_p = image_sum(dp)
    sum_t = image_sum(dt)
    sum_pp = image_sum(dp * dp)
    sum_pt = image_sum(dp * dt)
    var_p = sum_pp - sum_p * sum_p / safe_count  # sum of squared deviations from the mean
    cov = sum_pt - sum_p * sum_t / safe_count
    mean_square = sum_pp + (p_ref.to(torch.float64) ** 2) * count
    singular = (count < 2) | (var_p <= RELATIVE_VARIANCE_FLOOR * mean_square)
    scale = torch.where(singular, torch.zeros_like(cov), cov / torch.where(singular, 1.0, var_p))
    mean_p = p_ref.to(torch.float64) + sum_p / safe_count
    mean_t = t_ref.to(torch.float64) + sum_t / safe_count
    shift = torch.where(count > 0, mean_t - scale * mean_p, torch.zeros_like(mean_t))
    return scale.to(pred.dtype), shift.to(pred.dtype)


def image_sum(x: Tensor) -> Tensor:
    """Per-image float64 sum of x (B, H, W) -> (B,): each row is summed in the dtype of x
    (at most W values), the rows are accumulated in float64 (no float64 copy of the map)."""
    return x.sum(dim=-1).to(torch.float64).sum(dim=-1)


def masked_median(x: Tensor, mask: Tensor, count: Tensor | None = None) -> Tensor:
    """Lower median of the valid pixels of each image: (B,) in the dtype of x.

    x: (B, H, W); mask: bool (B, H, W); count: optional valid counts (B,) if already known.
    With M valid pixels the median is the value of rank (M - 1) // 2 in ascending order (the
    lower of the two middle values when M is even, as `torch.median`). Images without valid
    pixels get 0. The sort that finds the rank runs without autograd; the gradient flows to
    the selected pixel only.
    """
    count = valid_counts(mask) if count is None else count
    flat = x.flatten(1)
    with torch.no_grad():
        inf = torch.full((), float("inf"), dtype=x.dtype, device=x.device)
        order = torch.sort(torch.where(mask, x, inf).flatten(1), dim=1).indices
        rank = ((count - 1).clamp_min(0) // 2)[:, None]
        index = order.gather(1, rank)
        del order
    value = flat.gather(1, index)[:, 0]
    return torch.where(count > 0, value, torch.zeros_like(value))


def normalize_median_mad(x: Tensor, mask: Tensor) -> Tensor:
    """Robustly normalise each image: (x - median) / MAD over its valid pixels.

    x: (B, H, W) disparity; mask: bool (B, H, W). Returns (B, H, W) with 0 at invalid pixels.
    The median is the lower median (see `masked_median`); MAD = (1/M) sum |x_i - median|.
    A constant image (MAD 0) maps to 0; the MAD is floored at 1e-8 as a divisor, and since
    |x_i - median| <= M * MAD the result stays finite. Differentiated through median and MAD.
    """
    if not isinstance(x, Tensor) or x.ndim != 3 or x.shape != mask.shape:
        raise MixdepthError(
            "normalize_median_mad: x and mask must be tensors of the same shape (B, H, W), got "
            f"{tuple(getattr(x, 'shape', ()))} and {tuple(getattr(mask, 'shape', ()))}"
        )
    count = valid_counts(mask)
    x = masked(x, mask)  # NaN/inf off the mask would otherwise leak into the backward pass
    centred = masked(x - masked_median(x, mask, count)[:, None, None], mask)
    mad = (image_sum(centred.abs()) / count.clamp_min(1)).to(x.dtype)
    return centred / mad.clamp_min(MAD_FLOOR)[:, None, None]

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
    sums are accumulated in float64 around a per-image reference value (shifted data), so
    large offsets do not cancel catastrophically.

    Degenerate images give finite values: with no valid pixel, scale 0 and shift 0; with one
    valid pixel or a constant prediction (variance below 1e-12 of its mean square), scale 0
    and shift = mean of the target. Differentiated through (gradients reach pred and target).
    """
    check_inputs(pred, target, mask, "align_lstsq")
    count = valid_counts(mask).to(torch.float64)
    safe_count = count.clamp_min(1.0)
    p = masked(pred, mask)
    t = masked(target, mask)
    # Reference values (the masked means in the input dtype); subtracting them first keeps the
    # float64 second moments accurate even when the maps carry a large common offset.
    p_ref = (p.flatten(1).sum(1, dtype=torch.float64) / safe_count).to(pred.dtype).detach()
    t_ref = (t.flatten(1).sum(1, dtype=torch.float64) / safe_count).to(target.dtype).detach()
    dp = masked(pred - p_ref[:, None, None], mask).flatten(1)
    dt = masked(target - t_ref[:, None, None], mask).flatten(1)
    sum_p = dp.sum(1, dtype=torch.float64)
    sum_t = dt.sum(1, dtype=torch.float64)
    sum_pp = (dp * dp).sum(1, dtype=torch.float64)
    sum_pt = (dp * dt).sum(1, dtype=torch.float64)
    var_p = sum_pp - sum_p * sum_p / safe_count  # sum of squared deviations from the mean
    cov = sum_pt - sum_p * sum_t / safe_count
    mean_square = sum_pp + (p_ref.to(torch.float64) ** 2) * count
    singular = (count < 2) | (var_p <= RELATIVE_VARIANCE_FLOOR * mean_square)
    scale = torch.where(singular, torch.zeros_like(cov), cov / torch.where(singular, 1.0, var_p))
    mean_p = p_ref.to(torch.float64) + sum_p / safe_count
    mean_t = t_ref.to(torch.float64) + sum_t / safe_count
    shift = torch.where(count > 0, mean_t - scale * mean_p, torch.zeros_like(mean_t))
    return scale.to(pred.dtype), shift.to(pred.dtype)


def masked_median(x: Tensor, mask: Tensor) -> Tensor:
    """Lower median of the valid pixels of each image: (B,) in the dtype of x.

    x: (B, H, W); mask: bool (B, H, W). With M valid pixels the median is the value of rank
    (M - 1) // 2 in ascending order (the lower of the two middle values when M is even, as
    `torch.median`). Images without valid pixels get 0. The sort that finds the rank runs
    without autograd; the gradient flows to the selected pixel only.
    """
    flat = x.flatten(1)
    flat_mask = mask.flatten(1)
    count = flat_mask.sum(1)
    with torch.no_grad():
        inf = torch.full((), float("inf"), dtype=x.dtype, device=x.device)
        order = torch.where(flat_mask, flat, inf)
        order = torch.sort(order, dim=1).indices
        rank = ((count - 1).clamp_min(0) // 2)[:, None]
        index = order.gather(1, rank)
        del order
    value = flat.gather(1, index)[:, 0]
    return torch.where(count > 0, value, torch.zeros_like(value))


def median_mad(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image median and mean absolute deviation from it over valid pixels: two (B,) tensors.

    Images without valid pixels get median 0 and MAD 0. Differentiated through.
    """
    median = masked_median(x, mask)
    count = valid_counts(mask).clamp_min(1).to(x.dtype)
    deviation = masked((x - median[:, None, None]).abs(), mask)
    mad = deviation.flatten(1).sum(1) / count
    return median, mad


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
    median, mad = median_mad(x, mask)
    centred = x - median[:, None, None]
    return masked(centred / mad.clamp_min(MAD_FLOOR)[:, None, None], mask)

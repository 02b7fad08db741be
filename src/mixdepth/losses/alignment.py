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


def masked(x: Tensor, mask: Tensor, weights: Tensor | None = None) -> Tensor:
    """x where mask is True, 0 elsewhere (also removes NaN/inf outside the mask).

    x: (B, H, W) (or anything mask broadcasts with); weights: optional `mask.to(x.dtype)`.
    Computed as x * mask, which is branch-free and many times faster than `torch.where` on a
    CPU; only when that product is not finite (NaN/inf outside the mask, or inside it) is it
    recomputed with `torch.where`, so values outside the mask never leak in.
    """
    out = x * (mask_weights(mask, x.dtype) if weights is None else weights)
    with torch.no_grad():
        finite = bool(out.detach().sum().isfinite())
    if finite:
        return out
    return torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))


def masked_with_sums(x: Tensor, mask: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """(`masked(x, mask, weights)`, its `image_sum`) for x (B, H, W): the check that the
    product is finite is made on the per-image sums (any NaN or inf reaches them), which
    saves `masked`'s pass over the map."""
    out = x * weights
    sums = image_sum(out)
    if bool(torch.isfinite(sums).all()):
        return out, sums
    out = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
    return out, image_sum(out)


def mask_weights(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """The bool mask as 0/1 values of `dtype` (same shape), for `masked` and products.

    Converted through its uint8 view: the same bytes, and a much faster conversion than
    from bool on a CPU.
    """
    if not mask.is_floating_point() and mask.dtype == torch.bool:
        return mask.view(torch.uint8).to(dtype)
    return mask.to(dtype)


def valid_counts(mask: Tensor) -> Tensor:
    """Number of valid pixels per image: int64 (B,) (summed over the uint8 view of the bool
    mask, in int32 when a row cannot overflow it: faster than summing bools)."""
    flat = mask.flatten(1)
    if flat.dtype != torch.bool:
        return flat.sum(dim=1)
    wide = torch.int64 if flat.shape[1] >= 2**31 else torch.int32
    return flat.view(torch.uint8).sum(dim=1, dtype=wide).long()


def align_lstsq(pred: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Least-squares scale and shift that map `pred` onto `target` on the valid pixels.

    pred, target: (B, H, W) disparity; mask: bool (B, H, W). Returns (scale, shift), each
    (B,) in the dtype of `pred`, minimising sum_i (scale * pred_i + shift - target_i)^2 over
    the valid pixels of each image. The 2x2 normal equations are solved in closed form; the
    moments are taken around the per-image means (shifted data) and accumulated in float64
    across rows (`image_sum`), so large offsets do not cancel catastrophically.

    Degenerate images give finite values: with no valid pixel, scale 0 and shift 0; with one
    valid pixel or a constant prediction (variance below 1e-12 of its mean square), scale 0
    and shift = mean of the target. Differentiated through: gradients reach pred and target
    (a closed-form backward pass that keeps no per-pixel tensors; first order only).
    """
    check_inputs(pred, target, mask, "align_lstsq")
    return LstsqAlign.apply(pred, target, mask)


def image_sum(x: Tensor) -> Tensor:
    """Per-image float64 sum of x (B, H, W) -> (B,): each row is summed in the dtype of x
    (at most W values; float16/bfloat16 in float32), the rows are accumulated in float64
    (no float64 copy of the map)."""
    row_dtype = torch.float32 if x.element_size() < 4 else None
    return x.sum(dim=-1, dtype=row_dtype).to(torch.float64).sum(dim=-1)


def per_image(x: Tensor, like: Tensor) -> Tensor:
    """A (B,) statistic as a (B, 1, 1) tensor in the dtype of `like`, for broadcasting."""
    return x.to(like.dtype)[:, None, None]


class LstsqAlign(torch.autograd.Function):
    """(scale, shift) of `align_lstsq` with an analytic backward pass.

    With p~ = pred - mean(pred), t~ = target - mean(target) over the valid pixels,
    var = sum p~^2 and s = sum p~ t~ / var:
    ds/dpred_i = (t~_i - 2 s p~_i) / var, ds/dtarget_i = p~_i / var,
    and shift = mean(target) - s mean(pred) gives the shift derivatives. Singular images have
    s = 0 (constant), so only d shift / d target_i = 1/M remains.
    """

    @staticmethod
    def forward(ctx, pred: Tensor, target: Tensor, mask: Tensor):
        count = valid_counts(mask).to(torch.float64)
        safe_count = count.clamp_min(1.0)
        mean_p = image_sum(masked(pred, mask)) / safe_count
        mean_t = image_sum(masked(target, mask)) / safe_count
        # Second pass around the means (in the input dtype); sum_p and sum_t correct for the
        # rounding of the means, so the formulas stay exact.
        dp = masked(pred - per_image(mean_p, pred), mask)
        dt = masked(target - per_image(mean_t, target), mask)
        sum_p, sum_t = image_sum(dp), image_sum(dt)
        var_p = image_sum(dp * dp) - sum_p * sum_p / safe_count
        cov = image_sum(dp.mul_(dt)) - sum_p * sum_t / safe_count
        del dp, dt
        mean_p = mean_p + sum_p / safe_count
        mean_t = mean_t + sum_t / safe_count
        singular = (count < 2) | (var_p <= RELATIVE_VARIANCE_FLOOR * (var_p + mean_p**2 * count))
        safe_var = torch.where(singular, 1.0, var_p)
        scale = torch.where(singular, 0.0, cov / safe_var)
        shift = torch.where(count > 0, mean_t - scale * mean_p, 0.0)
        ctx.save_for_backward(pred, target, mask, count, mean_p, mean_t, safe_var, scale, singular)
        return scale.to(pred.dtype), shift.to(pred.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_scale: Tensor, grad_shift: Tensor):
        pred, target, mask, count, mean_p, mean_t, safe_var, scale, singular = ctx.saved_tensors
        grad_scale = grad_scale.to(torch.float64)
        grad_shift = grad_shift.to(torch.float64)
        inverse_count = torch.where(count > 0, 1.0 / count.clamp_min(1.0), 0.0)
        # d(total)/d(scale) including the path through shift = mean_t - scale * mean_p, over var
        through_scale = torch.where(singular, 0.0, (grad_scale - grad_shift * mean_p) / safe_var)
        grad_pred = grad_target = None
        centred_p = pred - per_image(mean_p, pred)
        if ctx.needs_input_grad[0]:
            centred_t = target - per_image(mean_t, target)
            grad_pred = per_image(through_scale, pred) * (
                centred_t - per_image(2.0 * scale, pred) * centred_p
            ) - per_image(grad_shift * scale * inverse_count, pred)
            grad_pred = masked(grad_pred, mask)
        if ctx.needs_input_grad[1]:
            grad_target = per_image(through_scale, target) * centred_p + per_image(
                grad_shift * inverse_count, target
            )
            grad_target = masked(grad_target, mask)
        return grad_pred, grad_target, None


# `select_rank` samples every n-th value so that about this many are sorted per row...
SAMPLE_SIZE = 2048
# ...and keeps the values within this many standard deviations of the sample's rank error.
SAMPLE_MARGIN = 2.5


def select_valid_rank(x: Tensor, mask: Tensor, rank: Tensor, common_rank: int) -> Tensor:
    """Flat index (B,) of the valid value of 0-based rank `rank[b]` in each image of x.

    x: (B, H, W); mask: bool (B, H, W); rank: int64 (B,). Invalid pixels are set to the
    largest finite value, so that the wanted value has rank `rank[b]` in row b, and
    `select_rank` finds it. Where that sampled selection cannot vouch for its answer, one
    batched `torch.kthvalue` (a quickselect) serves every image: in image b the first
    common_rank - rank[b] invalid pixels (in memory order) are set to -inf and the other
    invalid pixels to +inf, so the wanted value sits at rank `common_rank` in every row.
    The caller guarantees 0 <= common_rank - rank[b] <= (number of invalid pixels of b).
    Runs without autograd.
    """
    with torch.no_grad():
        flat_mask = mask.flatten(1)
        weights = mask_weights(flat_mask, x.dtype)
        big = torch.finfo(x.dtype).max
        values = masked(x.detach().flatten(1), flat_mask, weights)
        values.add_(weights.neg_().add_(1.0), alpha=big)  # invalid: 0 + big
        del weights
        index = select_rank(values, rank)
        if index is not None:
            return index
        below = (common_rank - rank).to(torch.int32)[:, None]
        inf = torch.full((), float("inf"), dtype=x.dtype, device=x.device)
        values = torch.where(flat_mask, x.flatten(1), inf)
        invalid = ~flat_mask
        invalid_order = invalid.cumsum(1, dtype=torch.int32)  # 1, 2, ... over invalid pixels
        values.masked_fill_(invalid & (invalid_order <= below), -inf)
        del invalid, invalid_order
        return torch.kthvalue(values, common_rank + 1, dim=1).indices


def select_rank(values: Tensor, rank: Tensor) -> Tensor | None:
    """Index (B,) of the value of 0-based rank `rank[b]` in each row of `values` (B, N), or
    None where this sampled selection does not apply (rows of fewer than 8 * SAMPLE_SIZE
    values, a sample whose bracket misses the rank, NaN).

    Every n-th value of a row (about SAMPLE_SIZE of them) is sorted; the sample values at
    ranks rank[b] * S / N -/+ SAMPLE_MARGIN sqrt(S) bracket the wanted value (the upper end
    stays below the sample's largest value, where padding is tied). One pass counts
    the values below the bracket and marks those inside; the check that the wanted rank
    falls inside makes the result exact whatever the sample. The bracketed values (a few
    percent of the row) are gathered into a (B, width) matrix, each row offset by -inf
    entries so that the wanted value has the same rank in every row, for one
    `torch.kthvalue`. Runs without autograd.
    """
    batch, length = values.shape
    stride = length // SAMPLE_SIZE
    if stride < 8:
        return None
    ordered = values[:, ::stride].sort(dim=1).values
    size = ordered.shape[1]
    expected = (rank.to(torch.float64) + 0.5) * (size / length)
    margin = SAMPLE_MARGIN * size**0.5 + 2.0
    low_rank = (expected - margin).floor().long()
    high_rank = (expected + margin).ceil().long()
    inf = torch.tensor(float("inf"), dtype=values.dtype, device=values.device)
    low = torch.where(low_rank < 0, -inf,
                      ordered.gather(1, low_rank.clamp(0, size - 1)[:, None])[:, 0])
    high = torch.where(high_rank >= size, inf,
                       ordered.gather(1, high_rank.clamp(0, size - 1)[:, None])[:, 0])
    # A bracket reaching the sample's largest value would take in the whole block of padding
    # values tied there (invalid pixels): stop it at the largest value below that block.
    top = ordered[:, -1]
    under_top = torch.where(ordered < top[:, None], ordered, -inf).max(dim=1).values
    high = torch.where((high >= top) & (under_top >= low), under_top, high)
    below = valid_counts(values < low[:, None])
    inside = (values >= low[:, None]) & (values <= high[:, None])
    count = valid_counts(inside)
    local = rank - below
    if not bool(((local >= 0) & (local < count)).all()):
        return None
    common = local.max()
    shift = common - local  # -inf entries in front of row b
    width = int((count + shift).max())
    if width > length // 4:  # no gain over selecting from the whole row
        return None
    rows, columns = inside.nonzero(as_tuple=True)
    starts = count.cumsum(0) - count
    position = torch.arange(rows.numel(), device=values.device) - starts[rows] + shift[rows]
    candidates = values.new_full((batch, width), float("inf"))
    ahead = torch.arange(width, device=values.device)[None, :] < shift[:, None]
    candidates.masked_fill_(ahead, float("-inf"))
    candidates[rows, position] = values[rows, columns]
    origin = torch.zeros((batch, width), dtype=torch.long, device=values.device)
    origin[rows, position] = columns
    chosen = candidates.kthvalue(int(common) + 1, dim=1).indices
    return origin.gather(1, chosen[:, None])[:, 0]


def median_index(x: Tensor, mask: Tensor, count: Tensor) -> Tensor:
    """Flat index (B,) of the lower median of the valid pixels of each image.

    The lower median has rank (M - 1) // 2 among the M valid pixels. Images without valid
    pixels get an arbitrary index (callers replace their median by 0).
    """
    # rank(M) = (M - 1) // 2 and M - rank(M) both grow with M, so with N pixels per image
    # common rank (N - 1) // 2 leaves room for every image (see select_valid_rank).
    rank = (count - 1).clamp_min(0) // 2
    return select_valid_rank(x, mask, rank, (mask.shape[1] * mask.shape[2] - 1) // 2)


def masked_median(x: Tensor, mask: Tensor, count: Tensor | None = None) -> Tensor:
    """Lower median of the valid pixels of each image: (B,) in the dtype of x.

    x: (B, H, W); mask: bool (B, H, W); count: optional valid counts (B,) if already known.
    With M valid pixels the median is the value of rank (M - 1) // 2 in ascending order (the
    lower of the two middle values when M is even, as `torch.median`). Images without valid
    pixels get 0. The gradient flows to the selected pixel only.
    """
    count = valid_counts(mask) if count is None else count
    value = x.flatten(1).gather(1, median_index(x, mask, count)[:, None])[:, 0]
    return torch.where(count > 0, value, torch.zeros_like(value))


def normalize_median_mad(x: Tensor, mask: Tensor) -> Tensor:
    """Robustly normalise each image: (x - median) / MAD over its valid pixels.

    x: (B, H, W) disparity; mask: bool (B, H, W). Returns (B, H, W) with 0 at invalid pixels.
    The median is the lower median (see `masked_median`); MAD = (1/M) sum |x_i - median|.
    An image whose MAD is at most 1e-8 (constant, a single valid pixel, no valid pixel) maps
    to 0 with zero gradient, like the scale-0 fallback of `align_lstsq`. Differentiated
    through median and MAD (a closed-form backward pass that recomputes x - median instead
    of storing it; first order only).
    """
    if not isinstance(x, Tensor) or x.ndim != 3 or x.shape != mask.shape:
        raise MixdepthError(
            "normalize_median_mad: x and mask must be tensors of the same shape (B, H, W), got "
            f"{tuple(getattr(x, 'shape', ()))} and {tuple(getattr(mask, 'shape', ()))}"
        )
    return MedianMadNormalize.apply(x, mask)


class MedianMadNormalize(torch.autograd.Function):
    """`normalize_median_mad` with an analytic backward pass.

    For valid pixels, y_i = (x_i - med) / mad with mad = (1/M) sum_j |x_j - med| and med the
    pixel at index k. With g = dL/dy, G = sum_j g_j, H = sum_j g_j y_j, S = sum_j sign(y_j):
    dL/dx_i = g_i / mad - H sign(y_i) / (M mad) + [i = k] (S H / (M mad) - G / mad).
    """

    @staticmethod
    def forward(ctx, x: Tensor, mask: Tensor):
        count = valid_counts(mask)
        index = median_index(x, mask, count)
        median = x.flatten(1).gather(1, index[:, None])[:, 0]
        centred = masked(x - per_image(median, x), mask)
        mad = image_sum(centred.abs()) / count.clamp_min(1)
        usable = mad > MAD_FLOOR
        inverse_mad = torch.where(usable, 1.0 / torch.where(usable, mad, 1.0), 0.0)
        ctx.save_for_backward(x, mask, count, index, median, inverse_mad)
        return centred.mul_(per_image(inverse_mad, x))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor):
        x, mask, count, index, median, inverse_mad = ctx.saved_tensors
        y = masked(x - per_image(median, x), mask).mul_(per_image(inverse_mad, x))
        g = masked(grad_out, mask)
        total_g = image_sum(g)
        total_gy = image_sum(g * y)
        sign = y.sign_()
        total_sign = image_sum(sign)
        inverse_count = 1.0 / count.clamp_min(1).to(torch.float64)
        grad = g.mul_(per_image(inverse_mad, x))
        grad -= sign.mul_(per_image(total_gy * inverse_mad * inverse_count, x))
        del sign
        at_median = (total_sign * total_gy * inverse_count - total_g) * inverse_mad
        flat = grad.view(grad.shape[0], -1)
        flat.scatter_add_(1, index[:, None], at_median.to(grad.dtype)[:, None])
        return masked(grad, mask), None



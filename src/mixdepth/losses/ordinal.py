"""Ranking loss for ordinal point pairs (DIW style, Chen et al. 2016)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mixdepth.errors import MixdepthError
from mixdepth.losses.alignment import normalize_median_mad
from mixdepth.losses.reduction import check_reduction, reduce_sums, zero_loss


def ordinal_ranking_loss(
    pred: Tensor, pairs: Sequence[Tensor], reduction: str = "batch", normalize: bool = True
) -> Tensor:
    """Pairwise ranking loss: log(1 + exp(-label * (d[a] - d[b]))) per pair.

    pred: (B, H, W) predicted disparity (larger = closer).
    normalize: d is pred normalised per image by its median and MAD over all pixels
        (`normalize_median_mad`), which makes the loss invariant to a positive scale and any
        shift of each image's prediction, like the dense losses; an image with a constant
        prediction gets d = 0 (loss log 2 per pair). False: d = pred, the raw DIW loss, which
        a network can lower without end by scaling its output up.
    pairs: B tensors (N_b, 5) int64 rows [y_a, x_a, y_b, x_b, label], label +1 when a is
        closer than b (larger disparity), -1 when it is further. N_b may be 0.
    reduction: "batch" = mean over all pairs of the batch, "image" = mean over images with
        pairs of their per-image mean, "none" = (B,) per-image means (0 without pairs).
    Computed with softplus, so large differences never overflow. A batch without any pair
    returns 0 (with zero gradients). Raises MixdepthError for malformed pairs.
    """
    check_reduction(reduction)
    if not isinstance(pred, Tensor) or pred.ndim != 3:
        raise MixdepthError(
            f"ordinal_ranking_loss: pred must be a (B, H, W) tensor, got "
            f"{tuple(getattr(pred, 'shape', ()))}"
        )
    batch, height, width = pred.shape
    if len(pairs) != batch:
        raise MixdepthError(
            f"ordinal_ranking_loss: got {len(pairs)} pair tensors for a batch of {batch}"
        )
    rows, images = [], []
    for index, image_pairs in enumerate(pairs):
        image_pairs = torch.as_tensor(image_pairs, device=pred.device)
        if image_pairs.numel() == 0:
            continue
        if image_pairs.ndim != 2 or image_pairs.shape[1] != 5:
            raise MixdepthError(
                f"ordinal_ranking_loss: pairs[{index}] must have shape (N, 5), got "
                f"{tuple(image_pairs.shape)}"
            )
        rows.append(image_pairs.to(torch.int64))
        images.append(torch.full((image_pairs.shape[0],), index, device=pred.device))
    if not rows:
        empty = zero_loss(pred)
        return empty.expand(batch).clone() if reduction == "none" else empty
    all_pairs = torch.cat(rows)
    image_index = torch.cat(images)
    y_a, x_a, y_b, x_b, label = all_pairs.unbind(1)
    inside = ((y_a >= 0) & (y_a < height) & (y_b >= 0) & (y_b < height)
              & (x_a >= 0) & (x_a < width) & (x_b >= 0) & (x_b < width))
    if not bool(inside.all()):
        raise MixdepthError(
            f"ordinal_ranking_loss: {int((~inside).sum())} pairs lie outside the "
            f"{height}x{width} image"
        )
    if not bool(((label == 1) | (label == -1)).all()):
        raise MixdepthError("ordinal_ranking_loss: pair labels must be +1 or -1")
    if normalize:
        pred = normalize_median_mad(pred, torch.ones_like(pred, dtype=torch.bool))
    flat = pred.reshape(batch, -1)
    value_a = flat[image_index, y_a * width + x_a]
    value_b = flat[image_index, y_b * width + x_b]
    losses = F.softplus(-label.to(pred.dtype) * (value_a - value_b))
    sums = losses.new_zeros(batch).index_add(0, image_index, losses)
    counts = torch.bincount(image_index, minlength=batch)
    return reduce_sums(sums, counts, reduction)

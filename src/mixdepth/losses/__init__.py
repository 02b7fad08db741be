"""Losses in disparity space: alignment, scale-and-shift-invariant losses, baselines.

Inputs are batched torch tensors: prediction and target (B, H, W) disparity, mask bool
(B, H, W) of valid target pixels; values outside the mask are never used. Alignment is
differentiated through. See docs/losses.md.
"""

from mixdepth.losses.alignment import align_lstsq, masked_median, normalize_median_mad
from mixdepth.losses.baselines import mae_loss, mse_loss, shift_invariant_loss, silog_loss
from mixdepth.losses.gradient import gradient_matching
from mixdepth.losses.ordinal import ordinal_ranking_loss
from mixdepth.losses.ssi import (
    KINDS,
    ScaleShiftInvariantLoss,
    ssi_loss,
    ssi_mae,
    ssi_mse,
    ssi_trim,
)

__all__ = [
    "KINDS",
    "ScaleShiftInvariantLoss",
    "align_lstsq",
    "gradient_matching",
    "mae_loss",
    "masked_median",
    "mse_loss",
    "normalize_median_mad",
    "ordinal_ranking_loss",
    "shift_invariant_loss",
    "silog_loss",
    "ssi_loss",
    "ssi_mae",
    "ssi_mse",
    "ssi_trim",
]

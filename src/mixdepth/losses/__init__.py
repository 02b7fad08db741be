"""Losses in disparity space: alignment, scale-and-shift-invariant losses, baselines.

Inputs are batched torch tensors: prediction and target (B, H, W) disparity, mask bool
(B, H, W) of valid target pixels. See docs/losses.md.
"""

from mixdepth.losses.alignment import align_lstsq, normalize_median_mad

__all__ = ["align_lstsq", "normalize_median_mad"]

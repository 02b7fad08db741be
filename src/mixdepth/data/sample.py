"""The common sample schema and the single depth -> disparity conversion.

Every dataset yields `Sample`s. `space` records what `target` means, because the mixed
training sets disagree: metric depth, depth up to scale, disparity up to scale (and shift),
or only ordinal pairs. `to_disparity_target` is the only place where a target is turned into
the disparity-space training target that all losses use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import torch


class Space(StrEnum):
    """What the values of `Sample.target` mean."""

    METRIC_DEPTH = "metric_depth"
    DEPTH_UP_TO_SCALE = "depth_up_to_scale"
    DISPARITY_UP_TO_SCALE = "disparity_up_to_scale"
    DISPARITY_UP_TO_SCALE_AND_SHIFT = "disparity_up_to_scale_and_shift"
    ORDINAL = "ordinal"

    @property
    def is_depth(self) -> bool:
        return self in (Space.METRIC_DEPTH, Space.DEPTH_UP_TO_SCALE)


@dataclass
class Sample:
    """One training or evaluation example.

    image:      float32 (H, W, 3), RGB in [0, 1].
    target:     float32 (H, W) in `space` units; undefined where `mask` is False. Ordinal
                samples carry an all-zero target and an all-False mask.
    mask:       bool (H, W), True where `target` is valid.
    space:      what `target` means (see `Space`).
    dataset:    name of the dataset the sample comes from.
    id:         identifier unique within the dataset (usually the relative file stem).
    pairs:      ordinal samples only: int64 (N, 5) rows [y_a, x_a, y_b, x_b, label], pixel
                coordinates (row, column); label +1 if point a is closer to the camera than
                point b (larger disparity), -1 if it is further.
    intrinsics: optional float32 (3, 3) pinhole camera matrix in pixels.
    """

    image: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    space: Space
    dataset: str = ""
    id: str = ""
    pairs: np.ndarray | None = None
    intrinsics: np.ndarray | None = None
    extras: dict = field(default_factory=dict)


def depth_to_disparity(depth, mask):
    """Invert depth on valid pixels: returns (disparity, mask), same type as the input.

    depth: (..., H, W) numpy array or torch tensor of depths; mask: bool, same shape.
    Pixels that are masked out, non-finite or not strictly positive get disparity 0 and
    mask False. Works for any leading batch shape.
    """
    if isinstance(depth, torch.Tensor):
        valid = mask & torch.isfinite(depth) & (depth > 0)
        safe = torch.where(valid, depth, torch.ones_like(depth))
        return torch.where(valid, 1.0 / safe, torch.zeros_like(depth)), valid
    depth = np.asarray(depth)
    valid = np.asarray(mask, dtype=bool) & np.isfinite(depth) & (depth > 0)
    safe = np.where(valid, depth, 1.0)
    return np.where(valid, 1.0 / safe, 0.0).astype(depth.dtype, copy=False), valid


def to_disparity_target(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """The disparity-space training target of any sample: (disparity float32 (H, W), mask).

    Depth targets are inverted on their valid pixels; disparity targets are kept as they are
    (their unknown scale/shift is removed by the scale-and-shift-invariant losses); ordinal
    samples have no dense target and return zeros with an empty mask.
    """
    space = Space(sample.space)
    target = np.asarray(sample.target, dtype=np.float32)
    mask = np.asarray(sample.mask, dtype=bool)
    if space is Space.ORDINAL:
        return np.zeros_like(target), np.zeros_like(mask)
    if space.is_depth:
        return depth_to_disparity(target, mask)
    valid = mask & np.isfinite(target)
    return np.where(valid, target, 0.0).astype(np.float32), valid

"""Joint transforms of image, target and mask.

`network_input_shape` is the one implementation of the reference resize rule: keep the aspect
ratio and make each side a multiple of 32. Inference, training and evaluation all call it.
"""

from __future__ import annotations

import math
from typing import Literal

ResizeMode = Literal["upper_bound", "lower_bound", "minimal"]


def _to_multiple(x: float, multiple: int, min_val: int = 0, max_val: int | None = None) -> int:
    """Round x to a multiple as the reference does: nearest (half to even), floor if above
    max_val, ceil if below min_val; at least one multiple."""
    y = int(round(x / multiple) * multiple)
    if max_val is not None and y > max_val:
        y = int(math.floor(x / multiple) * multiple)
    if y < min_val:
        y = int(math.ceil(x / multiple) * multiple)
    return max(y, multiple)  # never a zero-sized side, even for a sliver of an image


def network_input_shape(
    height: int,
    width: int,
    target: int | tuple[int, int] = 384,
    multiple: int = 32,
    mode: ResizeMode = "upper_bound",
    keep_aspect_ratio: bool = True,
) -> tuple[int, int]:
    """(new_height, new_width) of an image fed to the network, each a multiple of `multiple`.

    `target` is the working size (an int for square, or (height, width)).
    upper_bound: the image fits inside target (both sides <= target);
    lower_bound: the image covers target (both sides >= target);
    minimal:     the scale closest to 1 of the two, then rounded to the multiple.
    With keep_aspect_ratio=False each side is scaled to the target independently.
    """
    t_h, t_w = (target, target) if isinstance(target, int) else target
    scale_h, scale_w = t_h / height, t_w / width
    if keep_aspect_ratio:
        if mode == "lower_bound":
            scale = max(scale_h, scale_w)
        elif mode == "upper_bound":
            scale = min(scale_h, scale_w)
        elif mode == "minimal":
            scale = scale_w if abs(1 - scale_w) < abs(1 - scale_h) else scale_h
        else:
            raise ValueError(f"resize mode must be upper_bound, lower_bound or minimal: {mode!r}")
        scale_h = scale_w = scale
    if mode == "lower_bound":
        return (
            _to_multiple(scale_h * height, multiple, min_val=t_h),
            _to_multiple(scale_w * width, multiple, min_val=t_w),
        )
    if mode == "upper_bound":
        return (
            _to_multiple(scale_h * height, multiple, max_val=t_h),
            _to_multiple(scale_w * width, multiple, max_val=t_w),
        )
    return _to_multiple(scale_h * height, multiple), _to_multiple(scale_w * width, multiple)

"""Joint transforms of image, target and mask.

`network_input_shape` is the one implementation of the reference resize rule: keep the aspect
ratio and make each side a multiple of 32. Inference, training and evaluation all call it.
`TrainTransform` / `EvalTransform` and the helpers below (resize, crop, flip, jitter) move
image, target, mask, ordinal pairs and intrinsics together; targets are never blended
across invalid pixels.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mixdepth.data.sample import Sample

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


# ---------------------------------------------------------------------------------------
# Joint transforms of Samples: image, target, mask, pairs and intrinsics move together.
# ---------------------------------------------------------------------------------------

TargetInterpolation = Literal["nearest", "masked_bilinear"]


def _as_batch(array: np.ndarray) -> torch.Tensor:
    """(H, W) numpy -> (1, 1, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]


def _nearest_indices(old: int, new: int) -> np.ndarray:
    """Source index of each output pixel, sampling at pixel centres (like nearest-exact):
    floor((i + 0.5) * old / new) in exact integer arithmetic (a tie goes to the later pixel)."""
    return np.minimum(((2 * np.arange(new, dtype=np.int64) + 1) * old) // (2 * new), old - 1)


_PIL_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "area": Image.Resampling.BOX,
}


def resize_image(image: np.ndarray, size: tuple[int, int], interpolation: str = "bicubic"):
    """float32 (H, W, 3) in [0, 1] -> (h, w, 3), clipped to [0, 1].

    Bicubic as the reference transform, computed on float32 channels by Pillow, whose
    filters widen when shrinking (antialiased), so large photos do not alias at 384 px.
    """
    h, w = size
    if image.shape[:2] == (h, w):
        return image.copy()
    if interpolation not in _PIL_FILTERS:
        raise ValueError(f"image interpolation must be one of {sorted(_PIL_FILTERS)}")
    planes = np.ascontiguousarray(np.moveaxis(image, -1, 0), dtype=np.float32)  # one copy
    out = np.empty((h, w, image.shape[2]), dtype=np.float32)
    for c, plane in enumerate(planes):
        out[:, :, c] = Image.fromarray(plane).resize((w, h), _PIL_FILTERS[interpolation])
    return np.clip(out, 0.0, 1.0, out=out)


def resize_target(
    target: np.ndarray,
    mask: np.ndarray,
    size: tuple[int, int],
    interpolation: TargetInterpolation = "nearest",
) -> tuple[np.ndarray, np.ndarray]:
    """Resize float32 target (H, W) and bool mask (H, W) to size without inventing values.

    The mask always uses nearest neighbour (pixel centres), so an output pixel is valid only
    if the input pixel it samples is. "nearest" takes the target from the same pixel;
    "masked_bilinear" averages only valid neighbours (bilinear weights renormalised over
    them), so no value is blended across a hole or an invalid border.
    """
    h, w = size
    valid = np.asarray(mask, dtype=bool)
    clean = np.where(valid, target, 0).astype(np.float32)
    if target.shape == (h, w):
        return clean, valid.copy()
    rows = _nearest_indices(target.shape[0], h)[:, None]
    cols = _nearest_indices(target.shape[1], w)[None, :]
    new_mask = valid[rows, cols]
    if interpolation == "nearest":
        new_target = clean[rows, cols]
    elif interpolation == "masked_bilinear":
        weights = _as_batch(valid.astype(np.float32))
        total = F.interpolate(_as_batch(clean), size=(h, w), mode="bilinear", align_corners=False)
        weight = F.interpolate(weights, size=(h, w), mode="bilinear", align_corners=False)
        total, weight = total[0, 0].numpy(), weight[0, 0].numpy()
        new_mask &= weight > 1e-6
        new_target = np.where(new_mask, total / np.where(new_mask, weight, 1.0), 0.0)
    else:
        raise ValueError(
            f"target interpolation must be nearest or masked_bilinear, not {interpolation}"
        )
    return np.where(new_mask, new_target, 0).astype(np.float32), new_mask


def resize_sample(
    sample: Sample,
    size: tuple[int, int],
    image_interpolation: str = "bicubic",
    target_interpolation: TargetInterpolation = "nearest",
) -> Sample:
    """Resize image, target and mask to size (h, w); scale pairs and intrinsics to match."""
    height, width = sample.image.shape[:2]
    h, w = size
    target, mask = resize_target(sample.target, sample.mask, size, target_interpolation)
    pairs = sample.pairs
    if pairs is not None and len(pairs):
        pairs = pairs.copy()
        for cols, old, new in (([0, 2], height, h), ([1, 3], width, w)):
            scaled = np.floor((pairs[:, cols] + 0.5) * (new / old)).astype(np.int64)
            pairs[:, cols] = np.clip(scaled, 0, new - 1)
    intrinsics = sample.intrinsics
    if intrinsics is not None:
        sx, sy = w / width, h / height
        intrinsics = np.asarray(intrinsics, dtype=np.float32).copy()
        intrinsics[0, 0] *= sx
        intrinsics[1, 1] *= sy
        intrinsics[0, 2] = (intrinsics[0, 2] + 0.5) * sx - 0.5
        intrinsics[1, 2] = (intrinsics[1, 2] + 0.5) * sy - 0.5
    return dataclasses.replace(
        sample,
        image=resize_image(sample.image, size, image_interpolation),
        target=target,
        mask=mask,
        pairs=pairs,
        intrinsics=intrinsics,
        extras=dict(sample.extras),
    )


def crop_sample(sample: Sample, top: int, left: int, height: int, width: int) -> Sample:
    """Crop every map to [top:top+height, left:left+width]; drop pairs that leave the crop."""
    window = (slice(top, top + height), slice(left, left + width))
    pairs = sample.pairs
    if pairs is not None:
        pairs = pairs - np.array([top, left, top, left, 0], dtype=np.int64)
        inside = (
            (pairs[:, [0, 2]] >= 0).all(1)
            & (pairs[:, [0, 2]] < height).all(1)
            & (pairs[:, [1, 3]] >= 0).all(1)
            & (pairs[:, [1, 3]] < width).all(1)
        )
        pairs = pairs[inside]
    intrinsics = sample.intrinsics
    if intrinsics is not None:
        intrinsics = np.asarray(intrinsics, dtype=np.float32).copy()
        intrinsics[0, 2] -= left
        intrinsics[1, 2] -= top
    return dataclasses.replace(
        sample,
        image=np.ascontiguousarray(sample.image[window]),
        target=np.ascontiguousarray(sample.target[window]),
        mask=np.ascontiguousarray(sample.mask[window]),
        pairs=pairs,
        intrinsics=intrinsics,
        extras=dict(sample.extras),
    )


def hflip_sample(sample: Sample) -> Sample:
    """Mirror left-right: maps, pair x coordinates and the principal point."""
    width = sample.image.shape[1]
    pairs = sample.pairs
    if pairs is not None:
        pairs = pairs.copy()
        pairs[:, [1, 3]] = width - 1 - pairs[:, [1, 3]]
    intrinsics = sample.intrinsics
    if intrinsics is not None:
        intrinsics = np.asarray(intrinsics, dtype=np.float32).copy()
        intrinsics[0, 2] = width - 1 - intrinsics[0, 2]
    return dataclasses.replace(
        sample,
        image=np.ascontiguousarray(sample.image[:, ::-1]),
        target=np.ascontiguousarray(sample.target[:, ::-1]),
        mask=np.ascontiguousarray(sample.mask[:, ::-1]),
        pairs=pairs,
        intrinsics=intrinsics,
        extras=dict(sample.extras),
    )


def jitter_image(
    image: np.ndarray, brightness: float, contrast: float, saturation: float
) -> np.ndarray:
    """Photometric jitter of float32 (H, W, 3) RGB in [0, 1] by the given factors (1 = same).

    brightness scales the image, contrast blends it with its mean grey level, saturation
    with its per-pixel grey (ITU-R 601 luma); applied in that order, then clipped.
    """
    grey = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # (H, W)
    # The three linear steps folded into one: c*b*(s*x + (1-s)*g) + (1-c)*b*mean(g).
    out = image * np.float32(saturation)
    out += (np.float32(1 - saturation) * grey)[..., None]
    out *= np.float32(contrast * brightness)
    out += np.float32((1 - contrast) * brightness * grey.mean())
    return np.clip(out, 0.0, 1.0, out=out)


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


class TrainTransform:
    """Training augmentation, Sample -> Sample of size x size.

    Resize keeping the aspect ratio so that the image covers the crop (each side a multiple
    of 32, `network_input_shape(..., mode=resize_mode)`), then enlarge it by a factor drawn
    uniformly from [1, zoom] (scale augmentation; no draw when zoom is 1), random crop,
    horizontal flip with probability 0.5, photometric jitter of the image only. Targets are
    resized with `target_interpolation` (nearest or masked_bilinear), masks with nearest.
    Randomness comes from `generator` or torch's global RNG (which DataLoader seeds per worker).
    """

    def __init__(
        self,
        size: int | tuple[int, int] = 384,
        flip: bool = True,
        jitter: bool = True,
        resize_mode: ResizeMode = "lower_bound",
        target_interpolation: TargetInterpolation = "nearest",
        jitter_strength: tuple[float, float, float] = (0.2, 0.2, 0.2),
        generator: torch.Generator | None = None,
        zoom: float = 1.0,
    ):
        if not 1.0 <= zoom < math.inf:
            raise ValueError(f"zoom must be at least 1 and finite, got {zoom}")
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.zoom = float(zoom)
        self.flip = flip
        self.jitter = jitter
        self.resize_mode = resize_mode
        self.target_interpolation = target_interpolation
        self.jitter_strength = jitter_strength
        self.generator = generator

    def __call__(self, sample: Sample) -> Sample:
        crop_h, crop_w = self.size
        height, width = sample.image.shape[:2]
        new_h, new_w = network_input_shape(height, width, self.size, mode=self.resize_mode)
        if self.zoom > 1.0:
            factor = _uniform(1.0, self.zoom, self.generator)
            new_h, new_w = round(new_h * factor), round(new_w * factor)
        new_h, new_w = max(new_h, crop_h), max(new_w, crop_w)
        sample = resize_sample(
            sample, (new_h, new_w), target_interpolation=self.target_interpolation
        )
        top = int(torch.randint(0, new_h - crop_h + 1, (), generator=self.generator))
        left = int(torch.randint(0, new_w - crop_w + 1, (), generator=self.generator))
        sample = crop_sample(sample, top, left, crop_h, crop_w)
        if self.flip and float(torch.rand((), generator=self.generator)) < 0.5:
            sample = hflip_sample(sample)
        if self.jitter:
            b, c, s = self.jitter_strength
            factors = [_uniform(1 - v, 1 + v, self.generator) for v in (b, c, s)]
            sample.image = jitter_image(sample.image, *factors)
        return sample


class EvalTransform:
    """Evaluation preprocessing, Sample -> Sample: only the image is resized.

    The image goes to `network_input_shape(h, w, size, mode=resize_mode)` (bicubic); target
    and mask stay at full ground-truth resolution, because the zero-shot protocol compares
    at that resolution (the prediction is resized back). `extras["original_size"]` records
    (H, W). Image and target sizes therefore differ after this transform.
    """

    def __init__(self, size: int | tuple[int, int] = 384, resize_mode: ResizeMode = "upper_bound"):
        self.size = size
        self.resize_mode = resize_mode

    def __call__(self, sample: Sample) -> Sample:
        height, width = sample.image.shape[:2]
        shape = network_input_shape(height, width, self.size, mode=self.resize_mode)
        extras = dict(sample.extras, original_size=(height, width))
        return dataclasses.replace(sample, image=resize_image(sample.image, shape), extras=extras)

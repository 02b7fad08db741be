"""How per-image loss sums become one number, shared by every loss in this package."""

from __future__ import annotations

from torch import Tensor

from mixdepth.errors import MixdepthError

REDUCTIONS = ("batch", "image", "none")


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise MixdepthError(
            f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}"
        )


def reduce_sums(sums: Tensor, counts: Tensor, reduction: str) -> Tensor:
    """Combine per-image loss sums (B,) with their normalisers (B,), e.g. 2M per image.

    "batch": sum(sums) / sum(counts) (images weighted by their valid pixels; the reference
        implementation's batch-based reduction).
    "image": mean over images with counts > 0 of sums / counts (each image counts once).
    "none":  per-image sums / counts, (B,), 0 for images with counts == 0.
    Images with counts == 0 never contribute: the denominators are clamped at 1, so an
    all-empty batch gives 0 with finite (zero) gradients.
    """
    check_reduction(reduction)
    counts = counts.to(sums.dtype)
    if reduction == "batch":
        return sums.sum() / counts.sum().clamp_min(1.0)
    per_image = sums / counts.clamp_min(1.0)
    if reduction == "none":
        return per_image
    has_pixels = counts > 0
    return per_image.sum() / has_pixels.sum().clamp_min(1).to(sums.dtype)


def zero_loss(like: Tensor) -> Tensor:
    """A scalar 0 connected to `like`'s graph (so backward() works and gives zero gradients)."""
    return like.reshape(-1)[:0].sum()

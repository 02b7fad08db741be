"""Helpers for inference tests: a tiny model with random weights and small test images."""

import dataclasses

import numpy as np
import torch

from mixdepth import models

# Working size of the test model: images are resized to at most 64 px (not 256) for speed.
TEST_INPUT_SIZE = 64


def with_input_size(model: torch.nn.Module, size: int) -> torch.nn.Module:
    """The same module with `config.input_size` set to `size` (shared weights)."""
    model.config = dataclasses.replace(model.config, input_size=size)
    return model


def random_tiny() -> torch.nn.Module:
    """`tiny` with random weights, random batch-norm statistics (so folding matters), no final
    ReLU (so random outputs are not all zero) and working size TEST_INPUT_SIZE."""
    torch.manual_seed(0)
    model = models.create("tiny", non_negative=False).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return with_input_size(model, TEST_INPUT_SIZE)


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth-ish uint8 (H, W, 3) RGB test image."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([np.sin(6 * x + c) * np.cos(4 * y - c) for c in range(3)], axis=2)
    image = 0.5 + 0.35 * base + 0.1 * rng.standard_normal((height, width, 3))
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def random_midas_small(seed: int = 0) -> torch.nn.Module:
    """midas_v21_small with random weights in the official layout, random batch-norm
    statistics and no final ReLU."""
    torch.manual_seed(seed)
    model = models.create("midas_v21_small", non_negative=False).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return model


def official_shape(height: int, width: int, size: int, mode: str) -> tuple[int, int]:
    """The official `Resize` (keep_aspect_ratio, ensure_multiple_of=32) for a square network
    size: one scale for both sides, each side rounded to a multiple of 32 (with upper_bound,
    rounded down instead where rounding would exceed the size)."""
    scale_h, scale_w = size / height, size / width
    if mode == "upper_bound":
        scale = min(scale_h, scale_w)
    else:
        scale = scale_w if abs(1 - scale_w) < abs(1 - scale_h) else scale_h

    def multiple(x):
        y = int(np.round(x / 32) * 32)
        if mode == "upper_bound" and y > size:
            y = int(np.floor(x / 32) * 32)
        return y

    return multiple(scale * height), multiple(scale * width)

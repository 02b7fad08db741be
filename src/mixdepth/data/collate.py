"""Batching Samples for a DataLoader."""

from __future__ import annotations

import numpy as np
import torch

from mixdepth.data.sample import Sample, to_disparity_target


def collate_samples(samples: list[Sample]) -> dict:
    """Stack Samples into a batch dict (use as `DataLoader(collate_fn=collate_samples)`).

    image (B, 3, H, W) float32 in [0, 1]; disparity (B, H', W') float32 from
    `to_disparity_target` (0 where invalid); mask (B, H', W') bool; pairs: list of (N, 5)
    int64 tensors ((0, 5) for non-ordinal samples); space, dataset, id: lists of str.
    Image and target sizes may differ (EvalTransform), but must agree within the batch.
    """
    if not samples:
        raise ValueError("collate_samples needs at least one sample")
    shapes = {(s.image.shape, s.target.shape) for s in samples}
    if len(shapes) > 1:
        raise ValueError(
            f"samples of different sizes in one batch {sorted(shapes)}; resize them with a "
            "transform (e.g. TrainTransform) or use batch_size=1"
        )
    images = np.stack([s.image for s in samples]).transpose(0, 3, 1, 2)
    targets = [to_disparity_target(s) for s in samples]
    pairs = [
        torch.from_numpy(np.asarray(s.pairs, dtype=np.int64).reshape(-1, 5))
        if s.pairs is not None
        else torch.zeros((0, 5), dtype=torch.int64)
        for s in samples
    ]
    return {
        "image": torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)),
        "disparity": torch.from_numpy(np.stack([d for d, _ in targets]).astype(np.float32)),
        "mask": torch.from_numpy(np.stack([m for _, m in targets])),
        "pairs": pairs,
        "space": [str(s.space) for s in samples],
        "dataset": [s.dataset for s in samples],
        "id": [s.id for s in samples],
    }

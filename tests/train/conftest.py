"""Tiny in-memory datasets and configs for the trainer tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from mixdepth.data.sample import Sample, Space

TINY_MODEL = {"name": "tiny", "options": {"width": 0.25, "features": 8, "head_hidden": 8}}


class ToyDepthDataset(Dataset):
    """`n` images of `size` px whose disparity is a smooth function of the image, so a network
    can learn it. kind: "disparity" (dense, all valid), "depth" (dense metric depth with holes)
    or "ordinal" (point pairs only). A random horizontal flip uses the global numpy RNG, as a
    transform would, so seeding and resume are exercised."""

    def __init__(self, n: int, size: int = 32, seed: int = 0, kind: str = "disparity"):
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:size, 0:size] / size
        self.items = []
        for i in range(n):
            a, b, c = rng.uniform(-1, 1, 3)
            disparity = 1.0 + 0.5 * (a * xx + b * yy + c * np.sin(3 * xx + 2 * yy))
            image = np.stack([disparity / 2, 1 - disparity / 2.5, 0.5 * xx + 0.25], -1)
            image = np.clip(image + rng.normal(0, 0.02, image.shape), 0, 1).astype(np.float32)
            self.items.append((image, disparity.astype(np.float32), f"{kind}{i:03d}"))
        self.kind = kind
        self.space = {
            "disparity": Space.DISPARITY_UP_TO_SCALE_AND_SHIFT,
            "depth": Space.METRIC_DEPTH,
            "ordinal": Space.ORDINAL,
        }[kind]
        self.size = size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Sample:
        image, disparity, name = self.items[index]
        image, disparity = image.copy(), disparity.copy()
        if np.random.random() < 0.5:  # noqa: NPY002  (transform-style use of the global RNG)
            image, disparity = image[:, ::-1].copy(), disparity[:, ::-1].copy()
        mask = np.ones_like(disparity, dtype=bool)
        target, pairs = disparity, None
        if self.kind == "depth":
            mask[: self.size // 8] = False
            target = np.where(mask, 1.0 / disparity, 0.0).astype(np.float32)
        if self.kind == "ordinal":
            rng = np.random.default_rng(index)
            pts = rng.integers(0, self.size, (16, 4))
            closer = disparity[pts[:, 0], pts[:, 1]] > disparity[pts[:, 2], pts[:, 3]]
            pairs = np.concatenate([pts, np.where(closer, 1, -1)[:, None]], 1).astype(np.int64)
            target, mask = np.zeros_like(disparity), np.zeros_like(mask)
        return Sample(image, target, mask, self.space, dataset=self.kind, id=name, pairs=pairs)


def toy_config(tmp_path, mixing="uniform", n_datasets=2, **overrides) -> dict:
    """A config for toy datasets (roots are tmp_path; the datasets are passed in memory)."""
    config = {
        "model": dict(TINY_MODEL),
        "datasets": [
            {"name": f"toy{i}", "root": str(tmp_path), "loss": "mse" if i % 2 else "trim"}
            for i in range(n_datasets)
        ],
        "mixing": mixing,
        "steps": 4,
        "batch_size": 2 * n_datasets,
        "crop_size": 32,
        "num_workers": 0,
        "checkpoint_every": 2,
        "log_every": 1,
        "progress": False,
        "report": False,
        "val_images": 1,
        "seed": 3,
        "out_dir": str(tmp_path / "run"),
        "optimizer": {"lr_encoder": 1e-3, "lr_decoder": 1e-3},
    }
    config.update(overrides)
    return config


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

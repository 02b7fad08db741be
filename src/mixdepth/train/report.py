"""End-of-run figures: loss curves per dataset and predictions on a fixed validation batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curves(history: list[dict], labels: list[str], path: str | Path) -> None:
    """PNG of loss per dataset against step (log scale), and Pareto weights if logged."""
    plt = _pyplot()
    has_weights = any(f"mgda/{label}" in entry for entry in history for label in labels)
    fig, axes = plt.subplots(1, 2 if has_weights else 1, figsize=(11 if has_weights else 6, 4))
    axes = np.atleast_1d(axes)
    for label in labels:
        points = [(e["step"], e[f"loss/{label}"]) for e in history if f"loss/{label}" in e]
        if points:
            steps, values = zip(*points, strict=True)
            axes[0].plot(steps, values, label=label)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training loss")
    if any(e.get(f"loss/{label}", 0) > 0 for e in history for label in labels):
        axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    axes[0].set_title("loss per dataset")
    if has_weights:
        for label in labels:
            points = [(e["step"], e[f"mgda/{label}"]) for e in history if f"mgda/{label}" in e]
            if points:
                steps, values = zip(*points, strict=True)
                axes[1].plot(steps, values, label=label)
        axes[1].set_xlabel("step")
        axes[1].set_ylabel("weight")
        axes[1].set_title("Pareto (MGDA) weights, window means")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _normalise(x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    valid = x[mask] if mask is not None and mask.any() else x.reshape(-1)
    lo, hi = (np.percentile(valid, 2), np.percentile(valid, 98)) if valid.size else (0.0, 1.0)
    return np.clip((x - lo) / max(hi - lo, 1e-12), 0.0, 1.0)


@torch.no_grad()
def plot_predictions(trainer: Any, path: str | Path) -> None:
    """PNG grid: one row per validation image: RGB, target disparity, predicted disparity."""
    plt = _pyplot()
    batch = trainer.validation_batch()
    model = trainer.model
    was_training = model.training
    model.eval()
    try:
        pred = trainer.forward_disparity(model, batch["image"].to(trainer.device)).cpu().numpy()
    finally:
        model.train(was_training)
    images = batch["image"].permute(0, 2, 3, 1).numpy()
    targets, masks = batch["disparity"].numpy(), batch["mask"].numpy()
    rows = images.shape[0]
    fig, axes = plt.subplots(rows, 3, figsize=(7.5, 2.4 * rows), squeeze=False)
    for r in range(rows):
        label = trainer.labels[int(batch["source"][r])]
        axes[r, 0].imshow(np.clip(images[r], 0, 1))
        axes[r, 0].set_ylabel(label, fontsize=8)
        if masks[r].any():
            shown = np.where(masks[r], _normalise(targets[r], masks[r]), np.nan)
            axes[r, 1].imshow(shown, cmap="inferno", vmin=0, vmax=1)
        else:
            axes[r, 1].text(0.5, 0.5, "no dense target", ha="center", va="center", fontsize=8)
        axes[r, 2].imshow(_normalise(pred[r]), cmap="inferno", vmin=0, vmax=1)
        for c, title in enumerate(("image", "target disparity", "prediction")):
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)

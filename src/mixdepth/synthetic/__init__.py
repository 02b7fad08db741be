"""Procedural RGB-D scenes and dataset "personalities" written in real on-disk layouts.

- `render_family(family, rng, height, width)` renders one scene of a family (`FAMILIES`;
  `TRAIN_FAMILIES` feed training, `HELDOUT_FAMILIES` are kept for zero-shot evaluation) into
  a `Render`: image, exact metric z-depth, valid mask (sky invalid), intrinsics, G-buffer.
"""

from mixdepth.synthetic.render import Render
from mixdepth.synthetic.scenes import FAMILIES, HELDOUT_FAMILIES, TRAIN_FAMILIES, render_family

__all__ = [
    "FAMILIES",
    "HELDOUT_FAMILIES",
    "TRAIN_FAMILIES",
    "Render",
    "render_family",
]

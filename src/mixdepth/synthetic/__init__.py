"""Procedural RGB-D scenes and dataset "personalities" written in real on-disk layouts.

- `render_family(family, rng, height, width)` renders one scene of a family (`FAMILIES`;
  `TRAIN_FAMILIES` feed training, `HELDOUT_FAMILIES` are kept for zero-shot evaluation) into
  a `Render`: image, exact metric z-depth, valid mask (sky invalid), intrinsics, G-buffer.
- `PERSONALITIES` turn a render into the annotation a kind of real dataset would hold.
- `generate_set` / `generate_preset` write sets in the real layouts (see docs/synthetic.md);
  `make_sample` regenerates any sample of a set exactly.
"""

from mixdepth.synthetic.personalities import PERSONALITIES, Annotation, Personality
from mixdepth.synthetic.render import Render
from mixdepth.synthetic.scenes import FAMILIES, HELDOUT_FAMILIES, TRAIN_FAMILIES, render_family
from mixdepth.synthetic.writer import generate_preset, generate_set, make_sample

__all__ = [
    "FAMILIES",
    "HELDOUT_FAMILIES",
    "PERSONALITIES",
    "TRAIN_FAMILIES",
    "Annotation",
    "Personality",
    "Render",
    "generate_preset",
    "generate_set",
    "make_sample",
    "render_family",
]

"""TartanAir: simulated trajectories with exact metric depth.

Layout (per environment, difficulty and trajectory, as unzipped):
    <env>/<Easy|Hard>/<P000>/image_left/<000000>_left.png
    <env>/<Easy|Hard>/<P000>/depth_left/<000000>_left_depth.npy     float32 (H, W) metres
(the right camera, image_right/ + depth_right/, is read the same way). Sky and other very
distant pixels (beyond 1000 m) are masked.
"""

from __future__ import annotations

import re

from mixdepth.data.base import DepthDataset, Entry
from mixdepth.data.registry import register_dataset
from mixdepth.data.sample import Space
from mixdepth.io import read_tartanair_depth

_DEPTH = re.compile(
    r"^(?P<dir>(?:.*/)?)depth_(?P<side>left|right)/(?P<frame>[^/]+)_(?P=side)_depth\.npy$"
)


@register_dataset
class TartanAir(DepthDataset):
    name = "tartanair"
    space = Space.METRIC_DEPTH
    valid_range = (1e-3, 1000.0)
    layout = "<env>/<Easy|Hard>/<P000>/image_left/*_left.png + depth_left/*_left_depth.npy"

    def find_entries(self) -> list[Entry]:
        entries = []
        for name, match in self.matching_names(_DEPTH):
            folder, side, frame = match["dir"], match["side"], match["frame"]
            image = f"{folder}image_{side}/{frame}_{side}.png"
            entries.append(
                Entry(id=f"{folder}{frame}_{side}", files={"image": image, "target": name})
            )
        return entries

    def load(self, entry: Entry):
        self.require(entry.files["image"], "image_<side>/<frame>_<side>.png", entry.files["target"])
        image = self.read_image(entry.files["image"])
        depth = read_tartanair_depth(self.open(entry.files["target"]))
        return self.new_sample(entry, image, depth)

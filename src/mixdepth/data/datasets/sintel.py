"""MPI Sintel: rendered frames with exact depth (training set).

Layout (MPI-Sintel-complete and MPI-Sintel-depth-training unpacked into one ROOT):
    training/{final,clean}/<scene>/frame_<NNNN>.png
    training/depth/<scene>/frame_<NNNN>.dpt            float32 depth (.dpt, tag 202021.25)
    training/camdata_left/<scene>/frame_<NNNN>.cam     optional intrinsics
Depths beyond 72 are masked (the zero-shot protocol's Sintel range).
"""

from __future__ import annotations

import re

from mixdepth.data.base import DepthDataset, Entry
from mixdepth.data.registry import register_dataset
from mixdepth.data.sample import Space
from mixdepth.errors import ConfigError
from mixdepth.io import read_sintel_cam, read_sintel_dpt

_DEPTH = re.compile(r"^(?P<split>training|test)/depth/(?P<scene>[^/]+)/(?P<frame>[^/]+)\.dpt$")


@register_dataset
class Sintel(DepthDataset):
    name = "sintel"
    space = Space.METRIC_DEPTH
    valid_range = (1e-3, 72.0)
    splits = ("training", "test")
    layout = "training/{final,clean}/<scene>/*.png + training/depth/<scene>/*.dpt"

    def __init__(self, root, split=None, transform=None, render_pass: str = "final"):
        if render_pass not in ("final", "clean"):
            raise ConfigError(f"render_pass: must be 'final' or 'clean', got {render_pass!r}")
        self.render_pass = render_pass
        super().__init__(root, split, transform)

    def find_entries(self) -> list[Entry]:
        entries = []
        for name, match in self.matching_names(_DEPTH):
            if match["split"] != self.split:
                continue
            scene, frame = match["scene"], match["frame"]
            image = f"{self.split}/{self.render_pass}/{scene}/{frame}.png"
            cam = f"{self.split}/camdata_left/{scene}/{frame}.cam"
            files = {"image": image, "target": name}
            if self.source.exists(cam):
                files["camera"] = cam
            entries.append(Entry(id=f"{scene}/{frame}", files=files))
        return entries

    def load(self, entry: Entry):
        self.require(entry.files["image"], f"{self.render_pass} image", entry.files["target"])
        image = self.read_image(entry.files["image"])
        depth = read_sintel_dpt(self.open(entry.files["target"]))
        intrinsics = None
        if "camera" in entry.files:
            intrinsics = read_sintel_cam(self.open(entry.files["camera"]))[0]
        return self.new_sample(entry, image, depth, intrinsics=intrinsics)

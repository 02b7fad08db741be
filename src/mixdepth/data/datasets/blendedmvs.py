"""BlendedMVS: rendered depth of textured multi-view reconstructions (up to scale).

Layout (BlendedMVS / BlendedMVS+ low-res set as unpacked):
    <scene_id>/blended_images/<00000000>.jpg
    <scene_id>/rendered_depth_maps/<00000000>.pfm      float32 depth, 0 = background
    <scene_id>/cams/<00000000>_cam.txt                 optional: 'intrinsic' + 3 rows
"""

from __future__ import annotations

import re

import numpy as np

from mixdepth.data.base import DepthDataset, Entry
from mixdepth.data.registry import register_dataset
from mixdepth.data.sample import Space
from mixdepth.io import read_blendedmvs_depth

_DEPTH = re.compile(r"^(?P<scene>(?:.*/)?[^/]+)/rendered_depth_maps/(?P<frame>[^/]+)\.pfm$")


@register_dataset
class BlendedMVS(DepthDataset):
    name = "blendedmvs"
    space = Space.DEPTH_UP_TO_SCALE
    valid_range = (1e-6, float("inf"))
    layout = "<scene>/blended_images/*.jpg + <scene>/rendered_depth_maps/*.pfm"

    def find_entries(self) -> list[Entry]:
        entries = []
        for name, match in self.matching_names(_DEPTH):
            scene, frame = match["scene"], match["frame"]
            files = {"image": f"{scene}/blended_images/{frame}.jpg", "target": name}
            cam = f"{scene}/cams/{frame}_cam.txt"
            if self.source.exists(cam):
                files["camera"] = cam
            entries.append(Entry(id=f"{scene}/{frame}", files=files))
        return entries

    def load(self, entry: Entry):
        self.require(entry.files["image"], "blended_images/<frame>.jpg", entry.files["target"])
        image = self.read_image(entry.files["image"])
        depth = read_blendedmvs_depth(self.open(entry.files["target"]))
        intrinsics = None
        if "camera" in entry.files:
            intrinsics = self._intrinsics(entry.files["camera"])
        return self.new_sample(entry, image, depth, intrinsics=intrinsics)

    def _intrinsics(self, name: str) -> np.ndarray | None:
        lines = self.open(name).read().decode("ascii", "replace").split("\n")
        for i, line in enumerate(lines):
            if line.strip() == "intrinsic":
                try:
                    rows = [[float(v) for v in lines[i + k].split()] for k in (1, 2, 3)]
                    return np.array(rows, dtype=np.float32).reshape(3, 3)
                except (ValueError, IndexError):
                    return None
        return None

"""ETH3D high-resolution multi-view training set: DSLR images with laser-scan depth.

Layout (multi_view_training_dslr_undistorted.7z and multi_view_training_dslr_depth.7z
unpacked into one ROOT):
    <scene>/images/dslr_images_undistorted/<name>.JPG     (or images/dslr_images/)
    <scene>/ground_truth_depth/dslr_images/<name>.JPG     raw float32, NOT a JPEG
The depth "JPG" files are headerless little-endian float32 arrays of the image size
(4032 x 6048 for the undistorted DSLR images), row-major, metres; inf / 0 = no data.
"""

from __future__ import annotations

import re

from mixdepth.data.base import DepthDataset, Entry
from mixdepth.data.registry import register_dataset
from mixdepth.data.sample import Space
from mixdepth.io import read_eth3d_depth

_DEPTH = re.compile(r"^(?P<scene>(?:.*/)?[^/]+)/ground_truth_depth/dslr_images/(?P<name>[^/]+)$")
_IMAGE_DIRS = ("images/dslr_images_undistorted", "images/dslr_images")


@register_dataset
class ETH3D(DepthDataset):
    name = "eth3d"
    space = Space.METRIC_DEPTH
    valid_range = (1e-3, 72.0)
    layout = (
        "<scene>/images/dslr_images_undistorted/*.JPG + "
        "<scene>/ground_truth_depth/dslr_images/*.JPG (raw float32)"
    )

    def find_entries(self) -> list[Entry]:
        entries = []
        for name, match in self.matching_names(_DEPTH):
            scene, stem = match["scene"], match["name"]
            candidates = [f"{scene}/{d}/{stem}" for d in _IMAGE_DIRS]
            image = next((c for c in candidates if self.source.exists(c)), candidates[0])
            entries.append(Entry(id=f"{scene}/{stem}", files={"image": image, "target": name}))
        return entries

    def load(self, entry: Entry):
        self.require(entry.files["image"], "undistorted DSLR image", entry.files["target"])
        image = self.read_image(entry.files["image"])
        depth = read_eth3d_depth(self.open(entry.files["target"]), shape=image.shape[:2])
        return self.new_sample(entry, image, depth)

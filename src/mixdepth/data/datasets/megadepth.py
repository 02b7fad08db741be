"""MegaDepth v1: internet photos with multi-view-stereo depth up to an unknown scale.

Layout (MegaDepth_v1 as unpacked):
    <scene>/dense<k>/imgs/<name>.jpg
    <scene>/dense<k>/depths/<name>.h5       HDF5 dataset 'depth', float32, 0 = no depth
"""

from __future__ import annotations

import re

from mixdepth.data.base import IMAGE_SUFFIXES, DepthDataset, Entry
from mixdepth.data.registry import register_dataset
from mixdepth.data.sample import Space
from mixdepth.io import read_megadepth_depth

_DEPTH = re.compile(
    r"^(?P<dir>(?:.*/)?(?P<scene>[^/]+)/(?P<dense>dense\d+))/depths/(?P<stem>[^/]+)\.h5$"
)


@register_dataset
class MegaDepth(DepthDataset):
    name = "megadepth"
    space = Space.DEPTH_UP_TO_SCALE
    valid_range = (1e-6, float("inf"))
    layout = "<scene>/dense<k>/imgs/*.jpg + <scene>/dense<k>/depths/*.h5 (key 'depth')"

    def find_entries(self) -> list[Entry]:
        entries = []
        for name, match in self.matching_names(_DEPTH):
            image = self.find_partner(f"{match['dir']}/imgs/{match['stem']}", IMAGE_SUFFIXES)
            if image is None:
                self.note_problem(name, "missing partner file: imgs/<same name>.jpg")
                continue
            entries.append(
                Entry(
                    id=f"{match['scene']}/{match['dense']}/{match['stem']}",
                    files={"image": image, "target": name},
                )
            )
        return entries

    def load(self, entry: Entry):
        image = self.read_image(entry.files["image"])
        depth = read_megadepth_depth(self.open(entry.files["target"]))
        return self.new_sample(entry, image, depth)

"""TUM RGB-D: Kinect sequences with rgb.txt / depth.txt timestamp lists.

Layout (one sequence as unpacked from rgbd_dataset_<name>.tgz, or a folder of them):
    <sequence>/rgb.txt, depth.txt          '# ...' header, then 'timestamp filename'
    <sequence>/rgb/<timestamp>.png         8-bit RGB 640x480
    <sequence>/depth/<timestamp>.png       uint16, metres * 5000, 0 = missing
Colour and depth frames are paired by nearest timestamp (< 0.02 s), as associate.py does.
"""

from __future__ import annotations

import posixpath

import numpy as np

from mixdepth.data.base import DepthDataset, Entry
from mixdepth.data.registry import register_dataset
from mixdepth.data.sample import Space
from mixdepth.io import associate_timestamps, read_tum_depth, read_tum_list

# Calibrated intrinsics (fx, fy, cx, cy) per camera, from the dataset's documentation.
TUM_INTRINSICS = {
    "freiburg1": (517.3, 516.5, 318.6, 255.3),
    "freiburg2": (520.9, 521.0, 325.1, 249.7),
    "freiburg3": (535.4, 539.2, 320.1, 247.6),
}


@register_dataset
class TUMRGBD(DepthDataset):
    name = "tum"
    space = Space.METRIC_DEPTH
    valid_range = (1e-3, 10.0)
    layout = "<sequence>/{rgb,depth}.txt + <sequence>/rgb/*.png + <sequence>/depth/*.png"

    def __init__(self, root, split=None, transform=None, max_difference: float = 0.02):
        self.max_difference = max_difference
        super().__init__(root, split, transform)

    def find_entries(self) -> list[Entry]:
        entries = []
        lists = [n for n in self.source.names() if posixpath.basename(n) == "rgb.txt"]
        for rgb_list in lists:
            folder = posixpath.dirname(rgb_list)
            prefix = folder + "/" if folder else ""
            depth_list = prefix + "depth.txt"
            if not self.source.exists(depth_list):
                self.note_problem(rgb_list, "missing partner file depth.txt; sequence skipped")
                continue
            rgb_t, rgb_files = read_tum_list(self.open(rgb_list))
            depth_t, depth_files = read_tum_list(self.open(depth_list))
            sequence = posixpath.basename(folder) or posixpath.basename(self.root.rstrip("/"))
            camera = next((c for c in TUM_INTRINSICS if c in sequence), None)
            for i, j in associate_timestamps(rgb_t, depth_t, self.max_difference):
                stem = posixpath.splitext(posixpath.basename(rgb_files[i]))[0]
                entries.append(
                    Entry(
                        id=f"{sequence}/{stem}",
                        files={"image": prefix + rgb_files[i], "target": prefix + depth_files[j]},
                        info={"camera": camera},
                    )
                )
        return entries

    def load(self, entry: Entry):
        image = self.read_image(entry.files["image"])
        depth = read_tum_depth(self.open(entry.files["target"]))
        intrinsics = None
        if entry.info.get("camera"):
            fx, fy, cx, cy = TUM_INTRINSICS[entry.info["camera"]]
            intrinsics = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float32)
        return self.new_sample(entry, image, depth, intrinsics=intrinsics)

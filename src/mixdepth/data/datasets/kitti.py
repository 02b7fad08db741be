"""KITTI depth: raw (synced, rectified) images + annotated LiDAR depth maps.

Layout (KITTI raw drives next to the unpacked data_depth_annotated.zip):
    <date>/<drive>/image_02/data/<frame>.png                          RGB (image_03: right)
    data_depth_annotated/{train,val}/<drive>/proj_depth/groundtruth/image_02/<frame>.png
    <date>/calib_cam_to_cam.txt                                       optional intrinsics
Depth PNGs are uint16, metres * 256, 0 = no LiDAR point. The depth folders may also sit
directly under ROOT (<drive>/proj_depth/... as the Eigen lists write them) or under
ROOT/{train,val}/. Splits: eigen_test (the shipped 652 frames with depth), train, val, all.
"""

from __future__ import annotations

import re

import numpy as np

from mixdepth.data.base import GARG_CROP_KITTI, DepthDataset, Entry
from mixdepth.data.registry import register_dataset
from mixdepth.data.sample import Space
from mixdepth.data.splits import read_split
from mixdepth.io import read_kitti_depth

_DEPTH = re.compile(
    r"^(?P<prefix>(?:.*/)?)(?P<drive>(?P<date>\d{4}_\d{2}_\d{2})_drive_\d{4}_sync)"
    r"/proj_depth/groundtruth/(?P<cam>image_0[23])/(?P<frame>\d+)\.png$"
)
_DEPTH_PREFIXES = ("", "data_depth_annotated/train/", "data_depth_annotated/val/", "train/", "val/")


@register_dataset
class KITTI(DepthDataset):
    name = "kitti"
    space = Space.METRIC_DEPTH
    valid_range = (1e-3, 80.0)
    eval_crop = GARG_CROP_KITTI
    splits = ("eigen_test", "train", "val", "all")
    layout = (
        "<date>/<drive>/image_02/data/*.png + "
        "data_depth_annotated/{train,val}/<drive>/proj_depth/groundtruth/image_02/*.png"
    )

    def find_entries(self) -> list[Entry]:
        if self.split == "eigen_test":
            return self._eigen_entries()
        entries = []
        for name, match in self.matching_names(_DEPTH):
            prefix = match["prefix"]
            if self.split != "all" and not prefix.endswith(f"{self.split}/"):
                continue
            image = f"{match['date']}/{match['drive']}/{match['cam']}/data/{match['frame']}.png"
            entries.append(self._entry(image, name, match["drive"], match["cam"], match["frame"]))
        return entries

    def _eigen_entries(self) -> list[Entry]:
        entries = []
        for line in read_split("kitti_eigen_test.txt"):
            image, depth, _focal = line.split()
            if depth == "None":
                continue
            match = _DEPTH.match(depth)
            found = next(
                (p + depth for p in _DEPTH_PREFIXES if self.source.exists(p + depth)), None
            )
            if found is None:
                continue  # frames not present under ROOT are not part of this copy
            entries.append(self._entry(image, found, match["drive"], match["cam"], match["frame"]))
        return entries

    def _entry(self, image: str, depth: str, drive: str, cam: str, frame: str) -> Entry:
        calib = f"{drive[:10]}/calib_cam_to_cam.txt"
        return Entry(
            id=f"{drive}/{cam}/{frame}",
            files={"image": image, "target": depth},
            info={"calib": calib, "cam": cam[-2:]},
        )

    def load(self, entry: Entry):
        self.require(entry.files["image"], "raw image", entry.files["target"])
        image = self.read_image(entry.files["image"])
        depth = read_kitti_depth(self.open(entry.files["target"]))
        return self.new_sample(entry, image, depth, intrinsics=self._intrinsics(entry))

    def _intrinsics(self, entry: Entry) -> np.ndarray | None:
        if not self.source.exists(entry.info["calib"]):
            return None
        key = f"P_rect_{entry.info['cam']}:"
        for line in self.open(entry.info["calib"]).read().decode("ascii", "replace").splitlines():
            if line.startswith(key):
                values = np.array(line[len(key) :].split(), dtype=np.float64)
                if values.size == 12:
                    return values.reshape(3, 4)[:, :3].astype(np.float32)
        return None

"""NYU Depth v2, labeled subset (1449 aligned RGB-D frames, inpainted depth in metres).

Layout: ROOT is `nyu_depth_v2_labeled.mat` itself, or a directory / tar archive holding it.
Splits: test (the official 654 frames of splits.mat, shipped as a list), train (the other
795), all. Ids are the official 1-based indices, zero-padded to 4 digits.

Without a .mat file, the common PNG extraction of the same frames is read instead:
    [official_splits/]{train,test}/<scene>/rgb_<n>.{jpg,png}
    [official_splits/]{train,test}/<scene>/{sync_depth,depth}_<n>.png   uint16 millimetres
(the layout of the BTS extraction script and similar tools); ids are `<scene>/<n>`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from mixdepth.data.base import EIGEN_CROP_NYU, DepthDataset, Entry
from mixdepth.data.registry import register_dataset
from mixdepth.data.sample import Space
from mixdepth.data.sources import DirectorySource, open_source
from mixdepth.data.splits import read_split
from mixdepth.io import NyuLabeledMat, read_png16

_EXTRACTED = re.compile(
    r"^(?:.*/)?(?P<split>train|test)/(?P<scene>[^/]+)/rgb_(?P<n>\d+)\.(?:jpg|png)$"
)

MAT_NAME = "nyu_depth_v2_labeled.mat"
NYU_INTRINSICS = np.array(
    [[518.8579, 0.0, 325.5824], [0.0, 519.4696, 253.7362], [0.0, 0.0, 1.0]], dtype=np.float32
)


@register_dataset
class NYUv2(DepthDataset):
    name = "nyu"
    space = Space.METRIC_DEPTH
    valid_range = (1e-3, 10.0)
    eval_crop = EIGEN_CROP_NYU
    splits = ("test", "train", "all")
    layout = (
        f"{MAT_NAME} (MATLAB v7.3), or a directory / tar archive containing it, or the PNG "
        "extraction {train,test}/<scene>/rgb_<n>.jpg + sync_depth_<n>.png"
    )

    def make_source(self, root):
        if os.path.isfile(root) and str(root).endswith(".mat"):
            self._mat_name = Path(root).name
            return DirectorySource(Path(root).parent)
        self._mat_name = MAT_NAME
        return open_source(root)

    def find_entries(self) -> list[Entry]:
        name = self._mat_name
        if not self.source.exists(name):
            name = next((n for n in self.source.names() if n.endswith(".mat")), None)
            if name is None:
                return self._extracted_entries()
        count = len(self._open_mat(name))
        test = {int(v) for v in read_split("nyu_test.txt")}
        if self.split == "test":
            indices = sorted(i for i in test if i <= count)
        elif self.split == "train":
            indices = [i for i in range(1, count + 1) if i not in test]
        else:
            indices = list(range(1, count + 1))
        return [Entry(id=f"{i:04d}", files={"mat": name}, info={"index": i - 1}) for i in indices]

    def _extracted_entries(self) -> list[Entry]:
        entries = []
        for name, match in self.matching_names(_EXTRACTED):
            if self.split not in ("all", match["split"]):
                continue
            folder = name.rsplit("/", 1)[0]
            depth = self.find_partner(
                f"{folder}/", (f"sync_depth_{match['n']}.png", f"depth_{match['n']}.png")
            )
            if depth is None:
                self.note_problem(name, f"missing partner file: sync_depth_{match['n']}.png")
                continue
            entries.append(
                Entry(id=f"{match['scene']}/{match['n']}", files={"image": name, "target": depth})
            )
        return entries

    def _open_mat(self, name: str) -> NyuLabeledMat:
        """The .mat reader of this process (h5py handles must not cross a fork)."""
        if getattr(self, "_mat_pid", None) != os.getpid():
            local = self.source.local_path(name)
            stream = local if local else self.source.open_stream(name)
            self._mat = NyuLabeledMat(stream, name=self.source.location(name))
            self._mat_pid = os.getpid()
        return self._mat

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_mat", None)
        state.pop("_mat_pid", None)
        return state

    def load(self, entry: Entry):
        if "mat" not in entry.files:
            image = self.read_image(entry.files["image"])
            depth = read_png16(self.open(entry.files["target"]), 1000.0)
            intrinsics = NYU_INTRINSICS if image.shape[:2] == (480, 640) else None
            return self.new_sample(entry, image, depth, intrinsics=intrinsics)
        image, depth = self._open_mat(entry.files["mat"]).read(entry.info["index"])
        intrinsics = NYU_INTRINSICS if image.shape[:2] == (480, 640) else None
        return self.new_sample(entry, image, depth, intrinsics=intrinsics)

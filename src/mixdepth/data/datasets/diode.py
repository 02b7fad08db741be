"""DIODE: indoor and outdoor laser scans with dense metric depth.

Layout (train.tar.gz / val.tar.gz as unpacked):
    {train,val}/{indoors,outdoors}/scene_<k>/scan_<k>/<name>.png
    .../<name>_depth.npy         float32 (H, W, 1) metres
    .../<name>_depth_mask.npy    (H, W), 1 = valid
Splits: val, train, or one of them restricted to indoors / outdoors ("val/indoors", ...).
"""

from __future__ import annotations

from mixdepth.data.base import DepthDataset, Entry
from mixdepth.data.registry import register_dataset
from mixdepth.data.sample import Space
from mixdepth.io import read_diode_depth


@register_dataset
class DIODE(DepthDataset):
    name = "diode"
    space = Space.METRIC_DEPTH
    valid_range = (1e-3, 350.0)
    splits = (
        "val",
        "train",
        "val/indoors",
        "val/outdoors",
        "train/indoors",
        "train/outdoors",
    )
    layout = (
        "{train,val}/{indoors,outdoors}/scene_*/scan_*/<name>.png + _depth.npy + _depth_mask.npy"
    )

    def find_entries(self) -> list[Entry]:
        entries = []
        prefix = self.split + "/"
        for name in self.source.names():
            if not name.startswith(prefix) or not name.endswith(".png"):
                continue
            base = name[: -len(".png")]
            files = {"image": name, "target": base + "_depth.npy", "mask": base + "_depth_mask.npy"}
            entries.append(Entry(id=base, files=files))
        return entries

    def load(self, entry: Entry):
        for role, what in (("target", "_depth.npy"), ("mask", "_depth_mask.npy")):
            self.require(entry.files[role], f"<name>{what}", entry.files["image"])
        image = self.read_image(entry.files["image"])
        depth, mask = read_diode_depth(
            self.open(entry.files["target"]), self.open(entry.files["mask"])
        )
        return self.new_sample(entry, image, depth, mask=mask)

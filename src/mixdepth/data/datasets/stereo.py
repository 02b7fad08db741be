"""Web stereo datasets with relative disparity: ReDWeb and HRWSI.

ReDWeb V1:  Imgs/<name>.jpg + RDs/<name>.png (8-bit relative disparity, larger = closer).
HRWSI:      {train,val}/imgs/<name>.jpg + {train,val}/gts/<name>.png (disparity)
            + {train,val}/valid_masks/<name>.png (non-zero = valid).
Both are disparity up to an unknown scale and shift (normalised stereo disparity).
"""

from __future__ import annotations

import posixpath

from mixdepth.data.base import IMAGE_SUFFIXES, DepthDataset, Entry
from mixdepth.data.registry import register_dataset
from mixdepth.data.sample import Space
from mixdepth.io import read_disparity_png, read_uint_png
from mixdepth.io._files import require_shape


def _pairs(dataset: DepthDataset, folder: str, image_dir: str, target_dir: str) -> list[Entry]:
    """Entries for every target PNG in `folder/target_dir` with an image in `image_dir`."""
    prefix = f"{folder}/" if folder else ""
    entries = []
    for name in dataset.source.names():
        if posixpath.dirname(name) != prefix + target_dir or not name.endswith(".png"):
            continue
        stem = posixpath.splitext(posixpath.basename(name))[0]
        image = dataset.find_partner(f"{prefix}{image_dir}/{stem}", IMAGE_SUFFIXES)
        if image is None:
            dataset.note_problem(name, f"missing partner file: {image_dir}/{stem}.jpg")
            continue
        entries.append(Entry(id=f"{prefix}{stem}", files={"image": image, "target": name}))
    return entries


@register_dataset
class ReDWeb(DepthDataset):
    name = "redweb"
    space = Space.DISPARITY_UP_TO_SCALE_AND_SHIFT
    layout = "Imgs/*.jpg + RDs/*.png"

    def find_entries(self) -> list[Entry]:
        return _pairs(self, "", "Imgs", "RDs")

    def load(self, entry: Entry):
        image = self.read_image(entry.files["image"])
        disparity = read_disparity_png(self.open(entry.files["target"]))
        return self.new_sample(entry, image, disparity, mask=disparity == disparity)


@register_dataset
class HRWSI(DepthDataset):
    name = "hrwsi"
    space = Space.DISPARITY_UP_TO_SCALE_AND_SHIFT
    splits = ("train", "val")
    layout = "{train,val}/imgs/*.jpg + {train,val}/gts/*.png + {train,val}/valid_masks/*.png"

    def find_entries(self) -> list[Entry]:
        entries = _pairs(self, self.split, "imgs", "gts")
        for entry in entries:
            stem = posixpath.basename(entry.id)
            mask = f"{self.split}/valid_masks/{stem}.png"
            if self.source.exists(mask):
                entry.files["mask"] = mask
        return entries

    def load(self, entry: Entry):
        image = self.read_image(entry.files["image"])
        disparity = read_disparity_png(self.open(entry.files["target"]))
        mask_name = self.require(
            entry.files.get("mask"), "valid_masks/<same name>.png", entry.files["target"]
        )
        mask = read_uint_png(self.open(mask_name)) > 0
        require_shape(mask, disparity.shape, self.source.location(mask_name), "valid mask")
        return self.new_sample(entry, image, disparity, mask=mask)

"""Depth in the Wild: web images with one human-annotated ordinal point pair each.

Layout (DIW_test.tar.gz, DIW_train_val.tar.gz and the annotations unpacked into ROOT):
    DIW_Annotations/DIW_{test,train,val}.csv   (or the CSVs directly in ROOT)
    DIW_test/<hash>.thumb, DIW_train_val/<hash>.thumb    JPEG images
Image paths in the CSV are taken relative to ROOT ('./DIW_test/x.thumb'); absolute paths
from other machines are resolved by their last two components. Targets: none (all-False
mask); `pairs` holds [y_a, x_a, y_b, x_b, label] rows, label +1 if A is closer. An image
listed on several lines (one pair each) becomes one sample with all its pairs.
"""

from __future__ import annotations

import posixpath

import numpy as np

from mixdepth.data.base import DepthDataset, Entry
from mixdepth.data.registry import register_dataset
from mixdepth.data.sample import Space
from mixdepth.io import read_diw_csv


@register_dataset
class DIW(DepthDataset):
    name = "diw"
    space = Space.ORDINAL
    splits = ("test", "train", "val")
    layout = "DIW_Annotations/DIW_<split>.csv + the image folders its lines name"

    def find_entries(self) -> list[Entry]:
        csv_name = self.find_partner(
            "", (f"DIW_Annotations/DIW_{self.split}.csv", f"DIW_{self.split}.csv")
        )
        if csv_name is None:
            return []
        entries: dict[str, Entry] = {}  # an image listed several times gets all its pairs
        for image, pairs in read_diw_csv(self.open(csv_name)):
            name = image[2:] if image.startswith("./") else image.lstrip("/")
            if not self.source.exists(name):
                short = "/".join(name.split("/")[-2:])
                name = short if self.source.exists(short) else name
            if name in entries:
                entry = entries[name]
                entry.info["pairs"] = np.concatenate([entry.info["pairs"], pairs])
                continue
            stem = posixpath.splitext(posixpath.basename(name))[0]
            entries[name] = Entry(
                id=stem, files={"image": name, "annotations": csv_name}, info={"pairs": pairs}
            )
        return list(entries.values())

    def load(self, entry: Entry):
        self.require(entry.files["image"], "image named in the CSV", entry.files["annotations"])
        image = self.read_image(entry.files["image"])
        height, width = image.shape[:2]
        pairs = entry.info["pairs"].copy()
        pairs[:, [0, 2]] = np.clip(pairs[:, [0, 2]], 0, height - 1)
        pairs[:, [1, 3]] = np.clip(pairs[:, [1, 3]], 0, width - 1)
        target = np.zeros((height, width), dtype=np.float32)
        mask = np.zeros((height, width), dtype=bool)
        return self.new_sample(entry, image, target, mask=mask, pairs=pairs)

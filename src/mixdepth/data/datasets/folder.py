"""A user's own data: images plus depth or disparity maps with a declared space and scale.

Layout:
    images/<name>.{png,jpg,jpeg}        (sub-folders allowed)
    targets/<name>.{pfm,png,npy,npz,dpt,exr,h5}
    masks/<name>.png                    optional, non-zero = valid
    dataset.yaml                        optional: space, scale, format, zero_invalid,
                                        valid_range (keyword options override it)
Target values are (stored value) / scale, in `space` units. Invalid: non-finite values,
zero mask pixels, values outside valid_range and, when zero_invalid is true, zeros
(default: true for depth spaces and PNG files, false for float disparity files, where 0 is
a legitimate value).
"""

from __future__ import annotations

import math
import posixpath

import yaml

from mixdepth.data.base import IMAGE_SUFFIXES, DepthDataset, Entry
from mixdepth.data.registry import register_dataset
from mixdepth.data.sample import Space
from mixdepth.errors import ConfigError, FileFormatError
from mixdepth.io import read_depth, read_uint_png
from mixdepth.io._files import require_shape

TARGET_SUFFIXES = (".pfm", ".png", ".npy", ".npz", ".dpt", ".exr", ".h5")
_OPTIONS = ("space", "scale", "format", "zero_invalid", "valid_range")


@register_dataset
class FolderDataset(DepthDataset):
    name = "folder"
    space = None  # declared per instance
    layout = "images/<name>.png|jpg + targets/<name>.pfm|png|npy|... (+ masks/, dataset.yaml)"

    def __init__(self, root, split=None, transform=None, **options):
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise ConfigError(f"folder dataset: unknown options {sorted(unknown)} ({_OPTIONS})")
        self._options = options
        super().__init__(root, split, transform)

    def _configure(self) -> None:
        declared = {}
        if self.source.exists("dataset.yaml"):
            where = self.source.location("dataset.yaml")
            try:
                declared = yaml.safe_load(self.open("dataset.yaml")) or {}
            except yaml.YAMLError as err:
                raise FileFormatError(where, f"invalid YAML ({err})") from None
            if not isinstance(declared, dict) or set(declared) - set(_OPTIONS):
                raise FileFormatError(where, f"expected a mapping with keys among {_OPTIONS}")
        declared.update({k: v for k, v in self._options.items() if v is not None})
        if "space" not in declared:
            raise ConfigError(
                f"{self.root}: folder dataset needs a space ({[s.value for s in Space]}) "
                "as an option or in dataset.yaml"
            )
        try:
            self.space = Space(declared["space"])
        except ValueError:
            raise ConfigError(f"space: unknown space {declared['space']!r}") from None
        self.scale = float(declared.get("scale", 1.0))
        self.format = declared.get("format", "auto")
        self.zero_invalid = declared.get("zero_invalid")
        low, high = declared.get("valid_range", (-math.inf, math.inf))
        self.valid_range = (float(low), float(high))

    def find_entries(self) -> list[Entry]:
        self._configure()
        entries = []
        for name in self.source.names():
            if not name.startswith("targets/") or not name.endswith(TARGET_SUFFIXES):
                continue
            stem = posixpath.splitext(name[len("targets/") :])[0]
            image = self.find_partner(f"images/{stem}", IMAGE_SUFFIXES)
            if image is None:
                self.note_problem(name, f"missing partner file: images/{stem}.png|jpg")
                continue
            files = {"image": image, "target": name}
            if self.source.exists(f"masks/{stem}.png"):
                files["mask"] = f"masks/{stem}.png"
            entries.append(Entry(id=stem, files=files))
        return entries

    def load(self, entry: Entry):
        image = self.read_image(entry.files["image"])
        target_name = entry.files["target"]
        fmt = self.format
        if fmt == "auto" and target_name.endswith(".png"):
            fmt = "png"
        target = read_depth(self.open(target_name), format=fmt, scale=self.scale)
        zero_invalid = self.zero_invalid
        if zero_invalid is None:
            zero_invalid = self.space.is_depth or target_name.endswith(".png")
        mask = target == target  # finite check happens in finish()
        if zero_invalid:
            mask &= target != 0
        if "mask" in entry.files:
            given = read_uint_png(self.open(entry.files["mask"])) > 0
            require_shape(given, target.shape, self.source.location(entry.files["mask"]), "mask")
            mask &= given
        return self.new_sample(entry, image, target, mask=mask)

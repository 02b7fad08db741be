"""The dataset base class: entries found in a source, loaded into validated `Sample`s."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar

import numpy as np
import torch.utils.data

from mixdepth.data.sample import Sample, Space
from mixdepth.data.sources import Source, open_source
from mixdepth.errors import ConfigError, FileFormatError, MixdepthError
from mixdepth.io import read_image

# Evaluation crops as fractions of (height, height, width, width): top, bottom, left, right.
EIGEN_CROP_NYU = (45 / 480, 471 / 480, 41 / 640, 601 / 640)
GARG_CROP_KITTI = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
EIGEN_CROP_KITTI = (0.3324324, 0.91351351, 0.03594771, 0.96405229)


def crop_box(height: int, width: int, crop: tuple[float, float, float, float]):
    """Pixel box (top, bottom, left, right), bottom/right exclusive, of a fractional crop."""
    top, bottom, left, right = crop
    eps = 1e-6  # 471/480 * 480 must give 471, not 470.99999
    return (
        int(math.floor(top * height + eps)),
        int(math.floor(bottom * height + eps)),
        int(math.floor(left * width + eps)),
        int(math.floor(right * width + eps)),
    )


def apply_eval_crop(mask: np.ndarray, crop: tuple[float, float, float, float] | None):
    """Copy of bool mask (..., H, W) with everything outside the evaluation crop False."""
    mask = np.asarray(mask, dtype=bool)
    if crop is None:
        return mask.copy()
    top, bottom, left, right = crop_box(mask.shape[-2], mask.shape[-1], crop)
    inside = np.zeros(mask.shape[-2:], dtype=bool)
    inside[top:bottom, left:right] = True
    return mask & inside


def read_transformed(dataset, index: int) -> Sample:
    """`dataset.read_sample(index)` passed through `dataset.transform`.

    With `dataset.skip_bad` (create_dataset(..., skip_bad=True)) an unreadable sample is
    recorded in `dataset.problems` and the next readable one is returned instead, so one
    bad file does not stop a training run.
    """
    if not -len(dataset) <= index < len(dataset):
        raise IndexError(f"index {index} out of range for {len(dataset)} samples")
    index %= len(dataset)
    for offset in range(len(dataset) if dataset.skip_bad else 1):
        try:
            sample = dataset.read_sample((index + offset) % len(dataset))
            break
        except MixdepthError as err:
            if not dataset.skip_bad:
                raise
            dataset.problems.append(str(err))
    else:
        raise MixdepthError(f"{dataset.root}: no readable {dataset.name} sample left")
    return dataset.transform(sample) if dataset.transform is not None else sample


@dataclass
class Entry:
    """One sample before loading: its id and the source names of its files by role."""

    id: str
    files: dict[str, str]
    info: dict[str, Any] = field(default_factory=dict)


class DepthDataset(torch.utils.data.Dataset):
    """A dataset read from a directory or tar archive; items are `Sample`s.

    Subclasses set `name`, `space` (what targets mean), `valid_range` (target values outside
    it are masked, inclusive bounds, in target units), `eval_crop` (fractions top, bottom,
    left, right, or None), `splits` (the first is the default) and `layout` (one line used
    in "nothing found" messages), and implement `find_entries` and `load`.
    """

    name: ClassVar[str] = ""
    space: ClassVar[Space | None] = None
    valid_range: ClassVar[tuple[float, float]] = (-math.inf, math.inf)
    eval_crop: ClassVar[tuple[float, float, float, float] | None] = None
    splits: ClassVar[tuple[str, ...]] = ("all",)
    layout: ClassVar[str] = ""
    skip_bad: bool = False

    def __init__(self, root: str | os.PathLike | Source, split: str | None = None, transform=None):
        self.root = str(root.root if isinstance(root, Source) else root)
        self.split = split or self.splits[0]
        if self.split not in self.splits:
            raise ConfigError(
                f"split: {self.name} has no split {self.split!r} (choose from {list(self.splits)})"
            )
        self.transform = transform
        self.source = self.make_source(root)
        self.problems: list[str] = []  # files skipped while listing, as "location: problem"
        self.entries: list[Entry] = self.find_entries()
        if not self.entries:
            raise MixdepthError(
                f"{self.root}: no {self.name} samples found for split {self.split!r}; "
                f"expected layout: {self.layout}"
            )

    # -- to implement -------------------------------------------------------------------
    def find_entries(self) -> list[Entry]:
        raise NotImplementedError

    def load(self, entry: Entry) -> Sample:
        """Read one entry -> Sample with the raw target (masking is finished by the base)."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------
    def make_source(self, root) -> Source:
        return open_source(root)

    def open(self, name: str) -> BinaryIO:
        return self.source.open(name)

    def read_image(self, name: str) -> np.ndarray:
        return read_image(self.open(name))

    def __len__(self) -> int:
        return len(self.entries)

    def read_sample(self, index: int) -> Sample:
        """Sample `index` before the transform: target masked by `valid_range`, invalid = 0."""
        entry = self.entries[index]
        sample = self.load(entry)
        return self.finish(sample, entry)

    def __getitem__(self, index: int) -> Sample:
        return read_transformed(self, index)

    def locations(self, index: int) -> list[str]:
        """Readable locations of the files of sample `index` (for messages and checks)."""
        return [self.source.location(n) for n in self.entries[index].files.values()]

    def finish(self, sample: Sample, entry: Entry) -> Sample:
        """Check shapes and dtypes, apply `valid_range`, zero the target where invalid."""
        where = self.source.location(next(iter(entry.files.values()), ""))
        image = np.asarray(sample.image, dtype=np.float32)
        if image.ndim != 3 or image.shape[2] != 3:
            raise FileFormatError(where, f"image has shape {image.shape}, expected (H, W, 3)")
        target = np.asarray(sample.target, dtype=np.float32)
        mask = np.asarray(sample.mask, dtype=bool)
        if target.shape != image.shape[:2] or mask.shape != image.shape[:2]:
            target_file = entry.files.get("target", next(iter(entry.files.values()), ""))
            raise FileFormatError(
                self.source.location(target_file),
                f"target {target.shape} / mask {mask.shape} do not match the image size "
                f"{image.shape[:2]}",
            )
        low, high = self.valid_range
        with np.errstate(invalid="ignore"):
            mask = mask & np.isfinite(target) & (target >= low) & (target <= high)
        sample.image = image
        sample.target = np.where(mask, target, np.float32(0)).astype(np.float32)
        sample.mask = mask
        sample.space = Space(sample.space)
        sample.dataset = sample.dataset or self.name
        sample.id = sample.id or entry.id
        return sample

    def new_sample(self, entry: Entry, image, target, mask=None, **fields) -> Sample:
        """A Sample of this dataset's space; mask defaults to finite and non-zero targets."""
        if mask is None:
            with np.errstate(invalid="ignore"):
                mask = np.isfinite(target) & (target != 0)
        return Sample(
            image=image,
            target=target,
            mask=mask,
            space=self.space,
            dataset=self.name,
            id=entry.id,
            **fields,
        )

    def matching_names(self, pattern: re.Pattern) -> list[tuple[str, re.Match]]:
        """(name, match) for every file name in the source that `pattern` matches."""
        found = ((name, pattern.match(name)) for name in self.source.names())
        return [(name, match) for name, match in found if match is not None]

    def note_problem(self, name: str, problem: str) -> None:
        """Record a file skipped while listing entries (reported by `mixdepth data check`)."""
        self.problems.append(f"{self.source.location(name)}: {problem}")

    def find_partner(self, base: str, suffixes: tuple[str, ...]) -> str | None:
        """The first existing `base + suffix` in the source, or None."""
        for suffix in suffixes:
            if self.source.exists(base + suffix):
                return base + suffix
        return None

    def require(self, name: str | None, what: str, near: str) -> str:
        """Raise a FileFormatError naming the missing partner file."""
        if name is None or not self.source.exists(name):
            raise FileFormatError(
                self.source.location(near), f"missing partner file: {what} ({name or 'not found'})"
            )
        return name


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".JPG", ".JPEG", ".PNG")

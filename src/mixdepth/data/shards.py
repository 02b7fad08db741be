"""WebDataset-style tar shards of decoded samples, for streaming training data.

A shard is a plain tar file; the files of one sample share a key (the name up to the first
dot) and sit next to each other:
    <key>.image.png       RGB uint8 (lossless), or <key>.image.npy float32 when the image
                          is not exactly 8-bit
    <key>.target.npy      float32 (H, W), already masked by the dataset (0 where invalid)
    <key>.mask.npy        bool (H, W)
    <key>.pairs.npy       int64 (N, 5), ordinal samples only
    <key>.intrinsics.npy  float32 (3, 3), when known
    <key>.json            {"space", "dataset", "id"}
Shards hold samples before any transform, so reading a dataset from its directory, from
its tar archive, or from shards gives identical samples. `mixdepth data shard` writes them.
"""

from __future__ import annotations

import glob
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, ClassVar

import numpy as np
import torch.utils.data
from PIL import Image

from mixdepth.data.base import read_transformed
from mixdepth.data.registry import register_dataset
from mixdepth.data.sample import Sample, Space
from mixdepth.errors import FileFormatError, MixdepthError
from mixdepth.io.arrays import parse_npy
from mixdepth.io.png import read_image

_REQUIRED = ("json", "target.npy", "mask.npy")


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def encode_sample(sample: Sample) -> dict[str, bytes]:
    """A sample's shard files: {extension: bytes}."""
    image = np.asarray(sample.image, dtype=np.float32)
    codes = np.round(image * 255.0)
    files: dict[str, bytes] = {}
    if np.array_equal(codes.astype(np.float32) / 255.0, image):
        buffer = io.BytesIO()
        Image.fromarray(codes.astype(np.uint8)).save(buffer, format="PNG", compress_level=1)
        files["image.png"] = buffer.getvalue()
    else:
        files["image.npy"] = _npy(image)
    files["target.npy"] = _npy(np.asarray(sample.target, dtype=np.float32))
    files["mask.npy"] = _npy(np.asarray(sample.mask, dtype=bool))
    if sample.pairs is not None:
        files["pairs.npy"] = _npy(np.asarray(sample.pairs, dtype=np.int64).reshape(-1, 5))
    if sample.intrinsics is not None:
        files["intrinsics.npy"] = _npy(np.asarray(sample.intrinsics, dtype=np.float32))
    meta = {"space": str(sample.space), "dataset": sample.dataset, "id": sample.id}
    files["json"] = json.dumps(meta).encode()
    return files


def decode_sample(files: dict[str, bytes], where: str) -> Sample:
    """Inverse of `encode_sample`; `where` names the shard and key in errors."""
    missing = [ext for ext in _REQUIRED if ext not in files]
    if missing or ("image.png" not in files and "image.npy" not in files):
        raise FileFormatError(where, f"incomplete sample in shard (missing {missing or 'image'})")

    def load(ext: str) -> np.ndarray:
        return parse_npy(files[ext], f"{where}.{ext}")

    if "image.png" in files:
        buffer = io.BytesIO(files["image.png"])
        buffer.name = f"{where}.image.png"
        image = read_image(buffer)
    else:
        image = load("image.npy").astype(np.float32)
    try:
        meta = json.loads(files["json"])
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        space = Space(meta["space"])
    except (ValueError, KeyError, TypeError) as err:
        raise FileFormatError(where, f"invalid json metadata ({err})") from None
    return Sample(
        image=image,
        target=load("target.npy").astype(np.float32),
        mask=load("mask.npy").astype(bool),
        space=space,
        dataset=meta.get("dataset", ""),
        id=meta.get("id", ""),
        pairs=load("pairs.npy") if "pairs.npy" in files else None,
        intrinsics=load("intrinsics.npy") if "intrinsics.npy" in files else None,
    )


def _split_key(name: str) -> tuple[str, str]:
    """'dir/00000001.target.npy' -> ('dir/00000001', 'target.npy')."""
    folder, _, base = name.rpartition("/")
    key, _, ext = base.partition(".")
    return (f"{folder}/{key}" if folder else key), ext


def write_shards(
    dataset,
    out_dir: str | os.PathLike,
    samples_per_shard: int = 1000,
    prefix: str = "shard",
    on_error: str = "raise",
) -> tuple[list[Path], list[str]]:
    """Write `dataset` (items or `read_sample` Samples, before transforms) as tar shards.

    Returns (shard paths, problems). on_error="skip" records unreadable samples as
    "location: problem" and goes on; "raise" stops at the first one.
    """
    if samples_per_shard < 1:
        raise ValueError("samples_per_shard must be >= 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    read = getattr(dataset, "read_sample", dataset.__getitem__)
    paths: list[Path] = []
    problems: list[str] = []
    tar, count, written = None, 0, 0

    def close():
        nonlocal tar
        if tar is not None:
            tar.close()
            os.replace(paths[-1].with_suffix(".tar.partial"), paths[-1])
            tar = None

    for index in range(len(dataset)):
        try:
            sample = read(index)
        except MixdepthError as err:
            if on_error != "skip":
                raise
            problems.append(str(err))
            continue
        if tar is None:
            paths.append(out / f"{prefix}-{len(paths):06d}.tar")
            tar = tarfile.open(
                paths[-1].with_suffix(".tar.partial"), "w", format=tarfile.PAX_FORMAT
            )
            count = 0
        for ext, data in encode_sample(sample).items():
            info = tarfile.TarInfo(f"{written:08d}.{ext}")
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
        count += 1
        written += 1
        if count == samples_per_shard:
            close()
    close()
    return paths, problems


def shard_paths(root: str | os.PathLike) -> list[str]:
    """Shard files of `root`: a directory (all *.tar in it), one .tar file, or a glob."""
    root = str(root)
    if os.path.isdir(root):
        paths = sorted(glob.glob(os.path.join(root, "*.tar")))
    elif os.path.isfile(root):
        paths = [root]
    else:
        paths = sorted(glob.glob(root))
    if not paths:
        raise MixdepthError(f"{root}: no .tar shards found")
    return paths


def iter_shards(streams: list[str | BinaryIO]) -> Iterator[Sample]:
    """Stream Samples from shards read sequentially (paths or non-seekable binary streams,
    e.g. object-storage downloads): members of one key must be adjacent, as written."""
    for stream in streams:
        name = stream if isinstance(stream, str) else getattr(stream, "name", "<stream>")
        kwargs = {"name": stream} if isinstance(stream, str) else {"fileobj": stream}
        try:
            tar = tarfile.open(mode="r|*", **kwargs)
        except (tarfile.TarError, OSError, EOFError) as err:
            raise FileFormatError(name, f"cannot read tar shard ({err})") from None
        with tar:
            key, files = None, {}
            members = iter(tar)
            while True:
                try:
                    member = next(members, None)
                    if member is None:
                        break
                    if not member.isfile():
                        continue
                    data = tar.extractfile(member).read()
                # tarfile raises these for bad checksums, bad headers and truncation
                except (tarfile.TarError, OSError, EOFError, ValueError) as err:
                    raise FileFormatError(name, f"cannot read tar shard ({err})") from None
                member_key, ext = _split_key(member.name)
                if key is not None and member_key != key:
                    yield decode_sample(files, f"{name}:{key}")
                    files = {}
                key = member_key
                files[ext] = data
            if files:
                yield decode_sample(files, f"{name}:{key}")


@register_dataset
class ShardDataset(torch.utils.data.Dataset):
    """Random access to samples stored in tar shards (see module docstring).

    root: a directory of *.tar shards, one shard, or a glob pattern. Each DataLoader worker
    opens its own file handles; members are read by offset, without scanning the tar.
    """

    name: ClassVar[str] = "shards"
    space: Space | None = None  # the first sample's (per-sample spaces are in each Sample)
    valid_range: ClassVar[tuple[float, float]] = (-float("inf"), float("inf"))
    eval_crop: ClassVar[tuple[float, float, float, float] | None] = None
    splits: ClassVar[tuple[str, ...]] = ("all",)
    skip_bad: bool = False

    def __init__(self, root, split: str | None = None, transform=None):
        self.root = str(root)
        self.split = split or "all"
        self.transform = transform
        self.paths = shard_paths(root)
        self.problems: list[str] = []
        self.index: list[tuple[int, str, dict[str, tuple[int, int]]]] = []
        for shard, path in enumerate(self.paths):
            try:
                with tarfile.open(path) as tar:
                    members = [m for m in tar.getmembers() if m.isfile()]
            except (tarfile.TarError, OSError, EOFError, ValueError) as err:
                self.problems.append(f"{path}: cannot read tar shard ({err})")
                continue
            keys: dict[str, dict[str, tuple[int, int]]] = {}
            for member in members:
                key, ext = _split_key(member.name)
                keys.setdefault(key, {})[ext] = (member.offset_data, member.size)
            self.index.extend((shard, key, files) for key, files in keys.items())
        self._handles: dict[int, BinaryIO] = {}
        self._pid = None
        if self.index:  # shards of one dataset share a space: take the first sample's
            shard, key, members = self.index[0]
            handle = self._handle(shard)
            offset, size = members.get("json", (0, 0))
            handle.seek(offset)
            try:
                self.space = Space(json.loads(handle.read(min(size, 1 << 20)))["space"])
            except (ValueError, KeyError, TypeError):
                self.space = None

    def __len__(self) -> int:
        return len(self.index)

    def _handle(self, shard: int) -> BinaryIO:
        if self._pid != os.getpid():
            self._handles, self._pid = {}, os.getpid()
        if shard not in self._handles:
            self._handles[shard] = open(self.paths[shard], "rb")
        return self._handles[shard]

    def locations(self, index: int) -> list[str]:
        shard, key, _ = self.index[index]
        return [f"{self.paths[shard]}:{key}"]

    def read_sample(self, index: int) -> Sample:
        shard, key, members = self.index[index]
        handle = self._handle(shard)
        files = {}
        length = os.fstat(handle.fileno()).st_size
        for ext, (offset, size) in members.items():
            if offset + size > length:  # checked first: a corrupt size must not be allocated
                raise FileFormatError(f"{self.paths[shard]}:{key}.{ext}", "truncated shard")
            handle.seek(offset)
            files[ext] = handle.read(size)
            if len(files[ext]) != size:
                raise FileFormatError(f"{self.paths[shard]}:{key}.{ext}", "truncated shard")
        return decode_sample(files, f"{self.paths[shard]}:{key}")

    def __getitem__(self, index: int) -> Sample:
        return read_transformed(self, index)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handles"], state["_pid"] = {}, None
        return state

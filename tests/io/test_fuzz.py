"""Every reader of a user's file, fed seeded mutations of a small valid file.

A reader may return a result or raise a `MixdepthError`; anything else escaping is a bug. The
number of inputs over all readers is MIXDEPTH_FUZZ_INPUTS (default 12,000); a failure names
the reader, the mutation seed (replay it with `mutate(seed_bytes, seed)`) and the exception.
"""

from __future__ import annotations

import io
import os
import random
import resource
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mixdepth.data.sample import Sample, Space
from mixdepth.data.shards import ShardDataset, iter_shards, write_shards
from mixdepth.errors import MixdepthError
from mixdepth.io import (
    NyuLabeledMat,
    read_diw_csv,
    read_exr,
    read_h5,
    read_image,
    read_kitti_depth,
    read_mask_npy,
    read_npy,
    read_pfm,
    read_raw_float32,
    read_sintel_cam,
    read_sintel_dpt,
    read_tum_depth,
    read_tum_list,
    read_uint_png,
    write_diw_csv,
    write_exr,
    write_h5,
    write_image,
    write_pfm,
    write_png16,
    write_sintel_cam,
    write_sintel_dpt,
    write_tum_list,
    write_uint8_png,
)
from mixdepth.models.checkpoints import (
    read_metadata,
    read_state_dict,
    save_state_dict,
    stored_input_size,
    stored_normalization,
)
from mixdepth.train.checkpoint import load_checkpoint, save_checkpoint
from mixdepth.train.config import load_config

TOTAL = int(os.environ.get("MIXDEPTH_FUZZ_INPUTS", "12000"))
SLOW_INPUT_SECONDS = 2.0  # one input taking longer than this counts as a hang
MAX_RSS_GROWTH = 1 << 30  # bytes of peak memory one reader's campaign may add


# ----------------------------------------------------------------------------- mutations

_HUGE = [
    b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x80",
    b"\xff\xff\xff\xff\xff\xff\xff\xff", b"\x00\x00\x01\x00", b"\x00\x00\x00\x10",
]


def _flip(data: bytearray, rng: random.Random) -> str:
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        bit = rng.randrange(8 * len(data))
        data[bit // 8] ^= 1 << (bit % 8)
    return "bit flips"


def _truncate(data: bytearray, rng: random.Random) -> str:
    del data[rng.randrange(len(data)):]
    return "truncation"


def _insert(data: bytearray, rng: random.Random) -> str:
    at = rng.randrange(len(data) + 1)
    data[at:at] = bytes(rng.randrange(256) for _ in range(rng.choice((1, 2, 4, 16, 64))))
    return "inserted bytes"


def _delete(data: bytearray, rng: random.Random) -> str:
    at = rng.randrange(len(data))
    del data[at : at + rng.choice((1, 2, 4, 16, 64))]
    return "deleted bytes"


def _huge(data: bytearray, rng: random.Random) -> str:
    """A binary size field (near the start, where headers are) or a decimal number set huge."""
    digits = [i for i in range(min(len(data), 4096)) if 48 <= data[i] <= 57]
    if digits and rng.random() < 0.4:
        at = rng.choice(digits)
        end = at
        while end < len(data) and 48 <= data[end] <= 57:
            end += 1
        data[at:end] = rng.choice((b"99999999999", b"4294967296", b"1000000000000", b"-1"))
        return "huge decimal field"
    value = rng.choice(_HUGE)
    if rng.random() < 0.5:
        value = value[::-1]
    limit = min(len(data), 512) if rng.random() < 0.8 else len(data)
    at = rng.randrange(max(limit - len(value), 1))
    data[at : at + len(value)] = value
    return "huge binary field"


MUTATIONS = (_flip, _truncate, _insert, _delete, _huge)


def mutate(seed_bytes: bytes, seed: int) -> tuple[bytes, str]:
    """A mutated copy of `seed_bytes` (1 to 3 mutations chosen by `seed`) and what was done."""
    rng = random.Random(seed)
    data = bytearray(seed_bytes)
    done = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        if not data:
            break
        done.append(rng.choice(MUTATIONS)(data, rng))
    return bytes(data), ", ".join(done)


# ----------------------------------------------------------------------------- seed files


def _file(data: bytes, name: str) -> io.BytesIO:
    buffer = io.BytesIO(data)
    buffer.name = name
    return buffer


def _depth(h: int = 6, w: int = 8) -> np.ndarray:
    return (np.arange(h * w, dtype=np.float32).reshape(h, w) + 1.0) / 7.0


def _rgb(h: int = 6, w: int = 8) -> np.ndarray:
    return np.random.default_rng(0).random((h, w, 3)).astype(np.float32)


def _npz(tmp: Path) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, depth=_depth(), other=np.ones(3))
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _nyu(tmp: Path) -> bytes:
    import h5py

    with h5py.File(tmp / "nyu.mat", "w") as f:
        f.create_dataset("images", data=np.zeros((2, 3, 8, 6), np.uint8))
        f.create_dataset("depths", data=np.ones((2, 8, 6), np.float32))
    return (tmp / "nyu.mat").read_bytes()


def _weights(tmp: Path) -> bytes:
    state = {"conv.weight": torch.randn(4, 3, 1, 1), "conv.bias": torch.randn(4),
             "bn.num_batches_tracked": torch.tensor(3)}
    meta = {"input_size": "64", "mean": "[0.5, 0.5, 0.5]", "std": "[0.5, 0.5, 0.5]"}
    save_state_dict(state, tmp / "w.safetensors", "tiny", metadata=meta)
    return (tmp / "w.safetensors").read_bytes()


def _pt(tmp: Path) -> bytes:
    torch.save({"model": {"conv.weight": torch.randn(4, 3, 1, 1), "conv.bias": torch.randn(4)}},
               tmp / "w.pt")
    return (tmp / "w.pt").read_bytes()


def _config(tmp: Path) -> bytes:
    config = {
        "model": {"name": "tiny", "options": {"width": 0.25}},
        "datasets": [{"name": "folder", "root": "data/a", "label": "a"},
                     {"name": "diw", "root": "data/b", "loss": "ordinal"}],
        "mixing": "uniform", "steps": 10, "batch_size": 4, "crop_size": 64,
        "optimizer": {"lr_encoder": 1.0e-4, "betas": [0.9, 0.999]},
        "schedule": {"kind": "cosine", "warmup_steps": 2}, "seed": 0, "out_dir": "runs/x",
    }
    return yaml.safe_dump(config).encode()


def _samples():
    rng = np.random.default_rng(0)
    ordinal = Sample(rng.random((6, 8, 3)).astype(np.float32), np.zeros((6, 8), np.float32),
                     np.zeros((6, 8), bool), Space.ORDINAL, "diw", "b",
                     pairs=np.array([[0, 1, 2, 3, 1]], np.int64))
    dense = Sample((np.round(rng.random((6, 8, 3)) * 255) / 255).astype(np.float32), _depth(),
                   np.ones((6, 8), bool), Space.METRIC_DEPTH, "tum", "a",
                   intrinsics=np.eye(3, dtype=np.float32))
    return [dense, ordinal]


def _shard(tmp: Path) -> bytes:
    paths, _ = write_shards(_samples(), tmp / "shards", samples_per_shard=10)
    return paths[0].read_bytes()


def _checkpoint_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.BatchNorm2d(2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.randn(1, 3, 4, 4)).mean().backward()
    optimizer.step()
    return model, optimizer


# ----------------------------------------------------------------------------- readers


@dataclass
class Reader:
    """A reader under test: how to make its seed file and how to read one input."""

    name: str
    seed: Callable[[Path], bytes]
    read: Callable[[bytes, Path], object]


def _from_file(write: Callable[[Path], None], name: str) -> Callable[[Path], bytes]:
    def seed(tmp: Path) -> bytes:
        write(tmp / name)
        return (tmp / name).read_bytes()

    return seed


def _write(path: Path, data: bytes) -> None:
    """Replace a file's content (unlinked first: truncating a file in place can wait for the
    disk to flush it)."""
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def _on_disk(read: Callable[[Path], object], name: str) -> Callable[[bytes, Path], object]:
    """For readers that take a path only: write the input to tmp/name first."""

    def run(data: bytes, tmp: Path):
        _write(tmp / name, data)
        return read(tmp / name)

    return run


def _read_weights(path: Path):
    state = read_state_dict(path)
    return state, read_metadata(path), stored_input_size(path), stored_normalization(path)


def _read_shard(path: Path):
    dataset = ShardDataset(path)
    samples = [dataset.read_sample(i) for i in range(len(dataset))]
    return samples, list(iter_shards([str(path)]))


def _read_nyu(data: bytes, tmp: Path):
    mat = NyuLabeledMat(_file(data, "nyu.mat"))
    return [mat.read(i) for i in range(min(len(mat), 3))]


class _CheckpointReader:
    """Loads a training checkpoint whose three files are the (mutated) input.

    Its checksum list is removed, so the mutations reach the file parsers rather than stop
    at the checksum test (tested on its own in tests/train/test_checkpoint.py).
    """

    FILES = ("model.safetensors", "optimizer.safetensors", "state.pt")

    def __init__(self):
        self.dir: Path | None = None
        self.seeds: dict[str, bytes] = {}

    def seed(self, tmp: Path) -> bytes:
        model, optimizer = _checkpoint_model()
        self.dir = save_checkpoint(tmp / "run", 1, model, optimizer, {"history": [1.0]},
                                   {"steps": 2})
        (self.dir / "checksums.json").unlink()
        self.seeds = {name: (self.dir / name).read_bytes() for name in self.FILES}
        return b"".join(len(v).to_bytes(4, "little") + v for v in self.seeds.values())

    def read(self, data: bytes, tmp: Path):
        # the input is the three files, each prefixed with its length; the prefixes may be
        # mutated too, so clamp and write whatever bytes each file gets
        assert self.dir is not None
        pos = 0
        for name in self.FILES:
            size = int.from_bytes(data[pos : pos + 4], "little")
            _write(self.dir / name, data[pos + 4 : pos + 4 + size])
            pos += 4 + size
        model, optimizer = _checkpoint_model()
        return load_checkpoint(self.dir, model, optimizer)


_checkpoints = _CheckpointReader()

READERS = [
    Reader("read_pfm", _from_file(lambda p: write_pfm(p, _depth()), "d.pfm"),
           lambda d, t: read_pfm(_file(d, "d.pfm"))),
    Reader("read_pfm (3 channels)", _from_file(lambda p: write_pfm(p, _rgb(), 1.0, False), "c.pfm"),
           lambda d, t: read_pfm(_file(d, "c.pfm"))),
    Reader("read_sintel_dpt", _from_file(lambda p: write_sintel_dpt(p, _depth()), "d.dpt"),
           lambda d, t: read_sintel_dpt(_file(d, "d.dpt"))),
    Reader("read_sintel_cam", _from_file(lambda p: write_sintel_cam(p, np.eye(3) * 2), "c.cam"),
           lambda d, t: read_sintel_cam(_file(d, "c.cam"))),
    Reader("read_kitti_depth", _from_file(lambda p: write_png16(p, _depth(), 256.0), "k.png"),
           lambda d, t: read_kitti_depth(_file(d, "k.png"))),
    Reader("read_tum_depth", _from_file(lambda p: write_png16(p, _depth(), 5000.0), "t.png"),
           lambda d, t: read_tum_depth(_file(d, "t.png"))),
    Reader("read_uint_png", _from_file(
        lambda p: write_uint8_png(p, (_depth() * 20).astype(np.uint8)), "u.png"),
           lambda d, t: read_uint_png(_file(d, "u.png"))),
    Reader("read_image (png)", _from_file(lambda p: write_image(p, _rgb()), "i.png"),
           lambda d, t: read_image(_file(d, "i.png"))),
    Reader("read_image (jpeg, exif)", _from_file(lambda p: write_image(p, _rgb()), "i.jpg"),
           lambda d, t: read_image(_file(d, "i.jpg"), exif_transpose=True)),
    Reader("read_exr", _from_file(lambda p: write_exr(p, _depth()), "d.exr"),
           lambda d, t: read_exr(_file(d, "d.exr"))),
    Reader("read_npy", lambda t: _npy(_depth()), lambda d, t: read_npy(_file(d, "d.npy"))),
    Reader("read_npy (npz)", _npz, lambda d, t: read_npy(_file(d, "d.npz"), "depth")),
    Reader("read_mask_npy", lambda t: _npy(_depth() > 2),
           lambda d, t: read_mask_npy(_file(d, "m.npy"))),
    Reader("read_h5", _from_file(lambda p: write_h5(p, _depth()), "d.h5"),
           lambda d, t: read_h5(_file(d, "d.h5"), "depth")),
    Reader("NyuLabeledMat", _nyu, _read_nyu),
    Reader("read_raw_float32", lambda t: _depth().tobytes(),
           lambda d, t: read_raw_float32(_file(d, "eth3d"), (6, 8))),
    Reader("read_diw_csv", _from_file(lambda p: write_diw_csv(
        p, [("./DIW_test/a.thumb", np.array([[1, 2, 3, 4, 1]]), (6, 8)),
            ("./DIW_test/b.thumb", np.array([[0, 0, 5, 7, -1]]), (6, 8))]), "diw.csv"),
           lambda d, t: read_diw_csv(_file(d, "diw.csv"))),
    Reader("read_tum_list", _from_file(lambda p: write_tum_list(
        p, [1305031102.175304, 1305031102.211214], ["rgb/a.png", "rgb/b.png"]), "rgb.txt"),
           lambda d, t: read_tum_list(_file(d, "rgb.txt"))),
    Reader("read_state_dict (safetensors)", _weights, _on_disk(_read_weights, "w.safetensors")),
    Reader("read_state_dict (pt)", _pt, _on_disk(_read_weights, "w.pt")),
    Reader("load_checkpoint", _checkpoints.seed, _checkpoints.read),
    Reader("load_config", _config,
           _on_disk(lambda p: load_config(p, check_paths=False), "config.yaml")),
    Reader("ShardDataset / iter_shards", _shard, _on_disk(_read_shard, "s.tar")),
]


def _inputs_per_reader() -> int:
    return max(1, -(-TOTAL // len(READERS)))


def test_mutate_is_reproducible_and_changes_the_file():
    data = bytes(range(256)) * 4
    assert mutate(data, 7) == mutate(data, 7)
    assert all(mutate(data, s)[0] != data for s in range(200))
    assert {mutate(data, s)[1].split(",")[0] for s in range(200)} == {
        "bit flips", "truncation", "inserted bytes", "deleted bytes", "huge decimal field",
        "huge binary field",
    }


@pytest.mark.parametrize("reader", READERS, ids=[r.name for r in READERS])
def test_reader_raises_only_mixdepth_errors(reader: Reader, tmp_path):
    torch.set_num_threads(1)
    seed_bytes = reader.seed(tmp_path)
    reader.read(seed_bytes, tmp_path)  # the seed itself is valid
    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    escaped, slow = [], []
    count = _inputs_per_reader()
    base = 1000 * (READERS.index(reader) + 1) * 1000
    for seed in range(base, base + count):
        data, how = mutate(seed_bytes, seed)
        started = time.perf_counter()
        try:
            reader.read(data, tmp_path)
        except MixdepthError:
            pass
        except Exception as err:  # anything else escaping is what this test looks for
            escaped.append(f"seed {seed} ({how}): {type(err).__module__}.{type(err).__name__}: "
                           f"{str(err)[:200]}")
        seconds = time.perf_counter() - started
        if seconds > SLOW_INPUT_SECONDS:
            slow.append(f"seed {seed} ({how}): {seconds:.1f} s")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - start_rss
    shown = "\n".join(escaped[:10])
    assert not escaped, f"{reader.name}: {len(escaped)} of {count} inputs escaped:\n{shown}"
    assert not slow, f"{reader.name}: slow inputs: {slow[:10]}"
    assert grown < MAX_RSS_GROWTH, f"{reader.name}: peak memory grew by {grown >> 20} MiB"


def test_fuzz_catches_an_escape(tmp_path):
    """The harness reports a reader that lets a non-Mixdepth exception out."""

    def fragile(data: bytes, tmp: Path):
        if data[:1] != b"P":
            raise KeyError("boom")

    reader = Reader("fragile", lambda t: b"Pf\n1 1\n-1\n\0\0\0\0", fragile)
    READERS.append(reader)
    try:
        expected = r"fragile: \d+ of \d+ inputs escaped:\s+seed \d+ \(.*\): builtins.KeyError"
        with pytest.raises(AssertionError, match=expected):
            test_reader_raises_only_mixdepth_errors(reader, tmp_path)
    finally:
        READERS.remove(reader)


def test_tar_helper_is_a_valid_shard(tmp_path):
    data = _shard(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert {m.name.split(".", 1)[1] for m in tar.getmembers()} >= {"json", "target.npy"}

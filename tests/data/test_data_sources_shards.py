"""Directory, tar archive and tar shards give identical samples; DataLoader workers work."""

import io
import tarfile

import numpy as np
import pytest
import torch
from data_layouts import make_diw, make_kitti, make_sintel

from mixdepth.data import TrainTransform, collate_samples, create_dataset
from mixdepth.data.shards import iter_shards, write_shards
from mixdepth.errors import FileFormatError


def _same(a, b):
    assert (a.id, a.dataset, str(a.space)) == (b.id, b.dataset, str(b.space))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.target, b.target)
    np.testing.assert_array_equal(a.mask, b.mask)
    for x, y in ((a.pairs, b.pairs), (a.intrinsics, b.intrinsics)):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(x, y)


def _tar(folder, path, top="release"):
    with tarfile.open(path, "w") as tar:
        tar.add(folder, arcname=top)
    return path


@pytest.mark.parametrize("name", ["sintel", "kitti", "diw"])
def test_directory_tar_and_shards_identical(tmp_path, name):
    rng = np.random.default_rng(7)
    root = tmp_path / "root"
    kwargs = {}
    if name == "sintel":
        make_sintel(root, rng, scenes=("alley_1", "cave_2"), n=2)
    elif name == "kitti":
        make_kitti(root, rng, frames=(1, 2, 3))
        kwargs["split"] = "all"
    else:
        make_diw(root, rng, n=3)
    folder = create_dataset(name, root, **kwargs)
    archive = create_dataset(name, _tar(root, tmp_path / "release.tar"), **kwargs)
    gz = create_dataset(name, _tar(root, tmp_path / "release.tar.gz"), **kwargs)
    paths, problems = write_shards(folder, tmp_path / "shards", samples_per_shard=2)
    assert problems == [] and len(paths) == (len(folder) + 1) // 2
    shards = create_dataset("shards", tmp_path / "shards")
    streamed = list(iter_shards([str(p) for p in paths]))
    assert len(folder) == len(archive) == len(gz) == len(shards) == len(streamed) >= 3
    for i in range(len(folder)):
        for other in (archive[i], gz[i], shards[i], streamed[i]):
            _same(folder[i], other)
    assert "release.tar:release/" in archive.locations(0)[0]
    assert shards.space is folder.space


def test_shards_stream_from_file_objects(tmp_path):
    make_sintel(tmp_path / "root", np.random.default_rng(1), n=2)
    folder = create_dataset("sintel", tmp_path / "root")
    paths, _ = write_shards(folder, tmp_path / "shards")
    stream = io.BytesIO(paths[0].read_bytes())  # a non-file source, read once front to back
    samples = list(iter_shards([stream]))
    for i, sample in enumerate(samples):
        _same(folder[i], sample)


def test_write_shards_skips_bad_files(tmp_path):
    make_sintel(tmp_path / "root", np.random.default_rng(2), n=3)
    bad = tmp_path / "root/training/depth/alley_1/frame_0002.dpt"
    bad.write_bytes(bad.read_bytes()[:20])
    folder = create_dataset("sintel", tmp_path / "root")
    with pytest.raises(FileFormatError, match="frame_0002.dpt"):
        write_shards(folder, tmp_path / "a")
    paths, problems = write_shards(folder, tmp_path / "b", on_error="skip")
    assert len(create_dataset("shards", tmp_path / "b")) == 2
    assert len(problems) == 1 and "frame_0002.dpt" in problems[0]


def test_dataloader_with_workers_over_tar_and_shards(tmp_path):
    make_sintel(tmp_path / "root", np.random.default_rng(3), n=4)
    transform = TrainTransform(size=16, jitter=False, flip=False)
    _tar(tmp_path / "root", tmp_path / "sintel.tar")
    archive = create_dataset("sintel", tmp_path / "sintel.tar", transform=transform)
    write_shards(create_dataset("sintel", tmp_path / "root"), tmp_path / "shards")
    shards = create_dataset("shards", tmp_path / "shards", transform=transform)
    for dataset in (archive, shards):
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=2, num_workers=2, collate_fn=collate_samples
        )
        batches = list(loader)
        assert sum(b["image"].shape[0] for b in batches) == 4
        assert batches[0]["image"].shape[1:] == (3, 16, 16)
        assert batches[0]["disparity"].shape[1:] == (16, 16)


def test_skip_bad_replaces_unreadable_samples(tmp_path):
    make_sintel(tmp_path, np.random.default_rng(5), n=3)
    bad = tmp_path / "training/depth/alley_1/frame_0002.dpt"
    bad.write_bytes(b"garbage")
    strict = create_dataset("sintel", tmp_path)
    with pytest.raises(FileFormatError, match="frame_0002.dpt"):
        strict[1]
    tolerant = create_dataset("sintel", tmp_path, skip_bad=True)
    assert tolerant[1].id == "alley_1/frame_0003"
    assert len(tolerant.problems) == 1 and "frame_0002.dpt" in tolerant.problems[0]


def test_iteration_stops_and_negative_indices(tmp_path):
    make_sintel(tmp_path, np.random.default_rng(6), n=2)
    for skip_bad in (False, True):
        dataset = create_dataset("sintel", tmp_path, skip_bad=skip_bad)
        assert [s.id for s in dataset] == ["alley_1/frame_0001", "alley_1/frame_0002"]
        assert dataset[-1].id == "alley_1/frame_0002"
        with pytest.raises(IndexError):
            dataset[2]

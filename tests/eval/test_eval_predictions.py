"""Precomputed prediction files (--predictions DIR) and the scoring of one sample."""

import numpy as np
import pytest
import torch

from mixdepth.data.sample import Sample, Space
from mixdepth.eval.benchmarks import load_benchmark
from mixdepth.eval.evaluate import FilePredictions, SkipImage, score_sample
from mixdepth.io import write_pfm, write_png16

NYU = load_benchmark("nyu")
DIW = load_benchmark("diw")


def _sample(sample_id="scene/frame_0001", shape=(6, 8), depth=None, mask=None, **kw):
    rng = np.random.default_rng(0)
    depth = rng.uniform(1.0, 9.0, shape).astype(np.float32) if depth is None else depth
    return Sample(
        image=rng.random((*shape, 3), dtype=np.float32),
        target=depth,
        mask=np.ones(shape, bool) if mask is None else mask,
        space=Space.METRIC_DEPTH,
        dataset="test",
        id=sample_id,
        **kw,
    )


@pytest.mark.parametrize("suffix", ["npy", "pfm", "png"])
def test_prediction_formats_are_read_as_written(tmp_path, suffix):
    values = np.arange(48, dtype=np.float32).reshape(6, 8) + 1.0
    path = tmp_path / f"frame_0001.{suffix}"
    {"npy": lambda: np.save(path, values), "pfm": lambda: write_pfm(path, values),
     "png": lambda: write_png16(path, values, scale=1.0)}[suffix]()
    got = FilePredictions(tmp_path)(_sample(), NYU, "")
    np.testing.assert_array_equal(got, values)


def test_prediction_lookup_by_id_benchmark_and_subset(tmp_path):
    source = FilePredictions(tmp_path)
    sample = _sample("scene/frame_0001")
    with pytest.raises(SkipImage, match="missing prediction"):
        source(sample, NYU, "")
    (tmp_path / "scene").mkdir()
    np.save(tmp_path / "frame_0001.npy", np.full((6, 8), 1.0, np.float32))
    assert source(sample, NYU, "")[0, 0] == 1.0
    np.save(tmp_path / "scene_frame_0001.npy", np.full((6, 8), 2.0, np.float32))
    assert source(sample, NYU, "")[0, 0] == 2.0
    np.save(tmp_path / "scene" / "frame_0001.npy", np.full((6, 8), 3.0, np.float32))
    assert source(sample, NYU, "")[0, 0] == 3.0
    (tmp_path / "nyu" / "rooms").mkdir(parents=True)  # DIR/<benchmark>/<subset>/ wins
    np.save(tmp_path / "nyu" / "rooms" / "frame_0001.npy", np.full((6, 8), 4.0, np.float32))
    assert source(sample, NYU, "rooms")[0, 0] == 4.0


def test_prediction_resolution_and_space(tmp_path):
    low = np.random.default_rng(1).uniform(0.1, 1.0, (3, 4)).astype(np.float32)
    np.save(tmp_path / "frame_0001.npy", low)
    got = FilePredictions(tmp_path)(_sample(), NYU, "")
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(low)[None, None], size=(6, 8), mode="bilinear", align_corners=False
    )[0, 0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.save(tmp_path / "frame_0001.npy", np.ones((8, 6), np.float32))  # transposed
    with pytest.raises(SkipImage, match="shape mismatch"):
        FilePredictions(tmp_path)(_sample(), NYU, "")
    depth = np.random.default_rng(2).uniform(1.0, 5.0, (6, 8)).astype(np.float32)
    depth[0, 0] = 0.0  # a hole in a depth prediction: disparity 0 (infinitely far)
    np.save(tmp_path / "frame_0001.npy", depth)
    got = FilePredictions(tmp_path, space="depth")(_sample(), NYU, "")
    np.testing.assert_allclose(got[1:], 1.0 / depth[1:], rtol=1e-6)
    assert got[0, 0] == 0.0
    (tmp_path / "frame_0001.npy").write_bytes(b"not an array")
    with pytest.raises(SkipImage, match="unreadable prediction"):
        FilePredictions(tmp_path)(_sample(), NYU, "")


def test_score_sample_skips_with_reasons():
    def predict(sample, benchmark, subset):
        return 1.0 / sample.target

    out_of_range = _sample(depth=np.full((6, 8), 50.0, np.float32))  # beyond NYU's 10 m
    with pytest.raises(SkipImage, match="empty mask"):
        score_sample(predict, out_of_range, NYU, "", "disparity")
    cropped_away = _sample(mask=np.pad(np.ones((1, 8), bool), ((0, 5), (0, 0))))
    with pytest.raises(SkipImage, match="empty mask"):
        score_sample(predict, cropped_away, NYU, "", "disparity", crop=(2 / 6, 1.0, 0.0, 1.0))
    with pytest.raises(SkipImage, match="non-finite prediction"):
        score_sample(lambda *a: np.full((6, 8), np.nan), _sample(), NYU, "", "disparity")
    with pytest.raises(SkipImage, match="shape mismatch"):
        score_sample(lambda *a: np.ones((6, 7)), _sample(), NYU, "", "disparity")
    row = score_sample(predict, _sample(), NYU, "", "disparity", crop=(2 / 6, 1.0, 0.0, 1.0))
    assert row["valid_pixels"] == 32 and row["absrel"] == pytest.approx(0.0, abs=1e-6)


def test_score_sample_ordinal_pairs():
    disparity = np.arange(48, dtype=np.float32).reshape(6, 8)
    pairs = np.array([[5, 7, 0, 0, 1], [0, 0, 5, 7, -1], [0, 0, 5, 7, 1]], np.int64)
    sample = _sample(pairs=pairs)
    sample.space = Space.ORDINAL
    row = score_sample(lambda *a: disparity, sample, DIW, "", "disparity")
    assert row == {"whdr": pytest.approx(1 / 3), "pairs": 3}
    sample.pairs = np.zeros((0, 5), np.int64)
    with pytest.raises(SkipImage, match="no pairs"):
        score_sample(lambda *a: disparity, sample, DIW, "", "disparity")
    sample.pairs = np.array([[9, 9, 0, 0, 1]])
    with pytest.raises(SkipImage, match="bad pairs"):
        score_sample(lambda *a: disparity, sample, DIW, "", "disparity")

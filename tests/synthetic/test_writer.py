"""Generated sets load through the real loaders; determinism across worker counts; presets
and the command line."""

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mixdepth.data import create_dataset
from mixdepth.errors import ConfigError
from mixdepth.eval.benchmarks import load_benchmark
from mixdepth.eval.evaluate import benchmark_subsets
from mixdepth.synthetic import HELDOUT_FAMILIES
from mixdepth.synthetic.personalities import PERSONALITIES
from mixdepth.synthetic.writer import generate_preset, generate_set, make_sample, worker_pool

SIZE = 48


def _load_all(entry):
    ds = create_dataset(entry["dataset"], entry["root"], split=entry["split"])
    # ids may start with a per-family folder (Sintel): order by the sample's file name
    return sorted((ds[i] for i in range(len(ds))), key=lambda s: s.id.rsplit("/", 1)[-1])


@pytest.mark.parametrize("name", list(PERSONALITIES))
def test_each_personality_loads_through_its_real_loader(tmp_path, name):
    n = 3
    entry = generate_set(tmp_path / name, name, n, seed=5, size=SIZE)
    p = PERSONALITIES[name]
    assert entry["dataset"] == p.dataset and entry["space"] == str(p.space)
    samples = _load_all(entry)
    assert len(samples) == n
    assert (tmp_path / name / "contact_sheet.png").stat().st_size > 0
    for index, sample in enumerate(samples):
        r, a, _ = make_sample(name, p.families, 5, SIZE, index)
        assert sample.image.shape == (SIZE, SIZE, 3)
        assert str(sample.space) == str(p.space)
        if p.dataset == "diw":
            np.testing.assert_array_equal(sample.pairs, a.pairs[:1])
            continue
        mask = sample.mask
        if p.dataset in ("tum", "kitti"):  # 16-bit PNG depth: quantised, same holes
            np.testing.assert_array_equal(mask, a.mask)
            step = 1 / 5000 if p.dataset == "tum" else 1 / 256
            assert np.abs(sample.target[mask] - a.target[mask]).max() <= step
        elif p.dataset == "hrwsi":  # disparity codes: the same disparity up to a scale
            np.testing.assert_array_equal(mask, a.mask)
            ratio = sample.target[mask] / a.target[mask]
            assert np.std(ratio) / np.mean(ratio) < 0.01
        elif p.dataset == "sintel":  # exact depth; the Sintel loader keeps 0.001-72 m
            keep = a.mask & (a.target <= 72)
            np.testing.assert_array_equal(mask, keep)
            np.testing.assert_array_equal(sample.target[mask], a.target[keep])
            np.testing.assert_allclose(sample.intrinsics, r.intrinsics, rtol=1e-6)
        else:  # megadepth h5, folder pfm + mask
            np.testing.assert_array_equal(mask, a.mask)
            np.testing.assert_array_equal(sample.target[mask], a.target[mask])
        if p.dataset in ("tum", "kitti", "sintel"):  # lossless RGB
            np.testing.assert_array_equal(sample.image, np.round(r.image * 255) / 255)
        if p.dataset == "kitti":
            np.testing.assert_allclose(sample.intrinsics, r.intrinsics, rtol=1e-5)


def test_one_and_two_workers_write_identical_sets(tmp_path):
    one = generate_set(tmp_path / "one", "movies-3d", 4, seed=3, size=32, workers=1)
    two = generate_set(tmp_path / "two", "movies-3d", 4, seed=3, size=32, workers=2)
    for a, b in zip(_load_all(one), _load_all(two), strict=True):
        assert a.id == b.id
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.target, b.target)
        np.testing.assert_array_equal(a.mask, b.mask)
    for path in sorted((tmp_path / "one").rglob("*.pfm")):
        other = tmp_path / "two" / path.relative_to(tmp_path / "one")
        assert path.read_bytes() == other.read_bytes()
    with worker_pool(2) as pool:  # a pool shared by several sets gives the same samples
        shared = generate_set(tmp_path / "shared", "movies-3d", 4, seed=3, size=32, pool=pool)
    for a, b in zip(_load_all(one), _load_all(shared), strict=True):
        np.testing.assert_array_equal(a.target, b.target)


def test_samples_depend_on_the_seed(tmp_path):
    a = make_sample("exact", ("clutter",), 0, 32, 0)[0]
    b = make_sample("exact", ("clutter",), 1, 32, 0)[0]
    c = make_sample("exact", ("clutter",), 0, 32, 1)[0]
    assert not np.array_equal(a.image, b.image) and not np.array_equal(a.image, c.image)


def test_preset_writes_train_and_heldout_sets_and_mix_yaml(tmp_path):
    path = generate_preset("default-mix", tmp_path, n_per_set=1, seed=0, size=32)
    mix = yaml.safe_load(path.read_text())
    assert [s["name"] for s in mix["train"]] == list(PERSONALITIES)
    assert {s["name"] for s in mix["heldout"]} == set(HELDOUT_FAMILIES)
    assert {"landscape", "forest", "still-life"} <= set(HELDOUT_FAMILIES)
    for entry in mix["train"] + mix["heldout"]:
        ds = create_dataset(entry["dataset"], tmp_path / entry["root"], split=entry["split"])
        assert len(ds) == 1
        sample = ds[0]
        assert str(sample.space) == entry["space"]
        assert sample.pairs is not None if entry["dataset"] == "diw" else sample.mask.any()
    train_families = {f for s in mix["train"] for f in s["families"]}
    assert train_families.isdisjoint(s["name"] for s in mix["heldout"])
    assert (tmp_path / "heldout" / "forest" / "training" / "depth" / "forest").is_dir()
    # the synthetic-heldout benchmark finds every held-out family of the preset
    subsets = benchmark_subsets(load_benchmark("synthetic-heldout"), tmp_path)
    assert [name for name, _ in subsets] == sorted(HELDOUT_FAMILIES)


def test_bad_options_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="family"):
        generate_set(tmp_path, "exact", 1, families=("moon",))
    with pytest.raises(ConfigError, match="n"):
        generate_set(tmp_path, "exact", 0)
    with pytest.raises(ConfigError, match="preset"):
        generate_preset("everything", tmp_path)


def test_an_existing_set_is_replaced_only_when_asked(tmp_path):
    generate_set(tmp_path / "s", "sfm", 2, size=16)
    with pytest.raises(ConfigError, match="not empty"):
        generate_set(tmp_path / "s", "sfm", 1, size=16)
    entry = generate_set(tmp_path / "s", "sfm", 1, size=16, overwrite=True)
    assert len(_load_all(entry)) == 1  # no stale sample of the first run


def _run_cli(monkeypatch, args):
    from mixdepth.cli import main

    monkeypatch.setattr(sys, "argv", ["mixdepth", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code


def test_synth_command(tmp_path, monkeypatch, capsys):
    out = tmp_path / "lidar"
    args = ["synth", "--personality", "street-lidar", "--n", "2", "--seed", "1", "--size", "32",
            "--out", str(out)]
    assert _run_cli(monkeypatch, args) in (0, None)
    assert len(create_dataset("kitti", out, split="train")) == 2
    assert Path(out / "contact_sheet.png").exists()
    assert _run_cli(monkeypatch, ["synth", "--personality", "kinect", "--out", str(out)]) == 2
    assert "personality" in capsys.readouterr().err
    assert _run_cli(monkeypatch, ["synth", "--out", str(out)]) == 2


def test_synth_help_names_every_family():
    from typer.testing import CliRunner

    from mixdepth.cli.app import app
    from mixdepth.synthetic import FAMILIES

    result = CliRunner().invoke(app, ["synth", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    for family in FAMILIES:
        assert family in result.output, family


def test_synth_uses_every_available_core_by_default_with_the_same_output(tmp_path, monkeypatch):
    import mixdepth.synthetic.writer as writer

    used = []
    real_pool = writer.worker_pool
    monkeypatch.setattr(writer, "available_cores", lambda: 2)
    monkeypatch.setattr(writer, "worker_pool", lambda n: used.append(n) or real_pool(n))
    common = ["synth", "--personality", "sfm", "--n", "4", "--seed", "2", "--size", "32"]
    assert _run_cli(monkeypatch, [*common, "--out", str(tmp_path / "default")]) in (0, None)
    assert used == [2]
    assert _run_cli(monkeypatch, [*common, "-j", "1", "--out", str(tmp_path / "one")]) in (0, None)
    assert used == [2]
    files = sorted(p for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert len(files) > 4
    for path in files:
        other = tmp_path / "default" / path.relative_to(tmp_path / "one")
        assert path.read_bytes() == other.read_bytes(), path.name

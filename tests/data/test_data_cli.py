"""`mixdepth data check` and `mixdepth data shard`."""

import numpy as np
import pytest
from data_layouts import make_megadepth, make_sintel, make_tum
from typer.testing import CliRunner

from mixdepth.cli import app

runner = CliRunner()


def test_check_clean_dataset(tmp_path):
    make_tum(tmp_path, np.random.default_rng(0))
    result = runner.invoke(app, ["data", "check", str(tmp_path), "--dataset", "tum"])
    assert result.exit_code == 0, result.output
    assert "samples found" in result.output and "16x24 (3)" in result.output
    assert "metric_depth" in result.output


def test_check_reports_every_problem_file(tmp_path):
    rng = np.random.default_rng(1)
    make_sintel(tmp_path, rng, scenes=("a", "b"), n=2)
    (tmp_path / "training/final/a/frame_0001.png").unlink()  # missing partner
    dpt = tmp_path / "training/depth/b/frame_0002.dpt"
    dpt.write_bytes(b"\x00" * 40)  # wrong magic
    nan = tmp_path / "training/depth/b/frame_0001.dpt"
    data = bytearray(nan.read_bytes())
    data[12:] = np.full(16 * 24, np.nan, "<f4").tobytes()
    nan.write_bytes(bytes(data))  # NaN-only map
    result = runner.invoke(app, ["data", "check", str(tmp_path), "-d", "sintel"])
    assert result.exit_code == 1
    output = result.output.replace("\n", "")
    assert "final/a/frame_0001.png" in output and "missing partner" in output
    assert "b/frame_0002.dpt" in output and "magic" in output
    assert "b/frame_0001.dpt" in output and "finite" in output
    assert "1 of 4 without problems" in output


def test_user_errors_exit_2_with_one_line(tmp_path, monkeypatch, capsys):
    from mixdepth.cli import main

    for args, message in (
        (["-d", "nope"], "unknown dataset 'nope'"),
        (["-d", "tum"], "no tum samples found"),
        (["-d", "sintel", "-o", "bad"], "expected key=value"),
    ):
        monkeypatch.setattr("sys.argv", ["mixdepth", "data", "check", str(tmp_path), *args])
        with pytest.raises(SystemExit) as exit_:
            main()
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err.replace("\n", "")


def test_dataset_options_are_passed(tmp_path):
    make_sintel(tmp_path, np.random.default_rng(4), n=2)
    args = ["data", "check", str(tmp_path), "-d", "sintel", "-o", "render_pass=clean"]
    assert runner.invoke(app, args).exit_code == 0
    args[-1] = "render_pass=albedo"
    assert runner.invoke(app, args).exit_code != 0


def test_shard_command(tmp_path):
    make_megadepth(tmp_path / "md", np.random.default_rng(2), n=3)
    out = tmp_path / "shards"
    args = ["data", "shard", str(tmp_path / "md"), "-d", "megadepth", "--out", str(out)]
    result = runner.invoke(app, [*args, "--samples-per-shard", "2"])
    assert result.exit_code == 0, result.output
    assert "wrote 3 samples into 2 shard(s)" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["megadepth-000000.tar", "megadepth-000001.tar"]
    result = runner.invoke(app, ["data", "check", str(out), "-d", "shards"])
    assert result.exit_code == 0, result.output
    assert "depth_up_to_scale (3)" in result.output

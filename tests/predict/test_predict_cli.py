import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from predict_helpers import random_image
from typer.testing import CliRunner

from mixdepth.cli import app, main
from mixdepth.cli.predict import collect_inputs, output_names
from mixdepth.inference import Predictor, max_relative_difference


def save(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def run_main(monkeypatch, args: list[str]) -> int:
    """Run the console entry point; return its exit code."""
    monkeypatch.setattr(sys, "argv", ["mixdepth", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code


def test_folder_with_a_corrupt_file(tmp_path, tiny_weights):
    inputs = tmp_path / "photos"
    first = save(inputs / "a" / "x.png", random_image(40, 56, seed=1))
    save(inputs / "b" / "x.png", random_image(48, 48, seed=2))
    save(inputs / "b" / "deep" / "y.jpg", random_image(36, 60, seed=3))
    (inputs / "b" / "[red]broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (inputs / ".hidden.png").write_bytes(b"ignored")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["predict", str(inputs), "-o", str(out), "--weights", str(tiny_weights),
              "--format", "pfm,png16,color,npy,ply", "--batch-size", "2", "--side-by-side"],
    )
    assert result.exit_code == 1, result.output
    assert "[red]broken.png" in result.output and "1 input(s) failed" in result.output
    assert ".hidden" not in result.output
    assert "3 image(s)" in result.output
    for name in ("a/x", "b/x", "y"):
        for suffix in (".pfm", ".npy", ".ply", ".png", "_color.png", "_side_by_side.png"):
            assert (out / f"{name}{suffix}").is_file(), f"{name}{suffix}"
    assert not (out / "broken.npy").exists()
    # raw outputs hold the prediction at the input resolution
    expected = Predictor(weights=tiny_weights).predict(first)
    saved = np.load(out / "a" / "x.npy")
    assert saved.shape == (40, 56)
    assert max_relative_difference(saved, expected) < 1e-5


def test_glob_and_missing_inputs(tmp_path, tiny_weights):
    save(tmp_path / "in" / "one.png", random_image(32, 32))
    save(tmp_path / "in" / "two.png", random_image(32, 40))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["predict", str(tmp_path / "in" / "t*.png"), str(tmp_path / "nope.png"), "-o",
              str(out), "--weights", str(tiny_weights), "-f", "npy", "--dtype", "bfloat16"],
    )
    assert result.exit_code == 1
    assert "nope.png" in result.output and "no such file" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["two.npy"]


def test_collect_inputs_skips_the_output_folder(tmp_path):
    save(tmp_path / "a.png", random_image(8, 8))
    save(tmp_path / "depth" / "a_color.png", random_image(8, 8))
    found = collect_inputs([str(tmp_path), str(tmp_path / "a.png"), str(tmp_path / "z*.jpg")],
                           exclude=tmp_path / "depth")
    assert found.files == [tmp_path / "a.png"]
    assert found.failures == [(str(tmp_path / "z*.jpg"), "no file matches this pattern")]


def test_output_names_disambiguate_equal_stems(tmp_path):
    files = [tmp_path / "p" / "a" / "x.png", tmp_path / "p" / "b" / "x.png",
             tmp_path / "p" / "y.png", tmp_path / "q" / "z.png", tmp_path / "q" / "z.jpg"]
    assert output_names(files) == ["a/x", "b/x", "y", "z_png", "z_jpg"]


def test_missing_weights_file_stops_with_exit_code_2(tmp_path, monkeypatch, capsys):
    save(tmp_path / "a.png", random_image(16, 16))
    code = run_main(monkeypatch, ["predict", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"),
                                  "--weights", str(tmp_path / "missing.safetensors")])
    assert code == 2
    err = capsys.readouterr().err.replace("\n", "")  # the entry point's console may wrap
    assert "missing.safetensors: weights file not found" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_incompatible_weights_file_stops_with_exit_code_2(tmp_path, monkeypatch, capsys):
    save(tmp_path / "a.png", random_image(16, 16))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    code = run_main(monkeypatch, ["predict", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"),
                                  "--weights", str(junk)])
    assert code == 2
    assert "junk.safetensors" in capsys.readouterr().err.replace("\n", "")


def test_bad_options_are_reported(tmp_path, monkeypatch, capsys):
    save(tmp_path / "a.png", random_image(16, 16))
    for option, value in (("--format", "jpeg"), ("--colormap", "rainbow"), ("--dtype", "int8")):
        code = run_main(monkeypatch, ["predict", str(tmp_path / "a.png"), "-o",
                                      str(tmp_path / "o"), "--model", "tiny", option, value])
        assert code == 2
        assert value in capsys.readouterr().err.replace("\n", "")


def test_compile_with_onnx_is_refused(tmp_path, monkeypatch, capsys):
    save(tmp_path / "a.png", random_image(16, 16))
    code = run_main(monkeypatch, ["predict", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"),
                                  "--onnx", str(tmp_path / "m.onnx"), "--compile"])
    assert code == 2
    assert "--compile applies to PyTorch models" in capsys.readouterr().err.replace("\n", "")
    assert not (tmp_path / "o").exists()


def test_outputs_never_overwrite_inputs(tmp_path, tiny_weights):
    original = random_image(24, 24)
    image = save(tmp_path / "pic.png", original)
    result = CliRunner().invoke(
        app, ["predict", str(image), "-o", str(tmp_path), "--weights", str(tiny_weights),
              "-f", "png16"],
    )
    assert result.exit_code == 1
    assert "overwrite" in result.output
    np.testing.assert_array_equal(np.asarray(Image.open(image)), original)


def test_size_sets_the_working_size(tmp_path, tiny_weights, monkeypatch, capsys):
    image = save(tmp_path / "in" / "p.png", random_image(40, 80, seed=4))
    result = CliRunner().invoke(
        app, ["predict", str(image), "-o", str(tmp_path / "out"), "--weights", str(tiny_weights),
              "--format", "npy", "--size", "128"],
    )
    assert result.exit_code == 0, result.output
    sized = Predictor(weights=tiny_weights, input_size=128)
    assert sized.network_shape(40, 80) == (64, 128)
    assert Predictor(weights=tiny_weights).network_shape(40, 80) == (32, 64)  # recorded: 64
    saved = np.load(tmp_path / "out" / "p.npy")
    assert saved.shape == (40, 80)
    assert max_relative_difference(saved, sized.predict(image)) < 1e-5
    assert max_relative_difference(saved, Predictor(weights=tiny_weights).predict(image)) > 1e-3
    code = run_main(monkeypatch, ["predict", str(image), "-o", str(tmp_path / "o2"),
                                  "--weights", str(tiny_weights), "--size", "8"])
    assert code == 2 and "--size" in capsys.readouterr().err

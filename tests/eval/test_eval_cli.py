"""`mixdepth eval` end to end, and the model path (tiny, random init) through the Predictor."""

import json
import sys

import eval_layouts
import numpy as np
import pytest
from typer.testing import CliRunner

from mixdepth.cli import app, main
from mixdepth.eval import evaluate
from mixdepth.eval.report import read_rows


def _predictions(fx, folder, make):
    folder.mkdir(parents=True, exist_ok=True)
    for key, depth in fx.depth.items():
        np.save(folder / f"{key.replace('/', '_')}.npy", make(depth).astype(np.float32))


def _invoke(*args):
    return CliRunner().invoke(app, ["eval", *args, "--no-progress"])


def _main_exit_code(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["mixdepth", "eval", *args, "--no-progress"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code


def test_single_benchmark_from_prediction_files(tmp_path):
    fx = eval_layouts.tum(tmp_path / "tum")
    _predictions(fx, tmp_path / "preds", lambda d: np.where(d > 0, 2.0 / np.maximum(d, 1e-3), 0))
    out = tmp_path / "out"
    result = _invoke(
        "--predictions", str(tmp_path / "preds"), "--benchmark", "tum",
        "--root", str(fx.root), "--out", str(out),
    )
    assert result.exit_code == 0, result.output
    assert "3 of 3 images evaluated" in result.output
    assert "| preds | 0.00 |" in result.output  # a perfect prediction, TUM in % bad pixels
    assert len(read_rows(out / "preds" / "tum" / "per_image.csv")) == 3
    assert (out / "table.md").exists() and (out / "preds" / "tum" / "summary.json").exists()


def test_comparison_of_rows_and_benchmarks(tmp_path):
    data = tmp_path / "data"
    tum = eval_layouts.tum(data / "tum")
    sintel = eval_layouts.sintel(data / "sintel")
    for fx in (tum, sintel):
        _predictions(fx, tmp_path / "good" / fx.benchmark, lambda d: 1.0 / np.maximum(d, 0.1))
        _predictions(fx, tmp_path / "flat" / fx.benchmark, lambda d: np.sqrt(d + 1.0))
    args = [
        "--predictions", f"good={tmp_path / 'good'}", "--predictions", f"flat={tmp_path / 'flat'}",
        "--benchmarks", "tum,sintel", "--out", str(tmp_path / "out"),
    ]
    keyed = _invoke(*args, "--root", f"tum={data / 'tum'}", "--root", f"sintel={data / 'sintel'}")
    assert keyed.exit_code == 0, keyed.output
    lines = [ln for ln in keyed.output.splitlines() if ln.startswith("|")]
    assert lines[0] == "| model | Sintel (AbsRel) | TUM (δ>1.25 (%)) |"
    assert [ln.split("|")[1].strip() for ln in lines[2:]] == ["good", "flat"]
    parent = _invoke(*args, "--root", str(data))  # DIR/<benchmark>/, resumed: same numbers
    assert parent.exit_code == 0, parent.output
    assert [ln for ln in parent.output.splitlines() if ln.startswith("|")] == lines


def test_exit_codes(tmp_path, monkeypatch):
    fx = eval_layouts.sintel(tmp_path / "sintel")
    (tmp_path / "empty").mkdir()
    nothing = _invoke("--predictions", str(tmp_path / "empty"), "--benchmark", "sintel",
                      "--root", str(fx.root), "--out", str(tmp_path / "out"))
    assert nothing.exit_code == 1
    assert "no image evaluated" in nothing.output and "n/a" in nothing.output
    root = str(fx.root)
    preds = str(tmp_path / "empty")
    assert _main_exit_code(monkeypatch, "--predictions", preds, "--benchmark", "imagenet",
                           "--root", root) == 2
    assert _main_exit_code(monkeypatch, "--predictions", preds, "--benchmark", "folder",
                           "--root", root) == 2  # folder needs --cap
    assert _main_exit_code(monkeypatch, "--predictions", preds, "--benchmark", "sintel",
                           "--root", str(tmp_path / "nowhere")) == 2
    assert _main_exit_code(monkeypatch, "--benchmark", "sintel", "--root", root) == 2
    assert _main_exit_code(monkeypatch, "--model", "tiny", "--weights", str(tmp_path / "no.pt"),
                           "--benchmark", "sintel", "--root", root) == 2
    assert _main_exit_code(monkeypatch, "--predictions", preds, "--benchmark", "sintel",
                           "--root", root, "--align", "sideways") == 2


def test_tiny_model_path_matches_its_own_bilinear_predictions(tmp_path):
    from mixdepth.data import create_dataset
    from mixdepth.inference import Predictor
    from mixdepth.models import save_weights

    fx = eval_layouts.kitti(tmp_path / "kitti")
    predictor = Predictor("tiny")
    by_model = evaluate("kitti", fx.root, model=predictor, limit=1, progress=False)
    assert by_model.summary["evaluated"] == 1 and by_model.label == "tiny"
    # The same predictor's output, resized bilinearly to the ground truth, saved as a file.
    sample = create_dataset("kitti", fx.root, split="eigen_test")[0]
    prediction = predictor.predict(
        sample.image, output_size=sample.target.shape, interpolation="bilinear"
    )
    preds = tmp_path / "preds"
    preds.mkdir()
    np.save(preds / f"{sample.id.replace('/', '_')}.npy", prediction)
    by_files = evaluate("kitti", fx.root, predictions=preds, limit=1, progress=False)
    assert by_files.rows[0]["id"] == by_model.rows[0]["id"] == sample.id
    assert by_files.rows[0]["absrel"] == pytest.approx(by_model.rows[0]["absrel"], rel=1e-6)
    # The command line with --weights alone reads the architecture from the file.
    save_weights(predictor.model, tmp_path / "tiny.safetensors")
    args = ["--weights", str(tmp_path / "tiny.safetensors"), "--benchmark", "kitti",
            "--root", str(fx.root)]
    result = _invoke(*args, "--limit", "1", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "1 of 1 images evaluated" in result.output
    rows = read_rows(tmp_path / "out" / "tiny" / "kitti" / "per_image.csv")
    assert rows[0]["absrel"] == pytest.approx(by_model.rows[0]["absrel"], rel=1e-5)
    # --size: another working size, recorded with the run (so a resume cannot mix sizes)
    sized = [*args, "--limit", "1", "--size", "96"]
    refused = _invoke(*sized, "--out", str(tmp_path / "out"))
    assert "different input_size" in str(refused.exception)
    result = _invoke(*sized, "--out", str(tmp_path / "out96"))
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "out96" / "tiny" / "kitti" / "run.json").read_text())
    assert run["input_size"] == 96


def test_folder_benchmark_with_dataset_options(tmp_path):
    fx = eval_layouts.folder(tmp_path / "mine")
    (fx.root / "dataset.yaml").unlink()  # the space comes from the command line instead
    _predictions(fx, tmp_path / "preds", lambda d: np.sqrt(d + 1.0))
    args = ["--predictions", str(tmp_path / "preds"), "--benchmark", "folder",
            "--root", str(fx.root), "--out", str(tmp_path / "out"), "--cap", "20"]
    result = _invoke(*args, "--dataset-option", "space=metric_depth")
    assert result.exit_code == 0, result.output
    assert "2 of 2 images evaluated" in result.output
    assert "| preds |" in result.output
    without = _invoke(*args, "--no-resume")
    assert without.exit_code != 0 and "space" in str(without.exception)

"""The end-to-end demonstration at toy sizes: every stage runs and leaves its outputs."""

import pytest

from mixdepth.demo import DemoSettings, photo_paths, run_demo


@pytest.mark.slow
def test_quick_demo_runs_every_stage(tmp_path, monkeypatch):
    monkeypatch.setattr("mixdepth.inference.config.default_weights_path", lambda: None)
    result = run_demo(tmp_path / "demo", DemoSettings.quick())
    outputs = result["outputs"]
    assert outputs["synthetic mix"].is_file()
    for strategy in ("uniform", "pareto"):
        assert outputs[f"{strategy} model"].is_file()
    table = result["table"]
    assert "lite2-uniform" in table and "lite2-pareto" in table
    assert (tmp_path / "demo" / "eval" / "table.md").is_file()
    for photo in photo_paths():
        assert (outputs["photo depth maps"] / f"{photo.stem}_color.png").is_file()
        assert (outputs["photo depth maps"] / f"{photo.stem}.pfm").is_file()

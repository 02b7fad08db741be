"""`mixdepth train` end to end on tiny synthetic sets written in real dataset layouts."""

import pytest
import yaml
from typer.testing import CliRunner

from conftest import TINY_MODEL
from mixdepth.cli import app
from mixdepth.errors import ConfigError
from mixdepth.synthetic.writer import generate_set


@pytest.fixture(scope="module")
def synthetic_mix(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    for personality in ("indoor-rgbd", "ordinal"):
        generate_set(root / personality, personality, n=2, seed=0, size=48, contact_sheet=False)
    return root


def _write_config(tmp_path, synthetic_mix) -> str:
    config = {
        "model": TINY_MODEL,
        "datasets": [
            {"name": "tum", "root": str(synthetic_mix / "indoor-rgbd"), "label": "indoor"},
            {"name": "diw", "root": str(synthetic_mix / "ordinal")},
        ],
        "mixing": "pareto",
        "steps": 2,
        "batch_size": 4,
        "crop_size": 32,
        "num_workers": 0,
        "progress": False,
        "report": False,
        "log_every": 1,
        "out_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_train_resume_and_check(tmp_path, synthetic_mix):
    config = _write_config(tmp_path, synthetic_mix)
    runner = CliRunner()
    result = runner.invoke(app, ["train", config, "steps=1"])
    assert result.exit_code == 0, result.output
    assert "trained to step 1" in result.output
    assert "indoor" in result.output and "diw" in result.output  # the losses per dataset
    result = runner.invoke(app, ["train", config, "--resume"])
    assert result.exit_code == 0, result.output
    assert "trained to step 2" in result.output
    summary = yaml.safe_load((tmp_path / "run" / "summary.json").read_text())
    assert summary["loss_kinds"] == ["trim", "ordinal"]  # ordinal data gets the ranking loss
    assert summary["step"] == 2

    result = runner.invoke(app, ["train", config, "mixing=uniform", "--check"])
    assert result.exit_code == 0
    assert yaml.safe_load(result.output)["mixing"] == "uniform"


def test_config_errors_name_the_key(tmp_path, synthetic_mix):
    config = _write_config(tmp_path, synthetic_mix)
    runner = CliRunner()
    result = runner.invoke(app, ["train", config, f"datasets[1].root={tmp_path / 'nowhere'}"])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith("datasets[1].root: directory not found:")
    result = runner.invoke(app, ["train", config, "learning_rate=0.1"])
    assert isinstance(result.exception, ConfigError)
    assert "learning_rate: unknown key" in str(result.exception)
    result = runner.invoke(app, ["train", config, "model.options.depth=3"])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith("model.options: model 'tiny' has no option(s) depth")
    # a bad option value is caught by --check too, before any training starts
    result = runner.invoke(app, ["train", config, "--check", "model.options.head_activation=gelu"])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith("model.options: head activation must be one of")
    result = runner.invoke(app, ["train", config, "--check", "model.options.width=abc"])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith("model.options: cannot build 'tiny' with")

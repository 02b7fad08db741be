from typer.testing import CliRunner

from mixdepth.cli import app


def test_help_lists_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "info" in result.output


def test_info_prints_versions():
    import torch

    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert torch.__version__ in result.output
    assert "cpu threads" in result.output

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


def test_main_prints_user_errors_in_one_line_with_brackets_intact(monkeypatch, capsys):
    import pytest

    import mixdepth.cli as cli
    from mixdepth.errors import MixdepthError

    def failing_app():
        raise MixdepthError("datasets[1].root: directory not found: /nowhere [x]")

    monkeypatch.setattr(cli, "app", failing_app)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "datasets[1].root: directory not found: /nowhere [x]" in err.replace("\n", "")

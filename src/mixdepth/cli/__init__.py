"""The `mixdepth` command: one typer app; each command module registers itself on it.

Command modules keep heavy imports (torch, models, datasets) inside the command functions so
that `mixdepth --help` stays fast.
"""

import sys

from mixdepth.cli.app import app
from mixdepth.errors import MixdepthError

# Importing a module registers its commands on `app`.
from mixdepth.cli import info  # noqa: E402,F401  isort: skip
from mixdepth.cli import data  # noqa: E402,F401  isort: skip
from mixdepth.cli import convert  # noqa: E402,F401  isort: skip
from mixdepth.cli import eval  # noqa: E402,F401  isort: skip
from mixdepth.cli import train  # noqa: E402,F401  isort: skip
from mixdepth.cli import predict  # noqa: E402,F401  isort: skip
from mixdepth.cli import align  # noqa: E402,F401  isort: skip
from mixdepth.cli import export  # noqa: E402,F401  isort: skip
from mixdepth.cli import synth  # noqa: E402,F401  isort: skip
from mixdepth.cli import demo  # noqa: E402,F401  isort: skip
from mixdepth.cli import serve  # noqa: E402,F401  isort: skip


def main() -> None:
    """Console-script entry point: user errors become one red line and exit code 2."""
    try:
        app()
    except MixdepthError as err:
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
        sys.exit(2)


__all__ = ["app", "main"]

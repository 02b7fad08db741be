"""The typer application object that every command module adds to."""

import typer

app = typer.Typer(
    name="mixdepth",
    help="Robust monocular relative depth: train on mixed datasets, evaluate zero-shot, predict.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """Robust monocular relative depth: train on mixed datasets, evaluate zero-shot, predict."""

"""`mixdepth serve`: a local web page for the depth of a photo."""

from __future__ import annotations

from pathlib import Path

import typer

from mixdepth.cli.app import app


@app.command()
def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on. The default serves this machine "
        "only; another address (0.0.0.0: every interface) exposes the page, which has no "
        "login, to everyone who can reach this machine.",
    ),
    port: int = typer.Option(7860, "--port", min=0, max=65535, help="Port (0: any free one)."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Registered model name (with --weights: its architecture)."
    ),
    weights: Path | None = typer.Option(
        None, "--weights", "-w", help="Weights file (.safetensors or official .pt)."
    ),
    size: int = typer.Option(
        None, "--size", min=32, help="Working size of the network; default: the size the "
        "weights record, else the architecture's."
    ),
    open_browser: bool = typer.Option(
        False, "--open", help="Open the page in the default web browser."
    ),
) -> None:
    """Serve a local web page: drop a photo, see its depth and a 3D view, download the maps.

    The model is loaded once; the page needs nothing from the internet. Ctrl-C stops it.
    """
    import webbrowser

    from rich.console import Console
    from rich.markup import escape

    from mixdepth.errors import MixdepthError
    from mixdepth.inference import Predictor

    try:
        from mixdepth.serve.app import create_app, make_server
    except ImportError as err:
        raise MixdepthError(f"mixdepth serve needs the app extra ({err.name} is missing): "
                            "pip install 'mixdepth[app]'") from None
    from mixdepth.serve import DepthService

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    predictor = Predictor(model, weights, input_size=size)
    if model is not None and weights is None:
        console.print(f"[yellow]warning:[/] --model {model} without --weights: random weights, "
                      "the depth maps are meaningless (use for testing only)")
    service = DepthService(predictor)
    shown = f"[{host}]" if ":" in host else host

    def ready(bound: int) -> None:
        url = f"http://{shown}:{bound}/"
        Console(highlight=False, soft_wrap=True).print(escape(
            f"mixdepth serve: {predictor.config.name} at {url} (Ctrl-C to stop)"
        ))
        if open_browser:
            webbrowser.open(url)

    server = make_server(create_app(service), host, port, ready)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        service.close()
    if not server.started:
        raise typer.Exit(code=1)

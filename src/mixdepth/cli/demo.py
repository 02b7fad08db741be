"""`mixdepth demo`: the end-to-end demonstration (synthetic mix -> train -> eval -> predict)."""

from pathlib import Path

import typer

from mixdepth.cli.app import app


@app.command()
def demo(
    out: Path = typer.Option(Path("demo"), "--out", "-o", help="Folder for every output."),
    quick: bool = typer.Option(False, help="A seconds-long run with tiny sizes (for testing)."),
    steps: int = typer.Option(None, help="Training steps per mixing strategy."),
    n_per_set: int = typer.Option(None, help="Synthetic samples per set."),
) -> None:
    """Render a synthetic mix, train lite2 (encoder from ImageNet) with uniform and Pareto
    mixing, evaluate zero-shot on held-out scene families, and predict depth for real
    photographs. Rerunning reuses what is already in --out."""
    from dataclasses import replace

    from mixdepth.demo import DemoSettings, run_demo

    settings = DemoSettings.quick() if quick else DemoSettings()
    if steps is not None:
        settings = replace(settings, steps=steps)
    if n_per_set is not None:
        settings = replace(settings, n_per_set=n_per_set)
    run_demo(out, settings)

"""`mixdepth export`: a model as ONNX (dynamic batch, height and width), verified."""

from __future__ import annotations

from pathlib import Path

import typer

from mixdepth.cli.app import app

# Largest max relative difference between onnxruntime and PyTorch accepted after export.
EXPORT_TOLERANCE = 1e-4


@app.command()
def export(
    output: Path = typer.Option(..., "--output", "-o", help="Output file (model.onnx)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Registered model name."),
    weights: Path | None = typer.Option(None, "--weights", "-w", help="Weights file."),
    format: str = typer.Option("onnx", "--format", help="Export format (onnx)."),
    height: int | None = typer.Option(None, "--height", help="Example height (multiple of 32)."),
    width: int | None = typer.Option(None, "--width", help="Example width (multiple of 32)."),
    opset: int | None = typer.Option(None, "--opset", help="ONNX opset (default: exporter's)."),
    exporter: str = typer.Option(
        "auto", "--exporter", help="auto (dynamo, else torchscript), dynamo or torchscript."
    ),
) -> None:
    """Export a model to ONNX with dynamic height/width and check it against PyTorch.

    The graph maps a normalised (B, 3, H, W) image (H, W multiples of 32) to (B, H, W)
    relative inverse depth; `mixdepth predict --onnx FILE` adds the pre/post-processing.
    """
    import torch
    from rich.console import Console

    from mixdepth.errors import ConfigError, MixdepthError
    from mixdepth.inference import build_model
    from mixdepth.inference.onnx import compare_onnx, export_onnx

    if format != "onnx":
        raise ConfigError(f"--format: only onnx is supported, got {format!r}")
    console = Console(highlight=False, soft_wrap=True)
    if model is not None and weights is None:
        Console(stderr=True, soft_wrap=True).print(
            f"[yellow]warning:[/] --model {model} without --weights: exporting random weights"
        )
    net = build_model(model, weights)
    path, used = export_onnx(net, output, height, width, opset, exporter)
    difference = compare_onnx(path, net, sizes=((64, 96), (96, 64)))
    size_mb = path.stat().st_size / 1e6
    console.print(f"wrote {path} ({net.config.name}, {size_mb:.1f} MB, {used} exporter); "
                  f"onnxruntime vs PyTorch max relative difference {difference:.1e} "
                  "at 64x96 and 96x64")
    with torch.inference_mode():
        silent = not bool(net(torch.randn(1, 3, 64, 96)).abs().max() > 0)
    if silent:
        Console(stderr=True, soft_wrap=True).print(
            "[yellow]warning:[/] the model outputs zeros on random input (random weights?), so "
            "the comparison above shows little"
        )
    if difference > EXPORT_TOLERANCE:
        raise MixdepthError(
            f"{path}: the exported graph differs from PyTorch (max relative difference "
            f"{difference:.1e} > {EXPORT_TOLERANCE:.0e})"
        )

"""`mixdepth convert`: a PyTorch weights file (e.g. an official MiDaS .pt) to safetensors."""

import json
from pathlib import Path

import typer

from mixdepth.cli.app import app


@app.command()
def convert(
    src: Path = typer.Argument(
        ..., metavar="IN", help="Weights to read (.pt/.pth state dict, .safetensors)."
    ),
    dst: Path = typer.Argument(..., metavar="OUT", help="Output .safetensors file."),
    model: str = typer.Option(
        None, "--model", "-m", help="Architecture name; guessed from the keys when omitted."
    ),
    size: int = typer.Option(
        None, "--size", help="Record this working size (longer side, a multiple of 32) in the "
        "output instead of the input's."
    ),
    half: bool = typer.Option(
        False, "--half", help="Store floating-point tensors as float16 (half the file size; "
        "they load into a float32 model)."
    ),
) -> None:
    """Convert weights to safetensors after checking they strict-load into the architecture.

    The working size and normalisation a mixdepth weights file records are kept.
    """
    from rich.console import Console

    from mixdepth.errors import ConfigError
    from mixdepth.models.checkpoints import (
        architecture_of,
        check_state_dict,
        read_metadata,
        read_state_dict,
        save_state_dict,
        stored_input_size,
        stored_normalization,
    )
    from mixdepth.models.registry import create_on_meta

    state = read_state_dict(src)
    name, options = architecture_of(src, state, model)
    check_state_dict(create_on_meta(name, **options), state, src)
    metadata = {"source": src.name}
    if size is not None and (size < 32 or size % 32):
        raise ConfigError(f"--size: must be a multiple of 32 of at least 32, got {size}")
    size = size or stored_input_size(src)
    if size is not None:
        metadata["input_size"] = str(size)
    if read_metadata(src).get("model") == name:  # the normalisation belongs to that model
        metadata.update({k: json.dumps(v) for k, v in stored_normalization(src).items()})
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save_state_dict(state, dst, name, options, metadata=metadata)
    n_params = sum(t.numel() for t in state.values())
    Console().print(f"{dst}: model {name}, {len(state)} tensors, {n_params / 1e6:.1f} M values")

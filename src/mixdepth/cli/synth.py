"""`mixdepth synth`: generate synthetic RGB-D sets in the real datasets' layouts."""

from __future__ import annotations

from pathlib import Path

import typer

from mixdepth.cli.app import app


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", help="Output folder."),
    personality: str = typer.Option(
        None, "--personality", "-p",
        help="indoor-rgbd, street-lidar, sfm, web-stereo, movies-3d, ordinal or exact.",
    ),
    family: list[str] = typer.Option(
        [], "--family", "-f",
        help="Scene family (repeatable): indoor, street, clutter, tabletop, objects "
        "(training); landscape, forest, still-life (held out). "
        "Default: the personality's training families.",
    ),
    n: int = typer.Option(100, "--n", help="Number of samples."),
    seed: int = typer.Option(0, "--seed", help="Random seed; samples depend only on it."),
    size: int = typer.Option(256, "--size", help="Image side in pixels."),
    workers: int = typer.Option(
        None, "--workers", "-j",
        help="Worker processes. Default: the CPU cores this process may use. The output is "
        "the same whatever the number.",
    ),
    preset: str = typer.Option(
        None, "--preset", help="default-mix: every personality plus the held-out families."
    ),
    n_per_set: int = typer.Option(200, "--n-per-set", help="Samples per set of a preset."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing sets."),
) -> None:
    """Render procedural scenes and write them as a dataset (or a whole preset mix).

    One set: `mixdepth synth --personality sfm --n 100 --seed 0 --size 256 --out DIR`.
    The preset writes DIR/train/<personality>/, DIR/heldout/<family>/ and DIR/mix.yaml.
    Every set gets a contact_sheet.png (image | target colour map | mask).
    """
    from rich.console import Console
    from tqdm import tqdm

    from mixdepth.errors import ConfigError
    from mixdepth.synthetic.personalities import get_personality
    from mixdepth.synthetic.writer import available_cores, generate_preset, generate_set

    console = Console()
    if (preset is None) == (personality is None):
        raise ConfigError("synth: give exactly one of --personality NAME or --preset NAME")
    if personality is not None:
        get_personality(personality)  # fail before any progress bar appears
    if workers is None:
        workers = available_cores()
    elif workers < 1:
        raise ConfigError(f"--workers: must be at least 1, got {workers}")
    bars: list[tqdm] = []

    def progress(label: str, total: int):
        bar = tqdm(total=total, desc=label, unit="img", leave=True)
        bars.append(bar)
        return bar.update

    try:
        if preset is not None:
            path = generate_preset(preset, out, n_per_set, seed, size, workers, progress,
                                   overwrite)
            console.print(f"wrote {path}")
        else:
            entry = generate_set(out, personality, n, seed, size, tuple(family) or None,
                                 workers, progress(personality, n), overwrite=overwrite)
            console.print(
                f"wrote {entry['n']} {personality} samples ({entry['dataset']} layout, "
                f"space {entry['space']}) to {out}; contact sheet: {out / 'contact_sheet.png'}",
                highlight=False,
            )
    finally:
        for bar in bars:
            bar.close()

"""`mixdepth data check` and `mixdepth data shard`: inspect datasets, write tar shards."""

from __future__ import annotations

from pathlib import Path

import typer

from mixdepth.cli.app import app

data_app = typer.Typer(
    help="Inspect datasets on disk and write WebDataset-style tar shards.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


def _parse_options(options: list[str]) -> dict:
    """['space=metric_depth', 'scale=1000'] -> {'space': 'metric_depth', 'scale': 1000}."""
    import yaml

    from mixdepth.errors import ConfigError

    parsed = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option: expected key=value, got {item!r}")
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed


def _open(root: Path, dataset: str, split: str | None, options: list[str]):
    from mixdepth.data import create_dataset

    return create_dataset(dataset, root, split=split, **_parse_options(options))


@data_app.command()
def check(
    root: Path = typer.Argument(..., help="Dataset directory, tar archive or shard folder."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name (see docs)."),
    split: str = typer.Option(None, "--split", "-s", help="Split (default: the dataset's)."),
    option: list[str] = typer.Option([], "--option", "-o", help="Dataset option key=value."),
    limit: int = typer.Option(0, help="Read only the first N samples (0 = all)."),
) -> None:
    """Read every sample; print counts, sizes, value ranges and every problem file.

    Exits with code 1 if any file is missing, unreadable or holds no valid value.
    """
    from collections import Counter

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from mixdepth.errors import MixdepthError

    console = Console()
    ds = _open(root, dataset, split, option)
    read = getattr(ds, "read_sample", ds.__getitem__)
    total = len(ds) if limit <= 0 else min(limit, len(ds))
    problems = list(getattr(ds, "problems", []))
    sizes: Counter = Counter()
    spaces: Counter = Counter()
    low, high, valid_fraction, pairs, good = np.inf, -np.inf, [], 0, 0
    for index in range(total):
        try:
            sample = read(index)
        except MixdepthError as err:
            problems.append(str(err))
            continue
        sizes[sample.image.shape[:2]] += 1
        spaces[str(sample.space)] += 1
        where = ", ".join(ds.locations(index)) if hasattr(ds, "locations") else sample.id
        if str(sample.space) == "ordinal":
            if sample.pairs is None or len(sample.pairs) == 0:
                problems.append(f"{where}: ordinal sample without point pairs")
                continue
            pairs += len(sample.pairs)
        else:
            valid = sample.target[sample.mask]
            if valid.size == 0:
                problems.append(f"{where}: no valid target pixel")
                continue
            low, high = min(low, float(valid.min())), max(high, float(valid.max()))
            valid_fraction.append(valid.size / sample.mask.size)
        good += 1

    table = Table(title=f"{dataset} ({getattr(ds, 'split', '')}) at {root}", show_header=False)
    table.add_row("samples found", str(len(ds)))
    table.add_row("samples read", f"{good} of {total} without problems")
    table.add_row("space", ", ".join(f"{k} ({v})" for k, v in spaces.items()) or "-")
    common = ", ".join(f"{h}x{w} ({n})" for (h, w), n in sizes.most_common(5))
    table.add_row("image sizes (HxW)", common or "-")
    if valid_fraction:
        table.add_row("target range", f"{low:.6g} .. {high:.6g}")
        table.add_row("valid pixels", f"{100 * float(np.mean(valid_fraction)):.1f} % on average")
    if pairs:
        table.add_row("ordinal pairs", str(pairs))
    table.add_row("problems", str(len(problems)))
    console.print(table)
    for problem in problems:
        console.print(f"[red]problem:[/] {problem}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(code=1)


@data_app.command()
def shard(
    root: Path = typer.Argument(..., help="Dataset directory or tar archive."),
    out: Path = typer.Option(..., "--out", help="Folder for the shards."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name (see docs)."),
    split: str = typer.Option(None, "--split", "-s", help="Split (default: the dataset's)."),
    option: list[str] = typer.Option([], "--option", "-o", help="Dataset option key=value."),
    samples_per_shard: int = typer.Option(1000, help="Samples per tar shard."),
    prefix: str = typer.Option("", help="Shard file prefix (default: dataset name)."),
    skip_bad: bool = typer.Option(False, help="Skip unreadable samples instead of stopping."),
) -> None:
    """Write a dataset as WebDataset-style tar shards (samples before augmentation)."""
    from rich.console import Console

    from mixdepth.data.shards import write_shards

    console = Console()
    ds = _open(root, dataset, split, option)
    paths, problems = write_shards(
        ds,
        out,
        samples_per_shard=samples_per_shard,
        prefix=prefix or dataset,
        on_error="skip" if skip_bad else "raise",
    )
    written = len(ds) - len(problems)
    console.print(f"wrote {written} samples into {len(paths)} shard(s) in {out}")
    for problem in problems:
        console.print(f"[red]skipped:[/] {problem}", highlight=False, soft_wrap=True)

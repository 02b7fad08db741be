"""`mixdepth eval`: zero-shot evaluation of models or prediction folders on benchmarks."""

from __future__ import annotations

from pathlib import Path

import typer

from mixdepth.cli.app import app


def _split_commas(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _keyed(values: list[str] | None, keys: list[str], option: str) -> tuple[dict, list[str]]:
    """Split KEY=VALUE entries whose KEY is one of `keys` from plain VALUE entries."""
    keyed, plain = {}, []
    for value in values or []:
        key, sep, rest = value.partition("=")
        if sep and key in keys:
            if key in keyed:
                from mixdepth.errors import ConfigError

                raise ConfigError(f"{option}: {key} given twice")
            keyed[key] = rest
        else:
            plain.append(value)
    return keyed, plain


def resolve_roots(benchmarks: list[str], roots: list[str] | None) -> dict[str, Path]:
    """Dataset root of each benchmark from --root values.

    `--root NAME=DIR` sets one benchmark's root; a plain `--root DIR` is the root of the only
    benchmark, or, with several benchmarks, the parent folder holding DIR/<benchmark>/.
    """
    from mixdepth.errors import ConfigError

    keyed, plain = _keyed(roots, benchmarks, "--root")
    if len(plain) > 1:
        raise ConfigError("--root: give one plain DIR, or NAME=DIR for each benchmark")
    resolved = {}
    for name in benchmarks:
        if name in keyed:
            resolved[name] = Path(keyed[name])
        elif plain and len(benchmarks) == 1:
            resolved[name] = Path(plain[0])
        elif plain:
            resolved[name] = Path(plain[0]) / Path(name).stem
        else:
            raise ConfigError(f"--root: no dataset root for benchmark {name} (--root {name}=DIR)")
    return resolved


@app.command("eval")
def eval_command(
    model: list[str] = typer.Option(
        None, "--model", "--models", help="Model name(s) from the registry; comma separated."
    ),
    weights: list[str] = typer.Option(
        None,
        help="Weights file (.safetensors/.pt; alone, its architecture is read from it); "
        "NAME=PATH when several models are given.",
    ),
    benchmark: list[str] = typer.Option(
        ...,
        "--benchmark",
        "--benchmarks",
        help="nyu, kitti, tum, eth3d, sintel, diw, folder, synthetic-heldout or a .yaml file; "
        "comma separated.",
    ),
    root: list[str] = typer.Option(
        ..., help="Dataset root: DIR for one benchmark, NAME=DIR per benchmark, or a parent DIR "
        "holding DIR/<benchmark>/."
    ),
    predictions: list[str] = typer.Option(
        None,
        help="Folder of precomputed predictions (.npy/.pfm/.png named by image stem) instead "
        "of a model; LABEL=DIR to name its table row; repeatable.",
    ),
    pred_space: str = typer.Option("disparity", help="Space of --predictions: disparity|depth."),
    align: str = typer.Option(
        "disparity", help="disparity (published protocol), depth, median or none."
    ),
    crop: bool = typer.Option(
        None, "--crop/--no-crop", help="Standard evaluation crop (default: the benchmark's)."
    ),
    cap: float = typer.Option(None, help="Depth cap in metres (required for `folder`)."),
    split: str = typer.Option(None, help="Dataset split (default: the benchmark's)."),
    limit: int = typer.Option(None, help="Evaluate at most N images (per held-out family)."),
    out: Path = typer.Option(Path("runs/eval"), help="Output directory."),
    label: str = typer.Option(None, help="Table row name (one model or prediction folder)."),
    dataset_option: list[str] = typer.Option(
        None, help="KEY=VALUE passed to the dataset loader (e.g. space=metric_depth)."
    ),
    size: int = typer.Option(
        None, "--size", min=32, help="Working size of the network (default: the one the weights "
        "record, else the architecture's)."
    ),
    device: str = typer.Option("cpu", help="cpu, cuda, mps."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip evaluated images."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
) -> None:
    """Evaluate zero-shot on benchmarks: per-image CSV, JSON summary and the paper's table.

    Exit code 0 when every (model, benchmark) pair evaluated at least one image, 1 when one
    evaluated none (all skipped: see its CSV), 2 for a usage or input error.
    """
    import yaml
    from rich.console import Console

    from mixdepth.errors import ConfigError
    from mixdepth.eval import ModelPredictions, evaluate, markdown_table
    from mixdepth.eval.report import TABLE_NAME

    console = Console()
    models = _split_commas(model)
    benchmarks = _split_commas(benchmark)
    weight_of, plain_weights = _keyed(weights, models, "--weights")
    if not models and len(plain_weights) == 1:
        models = [None]  # the architecture is read from the weights file
    if not models and not predictions:
        raise ConfigError("give --model NAME (--models A,B), --weights PATH or --predictions DIR")
    roots = resolve_roots(benchmarks, root)
    if plain_weights:
        if len(models) != 1 or len(plain_weights) > 1:
            raise ConfigError("--weights: with several models write NAME=PATH for each")
        weight_of[models[0]] = plain_weights[0]
    if label and len(models) + len(predictions or []) > 1:
        raise ConfigError("--label names a single row; use LABEL=DIR for --predictions")
    options = {}
    for item in dataset_option or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--dataset-option must be KEY=VALUE: {item!r}")
        options[key] = yaml.safe_load(value)

    for name in models:  # fail on a missing weights file before any model runs
        path = weight_of.get(name)
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"--weights {path}: file not found")
    # Rows: (label, how to make the prediction source). Models are loaded one at a time.
    rows: list[tuple[str | None, object]] = [(label, name) for name in models]
    for entry in predictions or []:
        key, sep, rest = entry.partition("=")
        row, folder = (key, rest) if sep and not Path(entry).exists() else (label, entry)
        rows.append((row, {"predictions": folder, "pred_space": pred_space}))

    summaries, empty = [], []
    for row_label, spec in rows:
        if isinstance(spec, dict):
            source = spec
        else:
            model_source = ModelPredictions(spec, weight_of.get(spec), device, input_size=size)
            if model_source.weights is None:
                console.print(
                    f"[yellow]warning:[/] --model {spec} without --weights: random weights",
                    highlight=False,
                )
            source = {"model": model_source}
        for name in benchmarks:
            result = evaluate(
                name,
                roots[name],
                **source,
                align=align,
                crop=crop,
                cap=cap,
                split=split,
                limit=limit,
                out=out,
                label=row_label,
                device=device,
                resume=resume,
                progress=progress,
                dataset_options=options or None,
            )
            s = result.summary
            reasons = ", ".join(f"{k}: {v}" for k, v in s["skip_reasons"].items())
            console.print(
                f"{result.label} on {result.benchmark.name}: {s['evaluated']} of {s['images']} "
                f"images evaluated" + (f", {s['skipped']} skipped ({reasons})" if reasons else "")
                + f" -> {result.directory}",
                highlight=False,
            )
            if s["constant_predictions"]:
                console.print(
                    f"[yellow]warning:[/] {s['constant_predictions']} constant prediction(s): "
                    "scored as a constant depth (see docs/evaluation.md)",
                    highlight=False,
                )
            if s["inverted_predictions"]:
                console.print(
                    f"[yellow]warning:[/] {s['inverted_predictions']} of {s['evaluated']} "
                    "prediction(s) fall where the ground-truth disparity rises (near and far "
                    "swapped); the alignment's negative scale hides it in the metrics (see "
                    "docs/evaluation.md)",
                    highlight=False,
                )
            if s["evaluated"] == 0:
                empty.append(f"{result.label}/{result.benchmark.name}")
            summaries.append(s)
    console.print()
    console.print(markdown_table(summaries), highlight=False, markup=False)
    console.print(f"table of every run in {out}: {out / TABLE_NAME}", highlight=False)
    if empty:
        console.print(
            f"[bold red]no image evaluated[/] for {', '.join(empty)}: see the skip reasons "
            "in per_image.csv",
            highlight=False,
        )
        raise typer.Exit(1)

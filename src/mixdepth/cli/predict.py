"""`mixdepth predict`: depth maps for images, folders, globs and videos."""

from __future__ import annotations

import glob
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import typer

from mixdepth.cli.app import app

GLOB_CHARS = "*?["


@dataclass
class Inputs:
    """Files to process (in order) and inputs that could not be used, with the reason."""

    files: list[Path] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


def _walk(folder: Path, exclude: Path | None) -> list[Path]:
    """Non-hidden files under folder (recursive, sorted), except those under `exclude`."""
    found = []
    for root, dirs, names in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and (exclude is None or (root_path / d).resolve() != exclude)
        )
        found += [root_path / n for n in sorted(names) if not n.startswith(".")]
    return found


def collect_inputs(arguments: list[str], exclude: Path | None = None) -> Inputs:
    """Expand files, folders (recursively) and glob patterns into a list of files.

    Folders skip hidden entries and the output folder `exclude`; each file is listed once.
    """
    inputs = Inputs()
    exclude = exclude.resolve() if exclude is not None else None
    seen: set[Path] = set()
    for argument in arguments:
        path = Path(argument)
        if path.exists():
            candidates = [path]
        elif any(c in argument for c in GLOB_CHARS):
            candidates = [Path(p) for p in sorted(glob.glob(argument, recursive=True))]
            if not candidates:
                inputs.failures.append((argument, "no file matches this pattern"))
        else:
            inputs.failures.append((argument, "no such file or folder"))
            continue
        for candidate in candidates:
            files = _walk(candidate, exclude) if candidate.is_dir() else [candidate]
            for file in files:
                key = file.resolve()
                if key not in seen:
                    seen.add(key)
                    inputs.files.append(file)
    return inputs


def output_names(files: list[Path]) -> list[str]:
    """Output base names (relative to OUT, no suffix) for input files, in the same order.

    The stem when it is unique; files sharing a stem keep their path relative to the deepest
    folder they have in common (a/x.png, b/x.png -> a/x, b/x), and the original suffix if
    even that clashes (x.png, x.jpg -> x_png, x_jpg).
    """
    by_stem: dict[str, list[int]] = {}
    for i, file in enumerate(files):
        by_stem.setdefault(file.stem, []).append(i)
    names = [file.stem for file in files]
    for indices in by_stem.values():
        if len(indices) < 2:
            continue
        parents = [str(files[i].resolve().parent) for i in indices]
        common = Path(os.path.commonpath(parents))
        relative = {i: files[i].resolve().relative_to(common).with_suffix("").as_posix()
                    for i in indices}
        counts = Counter(relative.values())
        for i in indices:
            name = relative[i]
            if counts[name] > 1:
                name = f"{name}_{files[i].suffix.lstrip('.').lower()}"
            names[i] = name
    return names


def _kind(path: Path) -> str:
    """Label of an output file for the summary (format or video kind)."""
    from mixdepth.outputs import SUFFIXES

    name = path.name
    if path.stem.endswith("_metric"):
        return f"metric {path.suffix.lstrip('.')}"
    if name.endswith("_depth.mp4"):
        return "depth video"
    if name.endswith("_side_by_side.mp4"):
        return "side-by-side video"
    for kind, suffix in sorted(SUFFIXES.items(), key=lambda item: -len(item[1])):
        if name.endswith(suffix):
            return kind.replace("_", "-")
    return path.suffix


def _write_metric(base: Path, pred, rgb, hint_values, formats, camera) -> list[Path]:
    """Align one prediction to its hints, print the fit, write base_metric.pfm/.npy/.ply."""
    from rich.console import Console
    from rich.markup import escape

    from mixdepth.align import align_to_hints, camera_from_fov
    from mixdepth.cli.align import camera_options, fit_summary, write_metric_outputs

    fx, fy, cx, cy, fov = camera
    height, width = pred.shape
    intrinsics = camera_options(fx, fy, cx, cy, None, width, height)
    if intrinsics is None:
        intrinsics = camera_from_fov(width, height, fov)
    metric = ["pfm", "npy"] + (["ply"] if "ply" in formats or fx is not None else [])
    result = align_to_hints(pred, hint_values)
    Console(highlight=False, soft_wrap=True).print(escape(f"{base.name}: {fit_summary(result)}"))
    return write_metric_outputs(base, result, metric, intrinsics, rgb)


@app.command()
def predict(
    inputs: list[str] = typer.Argument(
        ..., help="Images, folders (searched recursively), glob patterns or videos."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Registered model name (with --weights: its architecture)."
    ),
    weights: Path | None = typer.Option(
        None, "--weights", "-w", help="Weights file (.safetensors or official .pt)."
    ),
    onnx: Path | None = typer.Option(
        None, "--onnx", help="Run a model exported with `mixdepth export` in onnxruntime."
    ),
    formats: str = typer.Option(
        "pfm,color", "--format", "-f", help="Comma-separated: pfm, png16, color, npy, ply."
    ),
    batch_size: int = typer.Option(4, "--batch-size", "-b", min=1, help="Images per forward."),
    side_by_side: bool = typer.Option(
        False, "--side-by-side", help="Also write the image beside its colour depth."
    ),
    colormap: str = typer.Option(
        "inferno", "--colormap", help="inferno, turbo, spectral or gray."
    ),
    fov: float = typer.Option(60.0, "--fov", help="Horizontal field of view (degrees) for ply."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 or bfloat16 (autocast)."),
    stabilize: bool = typer.Option(
        False, "--stabilize", help="Videos: align each frame's scale/shift to the running output."
    ),
    size: int = typer.Option(
        None, "--size", min=32, help="Working size of the network (for most models the longer "
        "side, rounded to a multiple of 32); default: the size the weights record, else the "
        "architecture's."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    compile_model: bool = typer.Option(
        False, "--compile", help="torch.compile the network: fastest for videos and many "
        "same-size images, after a one-off compilation per input size (needs a C++ compiler)."
    ),
    runtime: str = typer.Option(
        "auto", "--runtime", help="auto: on the CPU in float32, onnxruntime on the model's "
        "ONNX export (made once, cached in $MIXDEPTH_CACHE_DIR or ~/.cache/mixdepth), else "
        "PyTorch; torch: always PyTorch."
    ),
    hints: Path = typer.Option(
        None, "--hints", help="One image: also fit metric depth to these known depths (CSV "
        "x,y,depth or a sparse depth map; see `mixdepth align`) and write <stem>_metric.pfm/.npy "
        "(.ply with format ply or --fx)."
    ),
    hints_scale: float = typer.Option(
        None, "--hints-scale", help="Metres per stored unit of the hints (PNG maps)."
    ),
    fx: float = typer.Option(None, "--fx", help="With --hints: focal length in pixels."),
    fy: float = typer.Option(None, "--fy", help="With --hints: vertical focal length (def. fx)."),
    cx: float = typer.Option(None, "--cx", help="With --hints: principal point column."),
    cy: float = typer.Option(None, "--cy", help="With --hints: principal point row."),
) -> None:
    """Predict relative inverse depth (near = high) for images, folders, globs and videos.

    Writes OUT/<stem>.<format> per image; videos give OUT/<stem>_depth.mp4 (format color)
    and per-frame files in OUT/<stem>_frames/. Unreadable inputs are reported and skipped;
    the exit code is 1 if any input failed. With --hints (one image) the prediction is also
    aligned to the known depths as `mixdepth align` does.
    """
    import torch
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mixdepth.errors import ConfigError, MixdepthError
    from mixdepth.inference import Predictor, to_rgb_array
    from mixdepth.outputs import check_colormap, output_path, parse_formats, write_outputs
    from mixdepth.video import is_video, predict_video, video_info

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    chosen = parse_formats(formats)
    check_colormap(colormap)
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16}
    if dtype not in dtypes:
        raise ConfigError(f"--dtype must be float32 or bfloat16, got {dtype!r}")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"--device must be cpu or cuda, got {device!r}")

    if compile_model and onnx is not None:
        raise ConfigError("--compile applies to PyTorch models, not to --onnx")
    predictor = Predictor(
        model, weights, device=device, dtype=dtypes[dtype], compile=compile_model, onnx=onnx,
        input_size=size, runtime=runtime,
    )
    if model is not None and weights is None:
        console.print(f"[yellow]warning:[/] --model {model} without --weights: random weights, "
                      "the depth maps are meaningless (use for testing only)")

    collected = collect_inputs(inputs, exclude=output)
    failures = list(collected.failures)
    for argument, reason in failures:
        console.print(f"[red]skipped[/] {escape(argument)}: {escape(reason)}")
    files = collected.files
    hint_values = None
    if hints is not None:
        from mixdepth.cli.align import load_hints

        if len(inputs) != 1 or len(files) != 1 or is_video(files[0]):
            raise ConfigError(f"--hints applies to a single image; got {len(inputs)} input(s) "
                              f"naming {len(files)} file(s)"
                              + (", a video" if len(files) == 1 and is_video(files[0]) else ""))
        hint_values = load_hints(hints, hints_scale)
    names = dict(zip(files, output_names(files), strict=True))
    videos = [f for f in files if is_video(f)]
    images = [f for f in files if not is_video(f)]
    written: list[Path] = []
    done_images = 0

    def fail(path: Path, err: Exception) -> None:
        message = str(err) if str(path) in str(err) else f"{path}: {err}"
        failures.append((str(path), message))
        console.print(f"[red]skipped[/] {escape(message)}")

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("images", total=len(images)) if images else None
        for start in range(0, len(images), batch_size):
            batch = []
            for path in images[start : start + batch_size]:
                try:
                    batch.append((path, to_rgb_array(path)))
                except MixdepthError as err:
                    fail(path, err)
            predictions = predictor.predict_batch([rgb for _, rgb in batch], batch_size)
            for (path, rgb), pred in zip(batch, predictions, strict=True):
                try:
                    base = output / names[path]
                    targets = [output_path(base, kind) for kind in chosen]
                    if any(target.resolve() == path.resolve() for target in targets):
                        raise MixdepthError(f"{path}: an output would overwrite this input; "
                                            "choose another --output folder")
                    written += write_outputs(base, pred, rgb, chosen, colormap, side_by_side, fov)
                    if hint_values is not None:
                        written += _write_metric(base, pred, rgb, hint_values, chosen,
                                                 (fx, fy, cx, cy, fov))
                    done_images += 1
                except (MixdepthError, OSError) as err:
                    fail(path, err)
            progress.advance(task, len(images[start : start + batch_size]))
        for path in videos:
            try:
                frames = video_info(path)[1] or None
                task = progress.add_task(escape(path.name), total=frames)
                written += predict_video(
                    predictor, path, output / names[path], chosen, colormap, side_by_side, fov,
                    stabilize, batch_size, on_frames=lambda n, t=task: progress.advance(t, n),
                    on_skip=lambda position, reason, p=path: console.print(
                        f"[yellow]skipped[/] {escape(str(p))}: frame {position} cannot be "
                        f"decoded ({escape(reason)})"
                    ),
                )
            except (MixdepthError, OSError) as err:
                fail(path, err)

    kinds = Counter(_kind(p) for p in written)
    summary = ", ".join(f"{count} {kind}" for kind, count in kinds.items()) or "nothing"
    done_videos = len(videos) - sum(1 for f, _ in failures if Path(f) in set(videos))
    Console(highlight=False, soft_wrap=True).print(escape(
        f"{predictor.config.name}: {done_images} image(s), {done_videos} video(s) -> "
        f"{output}/: {summary}"
    ))
    if failures:
        console.print(f"[red]{len(failures)} input(s) failed[/]")
        raise typer.Exit(code=1)

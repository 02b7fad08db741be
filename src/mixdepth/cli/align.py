"""`mixdepth align`: metric depth from a relative prediction and a few known depths."""

from __future__ import annotations

from pathlib import Path

import typer

from mixdepth.cli.app import app

ALIGN_FORMATS = ("pfm", "npy", "ply")
METRIC_SUFFIX = "_metric"
CSV_SUFFIXES = (".csv", ".txt")


def load_hints(path: Path, hints_scale: float | None = None):
    """Hints from a file: CSV (header x,y,depth) -> (K, 3); a sparse depth map (.png needs
    hints_scale, .npy, .pfm, ...; 0 = unknown) -> (H, W). Depths are multiplied by
    hints_scale (metres per stored unit) when given."""
    import numpy as np

    from mixdepth.align import read_hints_csv
    from mixdepth.errors import ConfigError
    from mixdepth.io import read_depth

    if hints_scale is not None and not hints_scale > 0:
        raise ConfigError(f"--hints-scale must be positive metres per unit, got {hints_scale}")
    if not path.is_file():
        raise ConfigError(f"--hints {path}: no such file")
    if path.suffix.lower() in CSV_SUFFIXES:
        hints = read_hints_csv(path)
        if hints_scale is not None:
            hints[:, 2] *= hints_scale
        return hints
    if path.suffix.lower() == ".png" and hints_scale is None:
        raise ConfigError(
            f"--hints {path}: a PNG depth map needs --hints-scale, the metres per stored unit "
            "(0.001 for millimetres, 0.00390625 for KITTI's 1/256 m, 0.0002 for TUM)"
        )
    values = read_depth(path)
    return values * np.float32(hints_scale) if hints_scale is not None else values


def camera_options(fx, fy, cx, cy, fov, width: int, height: int):
    """(fx, fy, cx, cy) from the intrinsics options, or None when none is given.

    --fx alone: fy = fx and the principal point at the image centre; --fov: a horizontal
    field of view in degrees (square pixels, centred principal point).
    """
    from mixdepth.align import camera_from_fov
    from mixdepth.errors import ConfigError

    if fov is not None:
        if any(v is not None for v in (fx, fy, cx, cy)):
            raise ConfigError("give either --fov or --fx/--fy/--cx/--cy, not both")
        return camera_from_fov(width, height, fov)
    if fx is None:
        if any(v is not None for v in (fy, cx, cy)):
            raise ConfigError("--fy, --cx and --cy need --fx (the focal length in pixels)")
        return None
    return (fx, fx if fy is None else fy, (width - 1) / 2.0 if cx is None else cx,
            (height - 1) / 2.0 if cy is None else cy)


def write_metric_outputs(base: Path, alignment, formats, camera=None, image=None) -> list[Path]:
    """Write `alignment.depth` as base_metric.pfm / .npy / .ply (formats among pfm, npy,
    ply; ply needs camera = (fx, fy, cx, cy)). Points are coloured by `image` (H, W, 3)
    when given, else by the colour map of the metric disparity."""
    import numpy as np

    from mixdepth.align import metric_point_cloud
    from mixdepth.errors import ConfigError
    from mixdepth.io import write_pfm
    from mixdepth.outputs import colorize, to_uint8_rgb, write_ply

    base = base.with_name(base.name + METRIC_SUFFIX)
    base.parent.mkdir(parents=True, exist_ok=True)
    depth = alignment.depth
    written = []
    for kind in formats:
        path = base.with_name(base.name + "." + kind)
        if kind == "pfm":
            write_pfm(path, depth)
        elif kind == "npy":
            np.save(path, depth)
        elif kind == "ply":
            if camera is None:
                raise ConfigError("a metric point cloud (ply) needs the camera: --fx [--fy "
                                  "--cx --cy] or --fov")
            points, index = metric_point_cloud(depth, *camera)
            if image is not None:
                colors = to_uint8_rgb(image).reshape(-1, 3)[index]
            else:
                inverse = np.where(depth > 0, 1.0 / np.where(depth > 0, depth, 1.0), np.nan)
                colors = colorize(inverse).reshape(-1, 3)[index]
            write_ply(path, points, colors)
        else:
            raise ConfigError(f"metric outputs are {', '.join(ALIGN_FORMATS)}, not {kind!r}")
        written.append(path)
    return written


def fit_summary(alignment) -> str:
    """Lines describing a fit: scale, shift, inliers, residual, and the first outliers."""
    count = len(alignment.inliers)
    lines = [
        f"scale {alignment.scale:.6g}, shift {alignment.shift:.6g} "
        "(1/depth = scale * disparity + shift, 1/m)",
        f"inliers {alignment.inlier_count}/{count}, residual {100 * alignment.residual:.2f} % "
        "(median relative depth error of the inliers)",
    ]
    outliers = [int(i) for i in (~alignment.inliers).nonzero()[0]]
    if outliers and count <= 10000:
        shown = ", ".join(
            f"{i} (x={alignment.hints[i, 0]:g}, y={alignment.hints[i, 1]:g}, "
            f"depth={alignment.hints[i, 2]:g})" for i in outliers[:5]
        )
        more = f" and {len(outliers) - 5} more" if len(outliers) > 5 else ""
        lines.append(f"outliers: hint {shown}{more}")
    return "\n".join(lines)


@app.command()
def align(
    prediction: Path = typer.Argument(
        ..., help="Relative disparity written by `mixdepth predict`: .pfm, .npy or .png (16-bit)."
    ),
    hints: Path = typer.Option(
        ..., "--hints", help="Known depths: a CSV with header x,y,depth (pixel column, pixel row, "
        "metres) or a sparse depth map of the prediction's size (.png with --hints-scale, .npy, "
        ".pfm; 0 or NaN = unknown)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder."),
    formats: str = typer.Option(
        "pfm,npy", "--format", "-f", help="Comma-separated: pfm, npy, ply (ply is added when "
        "intrinsics are given)."
    ),
    hints_scale: float = typer.Option(
        None, "--hints-scale", help="Metres per stored unit of the hints (required for PNG maps, "
        "e.g. 0.001 for millimetres)."
    ),
    fx: float = typer.Option(None, "--fx", help="Focal length in pixels (ply)."),
    fy: float = typer.Option(None, "--fy", help="Vertical focal length in pixels (default fx)."),
    cx: float = typer.Option(None, "--cx", help="Principal point column (default the centre)."),
    cy: float = typer.Option(None, "--cy", help="Principal point row (default the centre)."),
    fov: float = typer.Option(None, "--fov", help="Horizontal field of view in degrees (ply)."),
    scale_only: bool = typer.Option(
        False, "--scale-only", help="Fit 1/depth = scale * disparity (shift 0): one hint suffices."
    ),
    robust: bool = typer.Option(
        True, "--robust/--no-robust", help="RANSAC over pairs of hints, then least squares on the "
        "inliers (default), or plain least squares on all hints."
    ),
    min_depth: float = typer.Option(None, "--min-depth", help="Clip depth below (metres)."),
    max_depth: float = typer.Option(
        None, "--max-depth", help="Clip depth above (metres); pixels the fit puts beyond "
        "infinity get this depth instead of 0 (invalid)."
    ),
    threshold: float = typer.Option(
        None, "--threshold", help="Inlier threshold on relative depth error |fit - hint| / "
        "hint (default 0.4)."
    ),
) -> None:
    """Metric depth from a relative prediction and a few known depths (hints).

    Fits 1/depth = scale * disparity + shift to the hints. Writes OUT/<stem>_metric.pfm
    and OUT/<stem>_metric.npy (metres, 0 = no valid depth); OUT/<stem>_metric.ply too
    when intrinsics are given.
    """
    from rich.console import Console
    from rich.markup import escape

    from mixdepth.align import align_to_hints
    from mixdepth.errors import AlignmentError, ConfigError
    from mixdepth.io import read_depth
    from mixdepth.outputs import parse_formats

    chosen = list(parse_formats(formats))
    unknown = [kind for kind in chosen if kind not in ALIGN_FORMATS]
    if unknown:
        raise ConfigError(f"--format: mixdepth align writes {', '.join(ALIGN_FORMATS)}, not "
                          f"{', '.join(unknown)}")
    disparity = read_depth(prediction)
    height, width = disparity.shape
    camera = camera_options(fx, fy, cx, cy, fov, width, height)
    if camera is not None and "ply" not in chosen:
        chosen.append("ply")
    if camera is None and "ply" in chosen:
        raise ConfigError("--format ply needs the camera: --fx [--fy --cx --cy] or --fov")
    hint_values = load_hints(hints, hints_scale)
    if hints.suffix.lower() not in CSV_SUFFIXES and hint_values.shape != (height, width):
        raise AlignmentError(f"--hints {hints}: a {hint_values.shape[1]} x "
                             f"{hint_values.shape[0]} map, but the prediction is {width} x "
                             f"{height}")
    extra = {} if threshold is None else {"threshold": threshold}
    result = align_to_hints(disparity, hint_values, robust=robust, min_depth=min_depth,
                            max_depth=max_depth, scale_only=scale_only, **extra)
    written = write_metric_outputs(output / prediction.stem, result, chosen, camera)
    console = Console(highlight=False, soft_wrap=True)
    console.print(escape(f"{prediction}: {fit_summary(result)}"))
    console.print(escape(f"wrote {', '.join(str(p) for p in written)}"))

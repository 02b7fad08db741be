"""The evaluation loop: predictions against ground truth, one image at a time.

Predictions come either from a model (run through `mixdepth.Predictor` at the model's working
resolution and resized bilinearly to the full ground-truth resolution, as the protocol
prescribes) or from files written by any tool (`--predictions DIR`). Each image is scored with
`mixdepth.eval.alignment.score_dense` (dense benchmarks) or `mixdepth.metrics.whdr` (DIW);
images that cannot be scored are recorded with the reason and never enter a mean.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from mixdepth.data.base import apply_eval_crop
from mixdepth.data.sample import Sample, Space, depth_to_disparity, to_disparity_target
from mixdepth.errors import ConfigError, FileFormatError, MixdepthError
from mixdepth.eval.alignment import ALIGNMENTS, MIN_DEPTH, score_dense
from mixdepth.eval.benchmarks import Benchmark, load_benchmark
from mixdepth.eval.report import (
    CSV_NAME,
    RUN_NAME,
    SUMMARY_NAME,
    PerImageLog,
    safe_name,
    summarize,
    write_json,
    write_table,
)

PRED_SPACES = ("disparity", "depth")
PREDICTION_SUFFIXES = (".npy", ".pfm", ".png")
# A prediction file at another resolution than the ground truth is resized (bilinearly) only
# when its aspect ratio is within this factor of the ground truth's: the rounding of network
# sizes to multiples of 32 distorts it a little; a transposed or foreign map is refused.
ASPECT_TOLERANCE = 1.2


class SkipImage(Exception):
    """An image that cannot be scored. The message, "kind: detail", goes to the CSV."""


@dataclass
class EvalResult:
    """One model (label) on one benchmark: the summary, the per-image rows, where they went."""

    label: str
    benchmark: Benchmark
    summary: dict
    rows: list[dict]
    directory: Path | None = None

    @property
    def primary(self) -> float | None:
        """The benchmark's primary metric, None when no image could be evaluated."""
        return self.summary["primary"]


# ---------------------------------------------------------------------------------------------
# Prediction sources: callables (sample, subset) -> (H, W) float disparity at the GT resolution.


def _resize_bilinear(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) map resized to size (H, W) bilinearly (align_corners=False), float32."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    out = torch.nn.functional.interpolate(tensor, size=size, mode="bilinear", align_corners=False)
    return out[0, 0].numpy()


def gt_size(sample: Sample) -> tuple[int, int]:
    """(H, W) of the ground truth (of the image for ordinal samples without a dense target)."""
    target = np.asarray(sample.target) if sample.target is not None else None
    if target is not None and target.ndim == 2 and target.size > 0:
        return target.shape
    return tuple(np.asarray(sample.image).shape[:2])


class ModelPredictions:
    """Runs a model through `mixdepth.Predictor`; output resized bilinearly to the GT size."""

    def __init__(self, model, weights: str | Path | None = None, device: str = "cpu",
                 input_size: int | None = None):
        from mixdepth.inference import Predictor

        if isinstance(model, Predictor):
            self.predictor = model
        else:
            self.predictor = Predictor(model=model, weights=weights, device=device,
                                       input_size=input_size)
        config = getattr(self.predictor, "config", None)
        self.name = getattr(config, "name", None) or (model if isinstance(model, str) else "model")
        self.input_size = getattr(config, "input_size", None)
        self.weights = None if weights is None else str(Path(weights).resolve())

    @property
    def description(self) -> dict:
        return {"model": self.name, "weights": self.weights, "input_size": self.input_size}

    def __call__(self, sample: Sample, benchmark: Benchmark, subset: str) -> np.ndarray:
        prediction = self.predictor.predict(
            sample.image, output_size=gt_size(sample), interpolation="bilinear"
        )
        return np.asarray(prediction, dtype=np.float32)


def read_prediction(path: Path) -> np.ndarray:
    """A prediction file (.npy, .pfm or 16-bit .png) as a float32 (H, W) map."""
    from mixdepth.io import read_pfm, read_png16

    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise FileFormatError(path, f"not a readable .npy array: {err}") from None
    elif suffix == ".pfm":
        array = read_pfm(path)
    elif suffix == ".png":
        array = read_png16(path, scale=1.0)
    else:
        raise FileFormatError(path, f"prediction files must be {', '.join(PREDICTION_SUFFIXES)}")
    array = np.asarray(array)
    if array.ndim == 3 and 1 in (array.shape[0], array.shape[-1]):
        array = array.squeeze()
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise FileFormatError(path, f"expected one (H, W) map, got shape {array.shape}")
    return array.astype(np.float32, copy=False)


def prediction_stems(sample: Sample) -> list[str]:
    """File stems a prediction of `sample` may have, most specific first.

    From the sample id ("scene/frame_0001"), the id without an image suffix (ETH3D ids end in
    ".JPG") and the image's path in the dataset (`extras["image_path"]`, set by the loop):
    each path itself, with "/" replaced by "_", then its shorter tails ("frame_0001"), so that
    files named by `mixdepth predict` (stem, or the path below the folders the stems share)
    are found.
    """
    names = [str(sample.id)]
    if PurePosixPath(names[0]).suffix.lower() in (".jpg", ".jpeg", ".png", ".thumb"):
        names.append(str(PurePosixPath(names[0]).with_suffix("")))
    image_path = (sample.extras or {}).get("image_path")
    if image_path:
        names.append(str(PurePosixPath(str(image_path)).with_suffix("")))
    tails = [
        "/".join(PurePosixPath(n).parts[k:])
        for n in names
        for k in range(1, len(PurePosixPath(n).parts))
    ]
    stems = names + [n.replace("/", "_") for n in names] + sorted(
        tails, key=lambda t: -t.count("/")
    )
    return list(dict.fromkeys(stems))


class FilePredictions:
    """Precomputed predictions in a directory, one file per image named by the image's stem.

    For a sample with id "scene/frame_0001" the files tried are, in DIR (or DIR/<benchmark>/
    when it exists, then DIR/<benchmark>/<subset>/ or DIR/<subset>/ for subsets):
    scene/frame_0001.EXT, scene_frame_0001.EXT and frame_0001.EXT with EXT in npy, pfm, png
    (see `prediction_stems` for the full list).
    Values are relative inverse depth (space="disparity") or depth (space="depth").
    """

    def __init__(self, directory: str | Path, space: str = "disparity"):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ConfigError(f"--predictions {self.directory}: not a directory")
        if space not in PRED_SPACES:
            raise ConfigError(f"--pred-space must be one of {', '.join(PRED_SPACES)}: {space!r}")
        self.space = space
        self.name = self.directory.resolve().name or "predictions"

    @property
    def description(self) -> dict:
        return {"predictions": str(self.directory.resolve()), "pred_space": self.space}

    def folder(self, benchmark: Benchmark, subset: str) -> Path:
        base = self.directory
        if (base / benchmark.name).is_dir():
            base = base / benchmark.name
        if subset and (base / subset).is_dir():
            base = base / subset
        return base

    def locate(self, sample: Sample, benchmark: Benchmark, subset: str) -> Path | None:
        base = self.folder(benchmark, subset)
        for stem in prediction_stems(sample):
            for suffix in PREDICTION_SUFFIXES:
                path = base / f"{stem}{suffix}"
                if path.is_file():
                    return path
        return None

    def __call__(self, sample: Sample, benchmark: Benchmark, subset: str) -> np.ndarray:
        path = self.locate(sample, benchmark, subset)
        if path is None:
            base = self.folder(benchmark, subset)
            raise SkipImage(
                f"missing prediction: no {PurePosixPath(str(sample.id)).name}"
                f".{{npy,pfm,png}} for {sample.id} in {base}"
            )
        try:
            array = read_prediction(path)
        except MixdepthError as err:
            raise SkipImage(f"unreadable prediction: {err}") from None
        if self.space == "depth":
            array, _ = depth_to_disparity(array, np.ones(array.shape, dtype=bool))
        size = gt_size(sample)
        if array.shape != size:
            aspect = (array.shape[1] / array.shape[0]) / (size[1] / size[0])
            if not 1 / ASPECT_TOLERANCE <= aspect <= ASPECT_TOLERANCE:
                raise SkipImage(
                    f"shape mismatch: prediction {path.name} is {array.shape[0]}x"
                    f"{array.shape[1]}, ground truth is {size[0]}x{size[1]}"
                )
            array = _resize_bilinear(array, size)
        return array


# ---------------------------------------------------------------------------------------------
# Ground truth and scoring of one sample.


def ground_truth(
    sample: Sample, benchmark: Benchmark, crop=None
) -> tuple[np.ndarray, np.ndarray]:
    """(depth float64 (H, W), mask bool (H, W)) of a dense sample, restricted to the valid
    range (or (0, cap] without one) and the crop (fractions top, bottom, left, right, as
    datasets declare `eval_crop`).
    Disparity targets are inverted (depth up to their scale)."""
    space = Space(sample.space)
    if space.is_depth:
        depth = np.asarray(sample.target, dtype=np.float64)
        mask = np.asarray(sample.mask, dtype=bool) & np.isfinite(depth) & (depth > 0)
    else:
        disparity, valid = to_disparity_target(sample)
        depth, mask = depth_to_disparity(disparity.astype(np.float64), valid)
    if benchmark.valid_range is not None:
        low, high = benchmark.valid_range
        mask &= (depth >= low) & (depth <= high)
    elif benchmark.cap is not None:
        mask &= depth <= benchmark.cap  # without a declared range the cap bounds it
    if crop is not None:
        mask = apply_eval_crop(mask, crop)
    return depth, mask


def score_sample(
    predict: Callable,
    sample: Sample,
    benchmark: Benchmark,
    subset: str,
    align: str,
    crop=None,
) -> dict:
    """Metrics of one sample (a dict of floats plus counts); raises SkipImage with a reason."""
    if benchmark.ordinal:
        from mixdepth.metrics import whdr

        pairs = None if sample.pairs is None else np.asarray(sample.pairs)
        if pairs is None or pairs.size == 0:
            raise SkipImage("no pairs: the sample has no annotated point pair")
        prediction = predict(sample, benchmark, subset)
        try:
            value = whdr(prediction, pairs)
        except MixdepthError as err:
            raise SkipImage(f"bad pairs: {err}") from None
        return {"whdr": value, "pairs": int(pairs.shape[0])}
    if Space(sample.space) is Space.ORDINAL:
        raise SkipImage("no dense ground truth: ordinal sample in a dense benchmark")
    depth, mask = ground_truth(sample, benchmark, crop)
    if not mask.any():
        raise SkipImage("empty mask: no valid ground-truth pixel in range and crop")
    prediction = predict(sample, benchmark, subset)
    if prediction.shape != depth.shape:
        raise SkipImage(
            f"shape mismatch: prediction {prediction.shape[0]}x{prediction.shape[1]}, "
            f"ground truth {depth.shape[0]}x{depth.shape[1]}"
        )
    bad = int((~np.isfinite(prediction[mask])).sum())
    if bad:
        raise SkipImage(f"non-finite prediction: NaN or inf at {bad} valid pixels")
    min_depth = benchmark.valid_range[0] if benchmark.valid_range else MIN_DEPTH
    metrics = score_dense(prediction, depth, mask, benchmark.cap, align, max(min_depth, 1e-6))
    constant = int(not np.ptp(prediction[mask]) > 0)  # scored as documented, but worth a flag
    return {**metrics, "valid_pixels": int(mask.sum()), "constant": constant,
            "inverted": inverted(prediction[mask], depth[mask])}


def inverted(prediction: np.ndarray, depth: np.ndarray) -> int:
    """1 when the prediction (relative disparity) falls where the ground-truth disparity rises:
    its least-squares scale onto 1/depth is negative, so the protocol's alignment flips it and
    the image is scored as if the model had the order of depths right. Else 0.

    prediction, depth: 1-D arrays of the valid pixels (depth > 0)."""
    prediction = prediction.astype(np.float64)
    disparity = 1.0 / depth.astype(np.float64)
    covariance = np.mean((prediction - prediction.mean()) * (disparity - disparity.mean()))
    return int(covariance < 0)


# ---------------------------------------------------------------------------------------------
# The loop.


def benchmark_subsets(benchmark: Benchmark, root: str | Path) -> list[tuple[str, Path]]:
    """(subset name, dataset root) pairs; one pair ("", root) without subsets.

    For subset benchmarks (synthetic held-out families) the root may be the generator's output
    directory (with ROOT/<subsets>/<family>/) or the <subsets> directory itself.
    """
    root = Path(root)
    if not root.exists():
        raise ConfigError(f"--root {root}: no such file or directory (benchmark {benchmark.name})")
    if benchmark.subsets is None:
        return [("", root)]  # a directory, or a file some loaders accept (NYU's .mat, a tar)
    if not root.is_dir():
        raise ConfigError(f"--root {root}: not a directory (benchmark {benchmark.name})")
    base = root / benchmark.subsets if (root / benchmark.subsets).is_dir() else root
    families = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not families:
        raise ConfigError(
            f"--root {root}: no {benchmark.subsets}/<family>/ folders found for "
            f"benchmark {benchmark.name}"
        )
    return [(p.name, p) for p in families]


def _check_run(directory: Path, settings: dict, resume: bool) -> None:
    """Refuse to resume a run made with other settings into the same directory."""
    path = directory / RUN_NAME
    if resume and path.exists():
        try:
            previous = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise FileFormatError(path, f"not valid JSON: {err}") from None
        keys = [k for k in settings if k != "limit"]
        changed = [k for k in keys if previous.get(k) != settings[k]]
        if changed:
            raise ConfigError(
                f"{directory}: holds results made with different {', '.join(changed)}; "
                "use another --out or --label, or --no-resume to start over"
            )
    write_json(path, settings)


def evaluate(
    benchmark: str | Path | Benchmark,
    root: str | Path,
    *,
    model=None,
    weights: str | Path | None = None,
    predictions: str | Path | None = None,
    pred_space: str = "disparity",
    align: str = "disparity",
    crop: bool | None = None,
    cap: float | None = None,
    split: str | None = None,
    limit: int | None = None,
    out: str | Path | None = None,
    label: str | None = None,
    device: str = "cpu",
    resume: bool = True,
    progress: bool = True,
    dataset_options: dict | None = None,
) -> EvalResult:
    """Evaluate one model (or a directory of predictions) on one benchmark.

    benchmark: a shipped name (nyu, kitti, tum, eth3d, sintel, diw, folder, synthetic-heldout),
        a benchmark YAML path or a `Benchmark`. root: the dataset's directory.
    model: a registry name, an nn.Module, a `Predictor` (with optional `weights`) or a
        `ModelPredictions` (to reuse one loaded model over several benchmarks); or
        predictions: a directory of .npy/.pfm/.png files in `pred_space` (disparity|depth).
    align: disparity (the published protocol), depth, median or none.
    crop: apply the dataset's evaluation crop (default: the benchmark's setting).
    cap, split: override the benchmark's. limit: at most this many images (per subset).
    out: write OUT/<label>/<benchmark>/{per_image.csv, summary.json, run.json} and OUT/table.md;
        with resume=True, images already evaluated there are skipped.
    """
    bench = benchmark if isinstance(benchmark, Benchmark) else load_benchmark(benchmark)
    bench = bench.replace(split=split, cap=cap)
    if dataset_options:
        bench = bench.replace(dataset_options={**bench.dataset_options, **dataset_options})
    if align not in ALIGNMENTS:
        raise ConfigError(f"--align must be one of {', '.join(ALIGNMENTS)}: {align!r}")
    if (model is None) == (predictions is None):
        raise ConfigError("give either a model (--model) or a directory of --predictions")
    if not bench.ordinal and bench.cap is None:
        raise ConfigError(f"benchmark {bench.name} needs a depth cap: pass --cap METRES")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1: {limit}")
    subsets = benchmark_subsets(bench, root)
    if predictions is not None:
        source = FilePredictions(predictions, pred_space)
    elif isinstance(model, ModelPredictions):
        source = model
    else:
        source = ModelPredictions(model, weights, device)
    label = label or source.name
    use_crop = bench.crop if crop is None else crop
    settings = {
        "label": label,
        **source.description,
        "benchmark": asdict(bench),
        "root": str(Path(root).resolve()),
        "align": align,
        "crop": use_crop,
        "limit": limit,
    }
    for key in ("valid_range", "crop_box"):  # as JSON writes them, for the resume check
        value = settings["benchmark"][key]
        settings["benchmark"][key] = None if value is None else list(value)

    directory = None
    log = None
    if out is not None:
        directory = Path(out) / safe_name(label) / bench.name
        directory.mkdir(parents=True, exist_ok=True)
        _check_run(directory, settings, resume)
        log = PerImageLog(directory / CSV_NAME, resume=resume)
    rows: list[dict] = list(log.rows) if log else []
    done = log.done if log else set()
    try:
        for subset, subset_root in subsets:
            _evaluate_subset(
                source, bench, subset, subset_root, align, use_crop, limit, done, rows, log,
                progress, label,
            )
    finally:
        if log:
            log.close()
    summary = summarize(rows, bench, settings)
    if directory is not None:
        write_json(directory / SUMMARY_NAME, summary)
        write_table(Path(out))
    return EvalResult(label=label, benchmark=bench, summary=summary, rows=rows, directory=directory)


def _evaluate_subset(
    source, bench, subset, subset_root, align, use_crop, limit, done, rows, log, progress, label
) -> None:
    from tqdm import tqdm

    from mixdepth.data import create_dataset

    dataset = create_dataset(bench.dataset, subset_root, split=bench.split, **bench.dataset_options)
    space = getattr(dataset, "space", None)
    if space is Space.DISPARITY_UP_TO_SCALE_AND_SHIFT and not bench.ordinal:
        raise ConfigError(
            f"{subset_root}: ground truth in {space} has no depth to score against; "
            "benchmarks need metric depth, depth up to scale or disparity up to scale"
        )
    crop = (bench.crop_box or getattr(dataset, "eval_crop", None)) if use_crop else None
    for problem in getattr(dataset, "problems", []):  # files the loader could not pair
        where, _, what = problem.partition(": ")  # "location: problem"
        row = {"subset": subset, "id": where, "status": "skipped"}
        row["reason"] = f"unreadable sample: {what or problem}"
        rows.append(row)
        if log:
            log.append(row)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    entries = getattr(dataset, "entries", None)
    desc = f"{label} {bench.name}" + (f"/{subset}" if subset else "")
    for index in tqdm(range(count), desc=desc, disable=not progress, file=sys.stderr):
        entry = entries[index] if entries is not None else None
        known_id = str(entry.id) if entry is not None else f"#{index}"
        if (subset, known_id) in done:
            continue
        row = {"subset": subset, "id": known_id, "status": "ok", "reason": ""}
        try:
            sample = dataset[index]
        except MixdepthError as err:
            row.update(status="skipped", reason=f"unreadable sample: {err}")
        else:
            row["id"] = str(sample.id or known_id)
            if (subset, row["id"]) in done:
                continue
            if entry is not None and "image" in entry.files:
                sample.extras = {**(sample.extras or {}), "image_path": entry.files["image"]}
            try:
                row.update(score_sample(source, sample, bench, subset, align, crop))
            except SkipImage as skip:
                row.update(status="skipped", reason=str(skip))
            except MixdepthError as err:
                row.update(status="skipped", reason=f"not scorable: {err}")
        rows.append(row)
        if log:
            log.append(row)

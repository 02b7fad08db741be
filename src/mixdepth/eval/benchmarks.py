"""Benchmark definitions: one small YAML file per benchmark, shipped in `eval/benchmarks/`.

A benchmark names the dataset loader and split to read, the depth cap of the protocol, the
valid ground-truth range, the primary metric of the published table and whether the dataset's
standard evaluation crop is applied by default. Users can pass their own YAML file with the
same keys wherever a benchmark name is accepted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from mixdepth.errors import ConfigError

# Metrics a benchmark may rank by; all of them are "lower is better".
PRIMARY_METRICS = ("absrel", "sqrel", "rmse", "rmse_log", "bad_pixel", "whdr")
# Every dense metric reported for every benchmark (keys of mixdepth.metrics.zero_shot_metrics).
DENSE_METRICS = ("absrel", "sqrel", "rmse", "rmse_log", "delta1", "delta2", "delta3", "bad_pixel")
# Column order of the published table; other benchmarks follow in the order given.
PAPER_ORDER = ("diw", "eth3d", "sintel", "kitti", "nyu", "tum")

_KEYS = {
    "name",
    "title",
    "dataset",
    "split",
    "cap",
    "valid_range",
    "primary_metric",
    "crop",
    "crop_box",
    "subsets",
    "dataset_options",
}


@dataclass(frozen=True)
class Benchmark:
    """One zero-shot benchmark.

    dataset:        registry name for `mixdepth.data.create_dataset`.
    split:          split passed to the loader (None: the loader's default).
    cap:            depth cap in metres (aligned disparity is clamped below 1/cap); None for
                    ordinal benchmarks, or for `folder` until the user declares one.
    valid_range:    (min, max) ground-truth depth kept in the evaluation mask, or None.
    primary_metric: the metric of the published table (lower is better).
    crop:           apply the evaluation crop by default.
    crop_box:       the crop as fractions (top, bottom, left, right) of the height/width;
                    None: the dataset's standard `eval_crop` (NYU Eigen, KITTI Garg).
    subsets:        None, or the sub-directory of the root whose child folders are evaluated
                    one by one and together (synthetic held-out families).
    """

    name: str
    dataset: str
    title: str = ""
    split: str | None = None
    cap: float | None = None
    valid_range: tuple[float, float] | None = None
    primary_metric: str = "absrel"
    crop: bool = False
    crop_box: tuple[float, float, float, float] | None = None
    subsets: str | None = None
    dataset_options: dict = field(default_factory=dict)

    @property
    def ordinal(self) -> bool:
        """True when the benchmark is scored on point pairs (WHDR) rather than dense depth."""
        return self.primary_metric == "whdr"

    def replace(self, **changes) -> Benchmark:
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _benchmark_files() -> dict[str, resources.abc.Traversable]:
    folder = resources.files("mixdepth.eval") / "benchmarks"
    return {
        entry.name.removesuffix(".yaml"): entry
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    }


def list_benchmarks() -> list[str]:
    """Names of the shipped benchmarks, in the published table's order first."""
    names = sorted(_benchmark_files())
    return sorted(names, key=lambda n: (PAPER_ORDER.index(n) if n in PAPER_ORDER else 99, n))


def parse_benchmark(data: dict, source: str) -> Benchmark:
    """Validate a benchmark mapping read from `source` (a file name, used in error messages)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a benchmark file must hold a mapping of keys")
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    for key in ("name", "dataset"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{source}: `{key}` must be a non-empty string")
    cap = data.get("cap")
    if cap is not None and (not isinstance(cap, int | float) or cap <= 0):
        raise ConfigError(f"{source}: `cap` must be a positive number of metres or null: {cap!r}")
    valid_range = data.get("valid_range")
    if valid_range is not None:
        ok = (
            isinstance(valid_range, list | tuple)
            and len(valid_range) == 2
            and all(isinstance(v, int | float) for v in valid_range)
            and 0 <= valid_range[0] < valid_range[1]
        )
        if not ok:
            raise ConfigError(f"{source}: `valid_range` must be [min, max] with 0 <= min < max")
        valid_range = (float(valid_range[0]), float(valid_range[1]))
    primary = data.get("primary_metric", "absrel")
    if primary not in PRIMARY_METRICS:
        raise ConfigError(
            f"{source}: `primary_metric` must be one of {', '.join(PRIMARY_METRICS)}: {primary!r}"
        )
    crop = data.get("crop", False)
    if not isinstance(crop, bool):
        raise ConfigError(f"{source}: `crop` must be true or false: {crop!r}")
    crop_box = data.get("crop_box")
    if crop_box is not None:
        ok = (
            isinstance(crop_box, list | tuple)
            and len(crop_box) == 4
            and all(isinstance(v, int | float) and 0 <= v <= 1 for v in crop_box)
            and crop_box[0] < crop_box[1]
            and crop_box[2] < crop_box[3]
        )
        if not ok:
            raise ConfigError(
                f"{source}: `crop_box` must be [top, bottom, left, right] fractions in [0, 1] "
                "with top < bottom and left < right"
            )
        crop_box = tuple(float(v) for v in crop_box)
    options = data.get("dataset_options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{source}: `dataset_options` must be a mapping")
    split = data.get("split")
    subsets = data.get("subsets")
    return Benchmark(
        name=data["name"],
        dataset=data["dataset"],
        title=str(data.get("title") or data["name"]),
        split=None if split is None else str(split),
        cap=None if cap is None else float(cap),
        valid_range=valid_range,
        primary_metric=primary,
        crop=crop,
        crop_box=crop_box,
        subsets=None if subsets is None else str(subsets),
        dataset_options=dict(options),
    )


def load_benchmark(name_or_path: str | Path) -> Benchmark:
    """A shipped benchmark by name (`nyu`, `kitti`, ...) or a user's YAML file by path."""
    text_name = str(name_or_path)
    files = _benchmark_files()
    if text_name in files:
        source, text = f"benchmark {text_name!r}", files[text_name].read_text()
    elif text_name.endswith((".yaml", ".yml")):
        path = Path(text_name)
        if not path.is_file():
            raise ConfigError(f"{path}: benchmark file not found")
        source, text = str(path), path.read_text()
    else:
        raise ConfigError(
            f"unknown benchmark {text_name!r}; known: {', '.join(list_benchmarks())} "
            "(or the path of a benchmark .yaml file)"
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {err}") from None
    return parse_benchmark(data, source)

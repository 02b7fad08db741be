"""Training configuration: schema, validation and `key=value` overrides.

A config is a YAML mapping checked against the dataclasses below before anything heavy runs.
An unknown key, a wrong type, a value outside its choices or a missing dataset root raises
`ConfigError` naming the key, e.g. ``datasets[1].root: directory not found: /data/kitti``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mixdepth.errors import ConfigError

# mse | mse-norm | mae | trim: the scale-and-shift-invariant losses (ssimse, ssimse onto the
# median/MAD-normalised target, ssimae, ssitrim) plus the gradient term; plain | silog | shift:
# the baselines (plain MSE in disparity, scale-invariant log, shift-only invariant), without the
# gradient term; ordinal: the ranking loss on pairs.
LossKind = Literal["mse", "mse-norm", "mae", "trim", "plain", "silog", "shift", "ordinal"]


@dataclass
class ModelConfig:
    """name: registry name (mixdepth.models); options: keyword arguments of `create`;
    pretrained: "imagenet" starts the encoder from the ImageNet weights of an installed
    package (models listed by `mixdepth.models.registry.pretrained_models`), null from random
    weights; weights: optional initial weights (.safetensors or .pt, loaded after
    `pretrained`); freeze_batchnorm: keep
    BatchNorm layers in eval mode (running statistics fixed) during training;
    freeze_encoder_batchnorm: the same for the encoder's (`pretrained.*`) BatchNorm layers
    only; freeze_encoder_steps: the encoder's parameters get no update in the first N steps."""

    name: str = "tiny"
    options: dict = field(default_factory=dict)
    pretrained: Literal["imagenet"] | None = None
    weights: str | None = None
    freeze_batchnorm: bool = False
    freeze_encoder_batchnorm: bool = False
    freeze_encoder_steps: int = 0


@dataclass
class DatasetConfig:
    """name: dataset registry name (mixdepth.data); root: its directory or tar archive, or a
    list of them (the dataset is then the concatenation of one dataset per root);
    split: which split (default: "train" where the dataset has one, else its first split);
    options: dataset keyword options (e.g. space and scale for `folder`);
    loss: mse | mae | trim | plain | silog | shift | ordinal (default: ordinal for ordinal
    datasets, else `loss.kind`); weight: multiplies this dataset's loss; label: name in logs
    (default: name); limit: use only the first `limit` samples (e.g. to make dataset sizes
    unequal in an ablation)."""

    name: str
    root: str | list[str]
    split: str | None = None
    options: dict = field(default_factory=dict)
    loss: LossKind | None = None
    weight: float = 1.0
    label: str | None = None
    limit: int | None = None


@dataclass
class LossConfig:
    """kind: loss of every dense dataset without its own `loss` (see LossKind); alpha: weight
    of the multi-scale gradient-matching term (SSI kinds only); scales: its number of scales;
    reduction: image (mean of per-image losses) or batch (pixels pooled over the batch);
    scale_anchor: weight of the term that holds each image's mean prediction near 1."""

    kind: LossKind = "trim"
    alpha: float = 0.5
    scales: int = 4
    reduction: Literal["image", "batch"] = "image"
    scale_anchor: float = 0.0


@dataclass
class OptimizerConfig:
    """Adam. Parameters under `pretrained.` (the encoder) get lr_encoder, the rest lr_decoder."""

    lr_encoder: float = 1e-5
    lr_decoder: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0


@dataclass
class ScheduleConfig:
    """Learning-rate factor per step: linear warm-up over warmup_steps, then constant, cosine
    (down to min_lr_ratio at the last step) or step (x gamma every step_every steps)."""

    kind: Literal["constant", "cosine", "step"] = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    step_every: int = 1000
    gamma: float = 0.1


@dataclass
class AugmentConfig:
    """Training augmentation: horizontal flips, photometric jitter and zoom (scale
    augmentation: each image enlarged by a random factor in [1, zoom] before the random crop,
    which is always taken)."""

    flip: bool = True
    jitter: bool = True
    zoom: float = 1.0


@dataclass
class TrainConfig:
    """Everything a training run needs; see docs/training.md for each key."""

    out_dir: str
    datasets: list[DatasetConfig] = field(default_factory=list)
    mix: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    mixing: Literal["naive", "uniform", "pareto"] = "uniform"
    pareto_mode: Literal["full", "ub"] = "full"
    pareto_normalize: Literal["none", "l2", "loss"] = "none"
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    steps: int = 1000
    batch_size: int = 8
    crop_size: int = 256
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    precision: Literal["float32", "bfloat16"] = "float32"
    grad_clip: float | None = None
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 0
    num_workers: int = 2
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = None
    progress: bool = True
    report: bool = True
    val_images: int = 2
    channels_last: bool = False
    time_budget: float | None = None

    def to_dict(self) -> dict:
        """Plain data (YAML/JSON-serialisable), the inverse of `config_from_dict`."""
        data = dataclasses.asdict(self)
        data["optimizer"]["betas"] = list(self.optimizer.betas)
        return data


# ---------------------------------------------------------------------------- validation


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return getattr(origin, "__name__", str(tp))
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting where lossless; else ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, key)
            except ConfigError as err:
                if isinstance(value, list) and typing.get_origin(arg) is list:
                    raise  # a list whose item is wrong: name the item
                errors.append(err)
        raise errors[0] if len(errors) == 1 else ConfigError(
            f"{key}: expected {_type_name(tp)}, got {value!r}"
        )
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: must be one of {_type_name(tp)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} numbers, got {value!r}")
        pairs = enumerate(zip(value, args, strict=True))
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in pairs)
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads `1e-4` (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} for {key}")  # a bug in the schema


def _from_dict(cls: type, data: Any, prefix: str) -> Any:
    where = f"{prefix}: " if prefix else ""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config: '}expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            name = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(f"{name}: unknown key (known: {', '.join(sorted(fields))})")
    values = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name in data:
            values[name] = _convert(data[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: required key is missing")
    return cls(**values)


def _check_values(config: TrainConfig, check_paths: bool) -> None:
    positive = {
        "steps": config.steps,
        "batch_size": config.batch_size,
        "crop_size": config.crop_size,
        "checkpoint_every": config.checkpoint_every,
        "keep_checkpoints": config.keep_checkpoints,
        "log_every": config.log_every,
        "loss.scales": config.loss.scales,
        "schedule.step_every": config.schedule.step_every,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key}: must be positive, got {value}")
    for key, value in {
        "num_workers": config.num_workers,
        "val_images": config.val_images,
        "schedule.warmup_steps": config.schedule.warmup_steps,
        "optimizer.lr_encoder": config.optimizer.lr_encoder,
        "optimizer.lr_decoder": config.optimizer.lr_decoder,
        "optimizer.weight_decay": config.optimizer.weight_decay,
        "optimizer.eps": config.optimizer.eps,
        "loss.alpha": config.loss.alpha,
        "loss.scale_anchor": config.loss.scale_anchor,
    }.items():
        if value < 0:
            raise ConfigError(f"{key}: must not be negative, got {value}")
    if config.loss.kind == "ordinal":
        raise ConfigError("loss.kind: ordinal applies to pair datasets only; set it per dataset")
    if not 1.0 <= config.augment.zoom < math.inf:
        raise ConfigError(
            f"augment.zoom: must be at least 1 and finite (1 = off), got {config.augment.zoom}"
        )
    if config.crop_size % 32:
        raise ConfigError(f"crop_size: must be a multiple of 32, got {config.crop_size}")
    if config.threads is not None and config.threads <= 0:
        raise ConfigError(f"threads: must be positive or null, got {config.threads}")
    if config.model.freeze_encoder_steps < 0:
        value = config.model.freeze_encoder_steps
        raise ConfigError(f"model.freeze_encoder_steps: must not be negative, got {value}")
    if config.time_budget is not None and not 0 < config.time_budget < math.inf:
        raise ConfigError(
            f"time_budget: must be a positive number of minutes or null, got {config.time_budget}"
        )
    if config.grad_clip is not None and config.grad_clip <= 0:
        raise ConfigError(f"grad_clip: must be positive or null, got {config.grad_clip}")
    for i, beta in enumerate(config.optimizer.betas):
        if not 0.0 <= beta < 1.0:
            raise ConfigError(f"optimizer.betas[{i}]: must be in [0, 1), got {beta}")
    if not config.datasets:
        raise ConfigError("datasets: at least one dataset is required (or a mix: file)")
    labels = set()
    for i, ds in enumerate(config.datasets):
        if ds.weight <= 0:
            raise ConfigError(f"datasets[{i}].weight: must be positive, got {ds.weight}")
        if ds.limit is not None and ds.limit <= 0:
            raise ConfigError(f"datasets[{i}].limit: must be positive or null, got {ds.limit}")
        label = ds.label or ds.name
        if label in labels:
            raise ConfigError(
                f"datasets[{i}].label: {label!r} is used twice; give each dataset a label"
            )
        labels.add(label)
        if isinstance(ds.root, list) and not ds.root:
            raise ConfigError(f"datasets[{i}].root: an empty list; give at least one directory")
        if check_paths:
            for key, root in dataset_roots(ds, f"datasets[{i}].root"):
                if not Path(root).expanduser().exists():
                    raise ConfigError(f"{key}: directory not found: {root}")
    if check_paths:
        from mixdepth.models import list_models
        from mixdepth.models.registry import create_on_meta

        models = list_models()
        if config.model.name not in models:
            raise ConfigError(
                f"model.name: unknown model {config.model.name!r}; known: {', '.join(models)}"
            )
        try:  # option names and values, without allocating the weights
            create_on_meta(config.model.name, **config.model.options)
        except ConfigError as err:
            raise ConfigError(f"model.options: {err}") from None
        except (TypeError, ValueError) as err:  # a value of the wrong type or range
            raise ConfigError(
                f"model.options: cannot build {config.model.name!r} with "
                f"{config.model.options}: {err}"
            ) from None
        if config.model.pretrained == "imagenet":
            from mixdepth.models.registry import pretrained_models

            if config.model.name not in pretrained_models():
                raise ConfigError(
                    f"model.pretrained: {config.model.name!r} has no ImageNet weights; models "
                    f"that have them: {', '.join(pretrained_models())}"
                )
        from mixdepth.data import list_datasets

        known = list_datasets()
        for i, ds in enumerate(config.datasets):
            if ds.name not in known:
                raise ConfigError(
                    f"datasets[{i}].name: unknown dataset {ds.name!r}; known: {', '.join(known)}"
                )
    if check_paths and config.model.weights and not Path(config.model.weights).is_file():
        raise ConfigError(f"model.weights: file not found: {config.model.weights}")
    if config.mixing != "naive" and config.batch_size % len(config.datasets):
        raise ConfigError(
            f"batch_size: {config.mixing} mixing splits every batch evenly over the "
            f"{len(config.datasets)} datasets; {config.batch_size} is not a multiple of "
            f"{len(config.datasets)}"
        )


def datasets_from_mix(path: str | Path) -> list[DatasetConfig]:
    """The training sets listed in a `mix.yaml` written by `mixdepth synth --preset` (its
    `train` entries: name, dataset, root relative to the file's folder, split)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"mix: file not found: {path}")
    try:
        mix = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"mix: {path} is not a UTF-8 text file") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"mix: {path} is not valid YAML: {err}") from None
    entries = mix.get("train") if isinstance(mix, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"mix: {path} has no list of `train` sets")
    datasets = []
    for i, entry in enumerate(entries):
        missing = [k for k in ("name", "dataset", "root") if not isinstance(entry, dict)
                   or not isinstance(entry.get(k), str)]
        if missing:
            raise ConfigError(f"mix: {path}: train[{i}] lacks {', '.join(missing)}")
        datasets.append(
            DatasetConfig(
                name=entry["dataset"],
                root=str(path.parent / entry["root"]),
                split=entry.get("split"),
                label=entry["name"],
            )
        )
    return datasets


def config_from_dict(data: Any, check_paths: bool = True) -> TrainConfig:
    """Validate a mapping (as read from YAML) into a TrainConfig; ConfigError names the key.

    With `mix: PATH/mix.yaml` the mix's training sets come first in `datasets`, followed by
    any listed under `datasets`."""
    config = _from_dict(TrainConfig, data, "")
    if config.mix is not None:
        config.datasets = datasets_from_mix(config.mix) + config.datasets
        config.mix = None  # expanded: the config now lists every dataset itself
    _check_values(config, check_paths)
    return config


# ---------------------------------------------------------------------------- overrides


def _parse_key(key: str) -> list[str | int]:
    """`optimizer.lr_decoder` -> ['optimizer', 'lr_decoder']; `datasets[1].root` and
    `datasets.1.root` -> ['datasets', 1, 'root']."""
    parts: list[str | int] = []
    for token in key.replace("[", ".").replace("]", "").split("."):
        if token == "":
            raise ConfigError(f"override {key!r}: malformed key")
        parts.append(int(token) if token.isdigit() else token)
    return parts


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `key=value` strings to a config mapping (values parsed as YAML); returns a copy."""
    import copy

    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"override {key}: value is not valid YAML: {err}") from None
        path = _parse_key(key.strip())
        node: Any = data
        for depth, part in enumerate(path[:-1]):
            shown = key.split("=")[0]
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    raise ConfigError(f"{shown}: no list item {part} at this position")
                node = node[part]
            else:
                if not isinstance(node, dict):
                    raise ConfigError(f"{shown}: {path[depth - 1]} is not a mapping")
                node = node.setdefault(part, {})
        last = path[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or last >= len(node):
                raise ConfigError(f"{key}: no list item {last} at this position")
        elif not isinstance(node, dict):
            raise ConfigError(f"{key}: parent is not a mapping")
        node[last] = value
    return data


def load_config(
    path: str | Path | dict, overrides: list[str] | None = None, check_paths: bool = True
) -> TrainConfig:
    """Read a YAML config file (or take a mapping), apply overrides, validate."""
    if isinstance(path, dict):
        data = path
    else:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a UTF-8 text file") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
        if data is None:
            data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys to values")
    return config_from_dict(apply_overrides(data, overrides or []), check_paths=check_paths)


def dataset_roots(ds: DatasetConfig, key: str = "root") -> list[tuple[str, str]]:
    """[(config key, root)] of a dataset: `key` for a single root, `key[j]` for a list."""
    if isinstance(ds.root, str):
        return [(key, ds.root)]
    return [(f"{key}[{j}]", root) for j, root in enumerate(ds.root)]


def dataset_labels(config: TrainConfig) -> list[str]:
    """The name each dataset has in logs and checkpoints (label, else registry name)."""
    return [ds.label or ds.name for ds in config.datasets]


__all__ = [
    "AugmentConfig",
    "DatasetConfig",
    "LossConfig",
    "ModelConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "dataset_labels",
    "dataset_roots",
    "datasets_from_mix",
    "load_config",
]

"""The dataset registry: `create_dataset(name, root, split=..., transform=None)`."""

from __future__ import annotations

import os

from mixdepth.errors import ConfigError

_DATASETS: dict[str, type] = {}


def register_dataset(cls: type) -> type:
    """Class decorator: make a dataset class available under `cls.name`."""
    if cls.name in _DATASETS and _DATASETS[cls.name] is not cls:
        raise ValueError(f"dataset name {cls.name!r} registered twice")
    _DATASETS[cls.name] = cls
    return cls


def _load_builtin() -> None:
    import mixdepth.data.datasets  # noqa: F401  (registers the built-in datasets)
    import mixdepth.data.shards  # noqa: F401


def list_datasets() -> list[str]:
    """Names accepted by `create_dataset`, sorted."""
    _load_builtin()
    return sorted(_DATASETS)


def dataset_class(name: str) -> type:
    """The registered class for `name` (ConfigError listing the names if unknown)."""
    _load_builtin()
    if name not in _DATASETS:
        raise ConfigError(f"dataset: unknown dataset {name!r} (choose from {sorted(_DATASETS)})")
    return _DATASETS[name]


def create_dataset(
    name: str,
    root: str | os.PathLike,
    split: str | None = None,
    transform=None,
    skip_bad: bool = False,
    **options,
):
    """Dataset `name` read from `root` (a directory or tar archive; see docs/datasets.md).

    split: one of the dataset's `splits` (default: its first). transform: a callable
    Sample -> Sample applied to every item. skip_bad: replace unreadable samples by the
    next readable one and record them in `dataset.problems` instead of raising.
    options: dataset-specific keyword options (e.g. `space=` and `scale=` for `folder`,
    `render_pass=` for `sintel`).
    """
    dataset = dataset_class(name)(root, split=split, transform=transform, **options)
    dataset.skip_bad = skip_bad
    return dataset
